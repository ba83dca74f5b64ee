/**
 * Reading a signed Debian archive: InRelease verified with gpgv against the repository's keys,
 * package indices checked (size and SHA-256) against the verified Release before they are parsed
 * or cached. Only gpgv's verified output is ever read, never the raw InRelease.
 */
import { existsSync, readFileSync, readdirSync, statSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { parseDeb822, field } from './control.js';
import type { Repository } from './sources.js';
import { APT_TRUSTED_DIR } from './sources.js';
import { sha256Hex, writeFileAtomic } from '../cache.js';
import { debianCacheDir } from './cache.js';

/** A file listed in a Release file's SHA256 field. */
export interface ReleaseEntry {
  sha256: string;
  size: number;
}

/** The verified content of a suite's InRelease. */
export interface Release {
  /** SHA-256 of the verified (signature-stripped) Release text: what a lock file pins. */
  sha256: string;
  suite?: string;
  codename?: string;
  date?: string;
  validUntil?: string;
  acquireByHash: boolean;
  files: Map<string, ReleaseEntry>;
}

/** Parses verified Release text. */
export function parseRelease(text: string): Release {
  const [p] = parseDeb822(text, 'Release');
  if (!p) throw new CairnError('empty Release file');
  const files = new Map<string, ReleaseEntry>();
  for (const line of (field(p, 'SHA256') ?? '').split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w.length === 3) files.set(w[2]!, { sha256: w[0]!.toLowerCase(), size: Number(w[1]) });
  }
  return {
    sha256: sha256Hex(text),
    suite: field(p, 'Suite'),
    codename: field(p, 'Codename'),
    date: field(p, 'Date'),
    validUntil: field(p, 'Valid-Until'),
    acquireByHash: (field(p, 'Acquire-By-Hash') ?? '').toLowerCase() === 'yes',
    files,
  };
}

/**
 * Turns ASCII-armored OpenPGP data into binary packets (what `gpg --dearmor` does), so that gpgv,
 * which only reads binary keyrings, can use `.asc` files and inline Signed-By blocks.
 */
export function dearmor(text: string): Buffer {
  const parts: Buffer[] = [];
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  let i = 0;
  while (i < lines.length) {
    if (!/^-----BEGIN PGP [A-Z ]+-----$/.test(lines[i]!)) { i++; continue; }
    i++;
    // Armor headers ("Version: …") run up to the first empty line.
    while (i < lines.length && lines[i] !== '' && /^[A-Za-z-]+: /.test(lines[i]!)) i++;
    if (lines[i] === '') i++;
    let b64 = '';
    while (i < lines.length && !lines[i]!.startsWith('-----END') && !lines[i]!.startsWith('=')) b64 += lines[i++];
    parts.push(Buffer.from(b64, 'base64'));
    while (i < lines.length && !lines[i]!.startsWith('-----END')) i++;
    i++;
  }
  if (parts.length === 0) throw new CairnError('no ASCII-armored OpenPGP key block found in the repository keyring');
  return Buffer.concat(parts);
}

/**
 * The binary keyring files gpgv should trust for a repository: an inline key block or an armored
 * file is dearmored into the cache (keyed by content hash); a folder contributes its `.gpg`/`.asc` files.
 */
export function keyringFiles(keyring: string, cacheDir = debianCacheDir()): string[] {
  const materialise = (armored: string): string => {
    const bin = dearmor(armored);
    const path = join(cacheDir, 'keys', `${sha256Hex(bin)}.gpg`);
    if (!existsSync(path)) writeFileAtomic(path, bin);
    return path;
  };
  if (keyring.includes('-----BEGIN PGP')) return [materialise(keyring)];
  if (!existsSync(keyring)) throw new CairnError(`repository keyring ${keyring} does not exist (install the package that ships it, e.g. debian-archive-keyring, or set the repository's keyring)`);
  const files: string[] = [];
  const add = (path: string): void => {
    const head = readFileSync(path).subarray(0, 64).toString('latin1');
    files.push(head.startsWith('-----BEGIN PGP') ? materialise(readFileSync(path, 'utf8')) : path);
  };
  if (statSync(keyring).isDirectory()) {
    if (keyring === APT_TRUSTED_DIR && existsSync('/etc/apt/trusted.gpg')) add('/etc/apt/trusted.gpg');
    for (const name of readdirSync(keyring).sort()) if (/\.(gpg|asc)$/.test(name)) add(join(keyring, name));
    if (files.length === 0) throw new CairnError(`no keyring files (*.gpg, *.asc) in ${keyring}`);
  } else add(keyring);
  return files;
}

