/**
 * Files Debian's dpkg triggers would have made from what the packages ship, made at build time by
 * the system's own programs, into a layer of sw (so they change with the generation, never go stale):
 *   usr/lib/udev/hwdb.bin              udev's trigger: `systemd-hwdb update` over every package's hwdb.d
 *   usr/lib/systemd/catalog/database   systemd's: `journalctl --update-catalog` (activation links
 *                                      /var/lib/systemd/catalog/database, where journalctl reads it)
 *   etc/ld.so.cache                    libc-bin's: `ldconfig` over the library folders (reaches /etc
 *                                      through the etc derivation, as /etc/static/ld.so.cache)
 *   usr/share/info/dir                 install-info's, over the info manuals (a layer of its own,
 *                                      made only for a system with info manuals and install-info)
 *
 * Otherwise systemd-hwdb-update, systemd-journal-catalog-update and ldconfig.service make them on a
 * first boot, ahead of udevd and sysinit.target: 7–14 s of a TCG boot. With them, the
 * first unit's conditions are false (it runs only when /usr/lib/udev/hwdb.bin is missing, or
 * /etc/udev/hwdb.bin or /etc/udev/hwdb.d exist), and activation marks /etc and /var updated.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { mergedPath } from '../debian/deb.js';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { lexists, registerBuilder, removeTree, type Derivation, type Store } from '../store/index.js';
import { programRunner, type StorePackage } from './checks.js';

const HWDB_D = 'usr/lib/udev/hwdb.d';
const HWDB_PROGRAM = 'usr/bin/systemd-hwdb';
const CATALOG_D = 'usr/lib/systemd/catalog';
const JOURNALCTL = 'usr/bin/journalctl';
const LDCONFIG = 'usr/sbin/ldconfig';

/**
 * systemd-hwdb records each entry's source file as an absolute path under its --root. The scratch
 * root is padded to this length so the prefix can be overwritten in place (same length, so no offset
 * moves) with slashes: `//…//usr/lib/udev/hwdb.d/20-OUI.hwdb` names the file as the running
 * system sees it, and the bytes no longer depend on where the build ran.
 */
const ROOT_LENGTH = 160;

