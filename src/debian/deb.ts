/**
 * Unpacking one .deb into a store path: the data archive extracted without root, files Debian
 * still ships under /bin, /sbin, /lib* moved into usr/ (merged /usr), setuid/setgid modes read
 * from the archive, and the control data kept aside under `.cairn/deb/` with a `duties.json`
 * describing what the (never run) maintainer scripts would have done.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmdirSync, symlinkSync, unlinkSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { debCachePath, debianCacheDir, sha256File } from './cache.js';
import { TarLister, type TarEntry } from './tar.js';
import { analysePackage } from './scripts.js';
import { field, parseDeb822 } from './control.js';

/** Arguments of the `deb` builder (what the derivation hashes: never where the file came from). */
export interface DebArgs {
  package: string;
  version: string;
  architecture: string;
  sha256: string;
  filename: string;
}

/** Top-level folders merged into usr/ on a merged-/usr system. */
export const MERGED_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/** The store name of a package: `<name>-<version>`, characters a store name forbids replaced by `_`. */
export function debStoreName(pkg: string, version: string): string {
  return `${pkg}-${version}`.replace(/[^A-Za-z0-9+._?=-]/g, '_');
}

/** Where a path (relative, no leading slash) lives on a merged-/usr system. */
export function mergedPath(rel: string): string {
  const first = rel.split('/', 1)[0]!;
  return MERGED_DIRS.includes(first) ? `usr/${rel}` : rel;
}

/** Runs `dpkg-deb --fsys-tarfile | tar -x` while listing the same stream; returns the entries. */
async function extractData(deb: string, out: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const lister = new TarLister((e) => entries.push(e));
  const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
  const tar = spawn('tar', ['-x', '-f', '-', '-C', out, '--no-same-owner', '--delay-directory-restore'], { stdio: ['pipe', 'ignore', 'pipe'] });
  // A full disk makes tar complain once per file: keep the start, which says why.
  let errText = '';
  const keep = (b: Buffer): void => {
    if (errText.length < ERR_KEEP) errText += b.toString();
  };
  dpkg.stderr.on('data', keep);
  tar.stderr.on('data', keep);
  dpkg.stdout.on('data', (b: Buffer) => {
    lister.push(b);
    if (!tar.stdin.write(b)) {
      dpkg.stdout.pause();
      tar.stdin.once('drain', () => dpkg.stdout.resume());
    }
  });
  dpkg.stdout.on('end', () => tar.stdin.end());
  tar.stdin.on('error', () => { /* reported through tar's exit status */ });
  const exit = (p: ReturnType<typeof spawn>, what: string): Promise<number> => new Promise((resolve, reject) => {
    p.on('error', (err) => reject(new CairnError(`cannot run ${what} (is it installed?)`, { cause: err })));
    p.on('close', (code) => resolve(code ?? 1));
  });
  const [a, b] = await Promise.all([exit(dpkg, 'dpkg-deb'), exit(tar, 'tar')]);
  if (a !== 0 || b !== 0) {
    if (/No space left on device/i.test(errText)) throw new CairnError(`no space left on device while unpacking ${deb} into ${dirname(out)}`);
    const lines = errText.trim().split('\n');
    const shown = lines.slice(0, ERR_LINES).join('\n') + (lines.length > ERR_LINES ? '\n…' : '');
    throw new CairnError(`cannot unpack ${deb}: ${shown || `dpkg-deb exit ${a}, tar exit ${b}`}`);
  }
  return entries;
}

/** How much of dpkg-deb's and tar's complaints a failed unpacking shows. */
const ERR_KEEP = 4096;
const ERR_LINES = 5;

/**
 * Rewrites relative symlinks so they still point at the same file once /bin, /sbin, /lib* are
 * moved under usr/ (a link's own folder may move, or its target may, or both).
 */