/**
 * Verifies a clearsigned InRelease with gpgv and returns only the verified text.
 * Throws CairnError when the signature is bad, missing, or made by a key not in the keyring.
 */
export async function verifyInRelease(data: Uint8Array, keyring: string, what: string, cacheDir = debianCacheDir()): Promise<string> {
  const keys = keyringFiles(keyring, cacheDir);
  const dir = mkdtempSync(join(tmpdir(), 'cairn-inrelease-'));
  try {
    const file = join(dir, 'InRelease');
    writeFileSync(file, data);
    const args = [...keys.flatMap((k) => ['--keyring', k]), '--output', '-', file];
    let result;
    try {
      result = await execa('gpgv', args, { encoding: 'buffer', reject: false, stdin: 'ignore' });
    } catch (err) {
      throw new CairnError(`cannot run gpgv to verify ${what} (install the gpgv package)`, { cause: err });
    }
    if (result.exitCode !== 0) {
      const detail = Buffer.from(result.stderr).toString('utf8').trim().split('\n').slice(-3).join('; ');
      throw new CairnError(`the signature of ${what} does not verify with ${keys.join(', ')}: refusing it (${detail})`);
    }
    return Buffer.from(result.stdout).toString('utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Refuses a Release past its Valid-Until (a replayed, outdated archive state). */
export function checkValidUntil(release: Release, what: string, now = new Date()): void {
  if (!release.validUntil) return;
  const t = Date.parse(release.validUntil);
  if (Number.isNaN(t)) throw new CairnError(`${what}: cannot read Valid-Until ${JSON.stringify(release.validUntil)}`);
  if (now.getTime() > t) throw new CairnError(`${what} expired on ${release.validUntil} (Valid-Until): the mirror is outdated or replaying old data; refusing it`);
}

/** Downloads a URL fully; network failures become CairnErrors naming the URL. */
export async function download(url: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new CairnError(`cannot download ${url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw new CairnError(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

function repoKey(repo: Repository): string {
  return sha256Hex(`${repo.uri}\n${repo.suite}`).slice(0, 32);
}

/**
 * Verifies a signed InRelease and checks it is for the suite asked for (apt checks Suite and
 * Codename too: a validly signed Release of another suite or an older release, served in place of
 * this one, would otherwise pass) and still valid.
 */
async function verifyRelease(raw: Uint8Array, repo: Repository, what: string, cacheDir: string, now?: Date): Promise<Release> {
  const release = parseRelease(await verifyInRelease(raw, repo.keyring, what, cacheDir));
  if (release.codename !== repo.suite && release.suite !== repo.suite) {
    throw new CairnError(`${what} is for suite ${release.suite ?? '?'} / ${release.codename ?? '?'}, not ${repo.suite}: refusing it`);
  }
  checkValidUntil(release, what, now);
  return release;
}

/**
 * A repository's current verified Release. The signed InRelease is also cached, so later offline
 * runs can fall back to it; it is verified again (signature, suite, Valid-Until) every time it is
 * used, since anyone who can write the cache could otherwise rewrite it consistently.
 */
export async function fetchRelease(repo: Repository, opts: { cacheDir?: string; now?: Date } = {}): Promise<Release> {
  const cacheDir = opts.cacheDir ?? debianCacheDir();
  const what = `the Release file of ${repo.suite} (${repo.uri})`;
  const pointer = join(cacheDir, 'dists', repoKey(repo));
  const cached = (sha: string): string => join(cacheDir, 'releases', `${sha}.InRelease`);
  let raw: Uint8Array;
  try {
    raw = await download(`${repo.uri}/dists/${repo.suite}/InRelease`);
  } catch (err) {
    // Only an unreachable archive falls back to the last verified Release; a bad one never does.
    if (!(err instanceof CairnError) || !err.message.startsWith('cannot download') || !existsSync(pointer)) throw err;
    const sha = readFileSync(pointer, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(sha) || !existsSync(cached(sha))) throw new CairnError(`the cached copy of ${what} is missing or damaged; reconnect to refresh it`, { cause: err });
    const release = await verifyRelease(readFileSync(cached(sha)), repo, `the cached copy of ${what}`, cacheDir, opts.now);
    if (release.sha256 !== sha) throw new CairnError(`the cached copy of ${what} is not the Release verified earlier; reconnect to refresh it`, { cause: err });
    process.stderr.write(`warning: ${err.message}; using the Release of ${repo.suite} verified earlier\n`);
    return release;
  }
  // Cached only once it passed every check: a refused Release must not become the offline fallback.
  const release = await verifyRelease(raw, repo, what, cacheDir, opts.now);
  writeFileAtomic(cached(release.sha256), raw);
  writeFileAtomic(pointer, release.sha256 + '\n');
  return release;
}

/** Checks downloaded bytes against the Release entry: a mismatch is a tampered or broken file. */
export function checkAgainstRelease(data: Uint8Array, entry: ReleaseEntry, what: string): void {
  if (data.length !== entry.size) throw new CairnError(`${what} has ${data.length} bytes but the signed Release says ${entry.size}: refusing it`);
  const sha = sha256Hex(data);
  if (sha !== entry.sha256) throw new CairnError(`${what} has SHA-256 ${sha} but the signed Release says ${entry.sha256}: refusing it`);
}

/** Decompresses an index according to its file name. */
async function decompress(data: Uint8Array, path: string): Promise<string> {
  if (path.endsWith('.gz')) return gunzipSync(data).toString('utf8');
  if (path.endsWith('.xz')) {
    const r = await execa('xz', ['-dc'], { input: data, encoding: 'utf8', maxBuffer: 1 << 30, stripFinalNewline: false });
    return r.stdout;
  }
  return Buffer.from(data).toString('utf8');
}

/**
 * The uncompressed Packages text of one component: the decompressed text kept from an earlier
 * use, or the compressed file from the cache or downloaded; each checked against the Release.
 */
export async function fetchPackagesIndex(repo: Repository, release: Release, component: string, cacheDir = debianCacheDir()): Promise<string> {
  const base = `${component}/binary-${repo.architecture}/Packages`;
  const name = ['.xz', '.gz', ''].map((ext) => base + ext).find((p) => release.files.has(p));
  if (!name) throw new CairnError(`the Release of ${repo.suite} lists no ${base}(.xz|.gz): wrong component or architecture?`);
  // Debian's Release also signs the uncompressed index (published or not): decompressed once, it
  // is kept under its own hash and checked against that on every use, which costs a tenth of xz.
  const plain = name === base ? undefined : release.files.get(base);
  const kept = plain && cachedIndex(cacheDir, plain);
  if (kept) return kept.toString('utf8');
  const text = await compressedIndex(repo, release, name, cacheDir);
  if (plain) {
    const data = Buffer.from(text, 'utf8');
    if (matchesEntry(data, plain)) writeFileAtomic(indexCachePath(cacheDir, plain), data);
  }
  return text;
}

const matchesEntry = (data: Uint8Array, entry: ReleaseEntry): boolean => data.length === entry.size && sha256Hex(data) === entry.sha256;
const indexCachePath = (cacheDir: string, entry: ReleaseEntry): string => join(cacheDir, 'indices', entry.sha256);

/** The cached copy of an index the Release lists, if it is there and matches (a damaged one is fetched again). */
function cachedIndex(cacheDir: string, entry: ReleaseEntry): Buffer | undefined {
  const file = indexCachePath(cacheDir, entry);
  if (!existsSync(file)) return undefined;
  const data = readFileSync(file);
  return matchesEntry(data, entry) ? data : undefined;
}

/** The text of the compressed index `name`, from the cache or downloaded, checked against the Release. */
async function compressedIndex(repo: Repository, release: Release, name: string, cacheDir: string): Promise<string> {
  const entry = release.files.get(name)!;
  let data: Uint8Array | undefined = cachedIndex(cacheDir, entry);
  if (!data) {
    const dir = `${repo.uri}/dists/${repo.suite}/${name.slice(0, name.lastIndexOf('/'))}`;
    // by-hash names the exact file the Release signed, immune to a mirror updating meanwhile.
    const url = release.acquireByHash ? `${dir}/by-hash/SHA256/${entry.sha256}` : `${repo.uri}/dists/${repo.suite}/${name}`;
    data = await download(url);
    checkAgainstRelease(data, entry, `${name} of ${repo.suite}`);
    writeFileAtomic(indexCachePath(cacheDir, entry), data);
  }
  return decompress(data, name);
}