/** The triggers' derivation over a system's packages, or undefined when none ships their programs. */
export function triggersDerivation(store: Store, pkgs: StorePackage[]): Derivation | undefined {
  if (!pkgs.some((p) => [HWDB_PROGRAM, JOURNALCTL, LDCONFIG].some((f) => existsSync(join(store.toPhysical(p.storePath), f))))) return undefined;
  const sorted = [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // `makes` names what the builder writes, so a builder that writes more is not answered by an older output.
  return { name: 'system-triggers', builder: 'cairn:triggers', args: { packages: sorted, makes: ['hwdb.bin', 'journal-catalog', 'ld.so.cache'] }, inputs: sorted.map((p) => p.storePath) };
}

/** Overwrites every occurrence of `root` (as a folder: followed by a slash) in `bin` with slashes; how many there were. */
export function unrootHwdb(bin: Buffer, root: string): number {
  const needle = Buffer.from(`${root}/`);
  const slashes = Buffer.alloc(root.length, '/');
  let count = 0;
  for (let i = bin.indexOf(needle); i !== -1; i = bin.indexOf(needle, i + needle.length)) {
    slashes.copy(bin, i);
    count++;
  }
  return count;
}

/** Copies the files of `rel` in every package (those `keep` accepts) into `root`/`rel`; their names. */
function gather(store: Store, packages: StorePackage[], rel: string, root: string, keep: (name: string) => boolean): string[] {
  const dir = join(root, rel);
  mkdirSync(dir, { recursive: true });
  const names: string[] = [];
  for (const p of packages) {
    const src = join(store.toPhysical(p.storePath), rel);
    if (!existsSync(src)) continue;
    for (const f of readdirSync(src).sort()) {
      if (!keep(f)) continue;
      copyFileSync(join(src, f), join(dir, f));
      names.push(f);
    }
  }
  return names;
}

/**
 * The folders ldconfig reads (the system's library folders and those /etc/ld.so.conf.d names),
 * merged from every package into `root` by hard links (copies across file systems), with the
 * configuration; the number of entries.
 */
function gatherLibraries(store: Store, packages: StorePackage[], root: string): number {
  const dirs = new Set(['usr/lib', 'usr/lib/x86_64-linux-gnu', 'usr/lib64']);
  const confs: [string, string][] = [];
  for (const p of packages) {
    const phys = store.toPhysical(p.storePath);
    if (existsSync(join(phys, 'etc/ld.so.conf'))) confs.push([join(phys, 'etc/ld.so.conf'), 'etc/ld.so.conf']);
    const d = join(phys, 'etc/ld.so.conf.d');
    for (const f of existsSync(d) ? readdirSync(d).sort() : []) {
      confs.push([join(d, f), `etc/ld.so.conf.d/${f}`]);
      for (const line of readFileSync(join(d, f), 'utf8').split('\n')) {
        const dir = line.replace(/#.*/, '').trim();
        if (dir.startsWith('/') && !dir.includes('..')) dirs.add(mergedPath(dir.replace(/^\/+|\/+$/g, '')));
      }
    }
  }
  for (const [src, rel] of confs) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    if (!existsSync(join(root, rel))) copyFileSync(src, join(root, rel));
  }
  let count = 0;
  const todo = [...dirs].sort();
  for (let rel = todo.shift(); rel !== undefined; rel = todo.shift()) {
    for (const p of packages) {
      const src = join(store.toPhysical(p.storePath), rel);
      if (!existsSync(src) || !statSync(src).isDirectory()) continue;
      mkdirSync(join(root, rel), { recursive: true });
      for (const e of readdirSync(src, { withFileTypes: true })) {
        const dst = join(root, rel, e.name);
        // ldconfig also reads a folder's glibc-hwcaps/<level>/ subfolders.
        if (e.isDirectory() && e.name === 'glibc-hwcaps') {
          for (const level of readdirSync(join(src, e.name)).sort()) if (!todo.includes(`${rel}/glibc-hwcaps/${level}`)) todo.push(`${rel}/glibc-hwcaps/${level}`);
          continue;
        }
        if (lexists(dst) || !(e.isFile() || e.isSymbolicLink())) continue;
        if (e.isSymbolicLink()) symlinkSync(readlinkSync(join(src, e.name)), dst);
        else {
          try {
            linkSync(join(src, e.name), dst);
          } catch {
            copyFileSync(join(src, e.name), dst);
          }
        }
        count++;
      }
    }
  }
  return count;
}

/** Runs `file` with `argv` (in the C locale, with nothing of the builder's environment); a failure names `what`. */
async function run([file, argv]: [string, string[]], what: string): Promise<void> {
  const r = await execa(file, argv, { reject: false, all: true, env: { LC_ALL: 'C' }, extendEnv: false });
  if (r.exitCode !== 0) throw new CairnError(`${what} failed (exit ${r.exitCode}): ${r.all}`);
}

registerBuilder('cairn:triggers', async (ctx) => {
  const { packages } = ctx.drv.args as { packages: StorePackage[] };
  const runner = programRunner(ctx.store, packages);
  const base = `${ctx.out}.triggers`;
  const pad = ROOT_LENGTH - base.length - 1;
  if (pad < 1 || pad > 255) throw new CairnError(`the store's folder (${ctx.store.dir}) is too long a path to compile udev's hardware database in reproducibly: the build folder ${base} must be shorter than ${ROOT_LENGTH - 1} characters`);
  const root = join(base, 'r'.repeat(pad));
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  // Merged /usr, as on the system: systemd 252 (Debian 12) reads and writes /lib/udev, 257 /usr/lib/udev.
  symlinkSync('usr/lib', join(root, 'lib'));
  symlinkSync('usr/lib64', join(root, 'lib64'));
  try {
    if (runner.find(HWDB_PROGRAM)) {
      const names = gather(ctx.store, packages, HWDB_D, root, (f) => f.endsWith('.hwdb'));
      await run(runner.command(HWDB_PROGRAM, [`--root=${root}`, 'update', '--usr']), 'systemd-hwdb update');
      const bin = readFileSync(join(root, 'usr/lib/udev/hwdb.bin'));
      // Each file's name is stored once; a prefix left anywhere would make the bytes depend on the build's folder.
      const rewritten = unrootHwdb(bin, root);
      if (bin.includes(Buffer.from(root)) || (names.length > 0 && rewritten === 0)) throw new CairnError('systemd-hwdb recorded its build folder in hwdb.bin in a form cairn cannot take out');
      mkdirSync(join(ctx.out, 'usr/lib/udev'), { recursive: true });
      writeFileSync(join(ctx.out, 'usr/lib/udev/hwdb.bin'), bin, { mode: 0o444 });
      ctx.log(`hwdb.bin from ${names.length} files`);
    }
    const ldconfig = runner.find(LDCONFIG);
    if (ldconfig) {
      const libs = gatherLibraries(ctx.store, packages, root);
      // Static: run as it is. Without the right to chroot it reads ROOT's files through its path
      // (-r); either way the cache names them as the system sees them. -X: the store's links are
      // the packages', none is made.
      await run([ldconfig, ['-X', '-r', root]], 'ldconfig -X -r');
      const cache = readFileSync(join(root, 'etc/ld.so.cache'));
      if (cache.includes(Buffer.from(root))) throw new CairnError('ldconfig recorded its build folder in ld.so.cache');
      mkdirSync(join(ctx.out, 'etc'), { recursive: true });
      writeFileSync(join(ctx.out, 'etc/ld.so.cache'), cache, { mode: 0o444 });
      ctx.log(`ld.so.cache from ${libs} files`);
    }
    if (runner.find(JOURNALCTL)) {
      const names = gather(ctx.store, packages, CATALOG_D, root, (f) => f.endsWith('.catalog'));
      await run(runner.command(JOURNALCTL, [`--root=${root}`, '--update-catalog']), 'journalctl --update-catalog');
      mkdirSync(join(ctx.out, CATALOG_D), { recursive: true });
      const db = readFileSync(join(root, 'var/lib/systemd/catalog/database'));
      if (db.includes(Buffer.from(root))) throw new CairnError('journalctl recorded its build folder in the journal catalog');
      writeFileSync(join(ctx.out, CATALOG_D, 'database'), db, { mode: 0o444 });
      ctx.log(`journal catalog from ${names.length} files`);
    }
  } finally {
    removeTree(base);
  }
});

const INFO_D = 'usr/share/info';
const INSTALL_INFO = 'usr/bin/install-info';

/** The info manuals of packages (`sed.info.gz`; not the parts `sed.info-1.gz`), physical paths in name order. */
function infoManuals(store: Store, pkgs: StorePackage[]): string[] {
  return pkgs
    .flatMap((p) => {
      const dir = join(store.toPhysical(p.storePath), INFO_D);
      return existsSync(dir) ? readdirSync(dir).filter((f) => /\.info(\.gz)?$/.test(f)).map((f) => join(dir, f)) : [];
    })
    .sort((a, b) => (basename(a) < basename(b) ? -1 : basename(a) > basename(b) ? 1 : 0));
}

/**
 * usr/share/info/dir, the menu `info` opens, as install-info's trigger makes it: a layer of sw over
 * the packages (with their info outputs), or undefined when they hold no manual or no install-info.
 */
export function infoDirDerivation(store: Store, pkgs: StorePackage[]): Derivation | undefined {
  if (!pkgs.some((p) => existsSync(join(store.toPhysical(p.storePath), INSTALL_INFO))) || infoManuals(store, pkgs).length === 0) return undefined;
  const sorted = [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { name: 'system-info-dir', builder: 'cairn:info-dir', args: { packages: sorted }, inputs: sorted.map((p) => p.storePath) };
}

registerBuilder('cairn:info-dir', async (ctx) => {
  const { packages } = ctx.drv.args as { packages: StorePackage[] };
  const runner = programRunner(ctx.store, packages);
  // install-info reads a compressed manual through a gzip it looks up on PATH: it is given plain copies.
  const scratch = `${ctx.out}.info`;
  mkdirSync(scratch);
  const dir = join(ctx.out, INFO_D);
  mkdirSync(dir, { recursive: true });
  try {
    for (const manual of infoManuals(ctx.store, packages)) {
      const plain = join(scratch, basename(manual).replace(/\.gz$/, ''));
      writeFileSync(plain, manual.endsWith('.gz') ? gunzipSync(readFileSync(manual)) : readFileSync(manual));
      await run(runner.command(INSTALL_INFO, [`--info-dir=${dir}`, plain]), `install-info ${basename(manual)}`);
    }
  } finally {
    removeTree(scratch);
  }
});