function fixSymlinks(root: string, rel = ''): void {
  for (const name of readdirSync(join(root, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    const p = join(root, r);
    const st = lstatSync(p);
    if (st.isDirectory()) fixSymlinks(root, r);
    else if (st.isSymbolicLink()) {
      const target = readlinkSync(p);
      if (target.startsWith('/')) continue; // absolute links resolve on the target, where /bin → usr/bin
      const abs = posix.normalize(posix.join(posix.dirname(r), target));
      if (abs.startsWith('..')) continue;
      const newLink = mergedPath(r);
      const newAbs = mergedPath(abs);
      if (newLink === r && newAbs === abs) continue;
      const fixed = posix.relative(posix.dirname(newLink), newAbs) || '.';
      if (fixed !== target) {
        unlinkSync(p);
        symlinkSync(fixed, p);
      }
    }
  }
}

/** Moves the contents of `src` into `dst`, merging folders; two different files at one place is an error. */
function mergeInto(src: string, dst: string, what: string): void {
  if (!existsSync(dst)) {
    mkdirSync(dirname(dst), { recursive: true });
    renameSync(src, dst);
    return;
  }
  const s = lstatSync(src), d = lstatSync(dst);
  if (s.isDirectory() && d.isDirectory()) {
    for (const name of readdirSync(src)) mergeInto(join(src, name), join(dst, name), `${what}/${name}`);
    rmdirSync(src);
    return;
  }
  throw new CairnError(`${what} exists both under / and /usr in this package; cannot merge /usr`);
}

/** Moves /bin, /sbin, /lib* of an unpacked tree into usr/. */
export function mergeUsr(root: string): void {
  // Debian 13's base-files ships the merged-/usr links themselves (/bin -> usr/bin); every cairn
  // root has them already, so they are dropped (before links are rewritten for the move).
  // Any other link in their place cannot be merged.
  for (const dir of MERGED_DIRS) {
    const p = join(root, dir);
    if (!isSymlink(p)) continue;
    const target = readlinkSync(p);
    if (![`usr/${dir}`, `/usr/${dir}`].includes(target.replace(/\/+$/, ''))) throw new CairnError(`the package ships /${dir} as a symlink to ${target}; cairn cannot merge it into /usr`);
    unlinkSync(p);
  }
  fixSymlinks(root);
  for (const dir of MERGED_DIRS) {
    const p = join(root, dir);
    if (existsSync(p)) mergeInto(p, join(root, 'usr', dir), `/${dir}`);
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Setuid/setgid entries of the archive, with their merged-/usr paths. */
export function setuidEntries(entries: TarEntry[]): { path: string; mode: number }[] {
  return entries
    .filter((e) => (e.mode & 0o6000) !== 0 && (e.type === '0' || e.type === '\0' || e.type === '5' || e.type === '7'))
    .map((e) => ({ path: mergedPath(e.path), mode: e.mode }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Refuses a .deb whose own control data names another package, version or architecture than the
 * lock entry it was fetched for. The SHA-256 only proves the file is the one the lock names; a
 * lock edited to give one package another genuine .deb's hash and size would otherwise install
 * that other package's files under this package's name.
 */
export function checkIdentity(controlText: string, args: DebArgs): void {
  const [p] = parseDeb822(controlText, `control file of ${args.filename}`);
  const want: [string, string][] = [['Package', args.package], ['Version', args.version], ['Architecture', args.architecture]];
  const differs = want
    .map(([name, expected]) => ({ name, expected, actual: (p && field(p, name)) ?? '(none)' }))
    .filter((d) => d.actual !== d.expected);
  if (differs.length === 0) return;
  const what = differs.map((d) => `${d.name} is ${d.actual}, the lock says ${d.expected}`).join('; ');
  throw new CairnError(`the .deb locked for ${args.package} ${args.version} (${args.filename}, SHA-256 ${args.sha256}) is another package: ${what}; the lock entry is wrong or was tampered with, refusing to unpack it`);
}

/**
 * Builds the unpacked package in `out` (which must not exist yet) from the cached .deb, verified
 * again by SHA-256 first: a damaged cache file is deleted and the build refused.
 */
export async function unpackDeb(out: string, args: DebArgs, cacheDir = debianCacheDir()): Promise<{ setuid: { path: string; mode: number }[] }> {
  const deb = debCachePath(args.sha256, cacheDir);
  if (!existsSync(deb)) throw new CairnError(`${args.package} ${args.version} (${args.filename}) is not in the download cache ${dirname(deb)}; run \`cairn packages\` with network access first`);
  const sha = await sha256File(deb);
  if (sha !== args.sha256) {
    rmSync(deb, { force: true });
    throw new CairnError(`cached ${args.filename} has SHA-256 ${sha}, expected ${args.sha256}: the file was damaged or tampered with; removed it from the cache, refusing to unpack`);
  }
  mkdirSync(out);
  // Control data aside: kept for reference and duty extraction, never executed. Read first, so
  // that a .deb which is not the package asked for is refused before its files are unpacked.
  const meta = join(out, '.cairn', 'deb');
  mkdirSync(dirname(meta), { recursive: true });
  await execa('dpkg-deb', ['--control', deb, meta]);
  const control: Record<string, string> = {};
  for (const name of readdirSync(meta)) control[name] = readFileSync(join(meta, name), 'utf8');
  checkIdentity(control.control ?? '', args);
  const entries = await extractData(deb, out);
  mergeUsr(out);
  const sysusersDir = join(out, 'usr/lib/sysusers.d');
  const sysusers = existsSync(sysusersDir) ? readdirSync(sysusersDir).filter((f) => f.endsWith('.conf')).map((file) => ({ file, text: readFileSync(join(sysusersDir, file), 'utf8') })) : [];
  const duties = analysePackage(control, sysusers);
  const setuid = setuidEntries(entries);
  writeFileSync(join(meta, 'duties.json'), JSON.stringify({ package: args.package, version: args.version, setuid, ...duties }, null, 2) + '\n');
  return { setuid };
}
