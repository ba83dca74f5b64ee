/**
 * Debian packages for cairn: from a list of package names to unpacked store paths.
 *
 *   repositories (host apt config or configuration) → signed indices → resolution (or cairn.lock)
 *   → verified downloads in the cache → one store path per .deb (the `deb` builder).
 */
import { CairnError } from '../errors.js';
import { registerBuilder, type Derivation, type Store } from '../store/index.js';
import { resolveRepositories, type Repository, type RepositorySpec } from './sources.js';
import { indexHashes, loadUniverse } from './packages.js';
import { fetchRelease } from './archive.js';
import { cachedResolution, keepResolution, resolutionKey } from './resolutions.js';
import { resolve } from './resolve.js';
import { lockMatches, makeLock, readLock, writeLock, type LockFile, type LockedPackage } from './lock.js';
import { fetchDebs } from './fetch.js';
import { debStoreName, unpackDeb, type DebArgs } from './deb.js';
import { debianCacheDir } from './cache.js';
import { debOutputDerivation, readOutputs, selectOutputs, type DebOutputArgs } from './outputs.js';

export type { Repository, RepositorySpec } from './sources.js';
export { defaultRepositories, resolveRepositories, readHostSources } from './sources.js';
export type { LockFile, LockedPackage } from './lock.js';
export { lockPathFor, readLock, writeLock, serializeLock } from './lock.js';
export { compareVersions } from './version.js';
export { resolve } from './resolve.js';
export { loadUniverse } from './packages.js';
export { debStoreName, unpackDeb } from './deb.js';
export { fetchDebs } from './fetch.js';
export { debianCacheDir } from './cache.js';
export { debOutputDerivation, outputOf, readOutputs, selectOutputs } from './outputs.js';

registerBuilder('deb', async (ctx) => {
  const args = ctx.drv.args as DebArgs;
  return unpackDeb(ctx.out, args);
});

/** What a configuration asks of the package layer. */
export interface PackageRequest {
  packages: string[];
  /** Empty or absent: the host's Debian 12 repositories. */
  repositories?: RepositorySpec[];
  installRecommends?: boolean;
}

export interface LockOptions {
  /** Lock file to read and write (absent: resolve without one). */
  lockPath?: string;
  /**
   * `true`: resolve everything afresh (newest candidates). A list: re-resolve moving only these
   * packages, others keeping their locked versions where still satisfiable. Absent: use the lock
   * as is when it matches the request, else re-resolve preferring locked versions.
   */
  update?: true | string[];
  cacheDir?: string;
  /** Write the lock file when it changed (default true when lockPath is given). */
  write?: boolean;
}

export interface LockOutcome {
  lock: LockFile;
  repositories: Repository[];
  /** Whether the resolution ran (false: the existing lock was used as is, offline). */
  resolved: boolean;
}

/** The package set for a request: from the lock when it fits, else resolved from the signed indices. */
export async function lockPackages(req: PackageRequest, opts: LockOptions = {}): Promise<LockOutcome> {
  const repositories = resolveRepositories(req.repositories);
  const request = { packages: req.packages, installRecommends: req.installRecommends ?? false };
  const existing = opts.lockPath ? readLock(opts.lockPath) : undefined;
  if (existing && opts.update === undefined && lockMatches(existing, request, repositories)) {
    return { lock: existing, repositories, resolved: false };
  }
  let prefer: Map<string, string> | undefined;
  let upgrade: Set<string> | undefined;
  if (existing && opts.update !== true) {
    prefer = new Map(existing.packages.map((p) => [p.name, p.version]));
    if (Array.isArray(opts.update)) {
      const unknown = opts.update.filter((n) => !prefer!.has(n) && !request.packages.includes(n));
      if (unknown.length > 0) throw new CairnError(`cannot update ${unknown.join(', ')}: not in ${opts.lockPath}`);
      upgrade = new Set(opts.update);
    }
  } else if (Array.isArray(opts.update) && !existing) {
    throw new CairnError(`--update needs an existing lock file${opts.lockPath ? ` (${opts.lockPath} does not exist)` : ''}; run \`cairn lock\` first`);
  }
  // The signed Releases are fetched either way (a lock names them); the indices only when this
  // request was not resolved against them before (src/debian/resolutions.ts).
  const cacheDir = opts.cacheDir ?? debianCacheDir();
  const releases = await Promise.all(repositories.map((r) => fetchRelease(r, { cacheDir })));
  const key = resolutionKey({ ...request, prefer, upgrade }, repositories, releases);
  let lock = cachedResolution(cacheDir, key);
  // The cache is not trusted more than the indices are: every package of a kept resolution must
  // be one the signed indices list (its unpacking then checks its name, version, architecture).
  if (lock) {
    const listed = await indexHashes(repositories, releases, cacheDir);
    if (!lock.packages.every((p) => listed.has(p.sha256))) lock = undefined;
  }
  if (!lock) {
    const universe = await loadUniverse(repositories, { cacheDir, releases });
    const res = resolve(universe, request.packages, { installRecommends: request.installRecommends, prefer, upgrade });
    lock = makeLock(request, repositories, universe.releases, res);
    keepResolution(cacheDir, key, lock);
  }
  if (opts.lockPath && opts.write !== false) writeLock(opts.lockPath, lock);
  return { lock, repositories, resolved: true };
}

/** The store derivation that unpacks one locked package (whole: its outputs are split from it). */
export function debDerivation(p: LockedPackage): Derivation {
  const args: DebArgs = { package: p.name, version: p.version, architecture: p.architecture, sha256: p.sha256, filename: p.filename };
  return { name: debStoreName(p.name, p.version), builder: 'deb', args, inputs: [] };
}

export interface RealisedPackage {
  name: string;
  version: string;
  sha256: string;
  /** The main output (`out`). */
  storePath: string;
  /** The other outputs asked for that the package has: output name → store path. */
  outputs: Record<string, string>;
}

export interface RealiseOptions {
  jobs?: number;
  cacheDir?: string;
  progress?: boolean;
  onProgress?: (done: number, total: number, name: string) => void;
  /** Outputs besides `out` to realise where a package has them (environment.extraOutputsToInstall, see selectOutputs). */
  outputs?: string[];
  /** Realise only these packages (all when absent). */
  only?: ReadonlySet<string>;
}

/**
 * Makes the main output of every locked package (or of those `only` names), and the other outputs
 * asked for, valid store paths: downloads only the .debs of paths that are neither in the store
 * nor in the cache, then unpacks and splits what is missing, in parallel. Every package's main
 * output is returned, realised or not: a build that finds its outputs valid needs none of its
 * build-only packages (a machine switching itself has no kernel package).
 */
export async function realisePackages(lock: LockFile, repositories: Repository[], store: Store, opts: RealiseOptions = {}): Promise<RealisedPackage[]> {
  const unpacked = lock.packages.map((p) => store.outputPath(debDerivation(p)));
  const mains = lock.packages.map((p, i) => debOutputDerivation(p.name, p.version, unpacked[i]!, 'out'));
  const chosen = lock.packages.flatMap((p, i) => (opts.only === undefined || opts.only.has(p.name) ? [{ pkg: p, unpacked: unpacked[i]!, drv: mains[i]! }] : []));
  await buildOutputs(chosen, repositories, store, opts);
  const wanted = new Set(opts.outputs ?? []);
  const extra = chosen.flatMap(({ pkg: p, unpacked: u, drv }) =>
    wanted.size === 0 ? [] : selectOutputs(readOutputs(store, store.outputPath(drv)), wanted).map((output) => ({ pkg: p, unpacked: u, output, drv: debOutputDerivation(p.name, p.version, u, output) })),
  );
  await buildOutputs(extra, repositories, store, opts);
  return lock.packages.map((p, i) => ({
    name: p.name,
    version: p.version,
    sha256: p.sha256,
    storePath: store.outputPath(mains[i]!),
    outputs: Object.fromEntries(extra.filter((e) => e.pkg === p).map((e) => [e.output, store.outputPath(e.drv)])),
  }));
}

/** Builds the outputs that are not valid yet, and first the unpacked packages (and downloads) they are split from. */
async function buildOutputs(wanted: { pkg: LockedPackage; unpacked: string; drv: Derivation }[], repositories: Repository[], store: Store, opts: RealiseOptions): Promise<void> {
  const outs = wanted.map((w) => store.outputPath(w.drv));
  // Rooted before they are checked: a `store gc` running meanwhile must not delete what we found
  // valid, which the rest of the build goes on to use.
  await store.addTempRoots(outs);
  const missing = wanted.filter((_, i) => !store.isValid(outs[i]!));
  if (missing.length === 0) return;
  const byUnpacked = new Map(missing.map((w) => [w.unpacked, w.pkg]));
  await store.addTempRoots([...byUnpacked.keys()]);
  const toUnpack = [...byUnpacked].filter(([path]) => !store.isValid(path)).map(([, p]) => p);
  if (toUnpack.length > 0) {
    const bySuite = new Map(repositories.map((r) => [r.suite, r.uri]));
    await fetchDebs(toUnpack.map((p) => {
      const uri = bySuite.get(p.suite) ?? repositories[0]?.uri;
      if (!uri) throw new CairnError(`no repository is configured for suite ${p.suite} of locked package ${p.name}`);
      return { name: p.name, version: p.version, filename: p.filename, sha256: p.sha256, size: p.size, uri };
    }), { cacheDir: opts.cacheDir ?? debianCacheDir(), progress: opts.progress });
  }
  // One pass: each split waits for its unpacking. Progress counts packages, each once its outputs
  // are made (its unpacking and its splits are steps of it, the first named as the second).
  const left = new Map<string, number>();
  for (const w of missing) left.set(w.pkg.name, (left.get(w.pkg.name) ?? 0) + 1);
  const packages = left.size;
  let done = 0;
  const onProgress = (_done: number, _total: number, _name: string, drv: Derivation): void => {
    if (drv.builder !== 'deb-output') return;
    const pkg = (drv.args as DebOutputArgs).package;
    const n = left.get(pkg)! - 1;
    left.set(pkg, n);
    if (n === 0) opts.onProgress?.(++done, packages, pkg);
  };
  await store.buildAll([...toUnpack.map(debDerivation), ...missing.map((w) => w.drv)], { jobs: opts.jobs, onProgress });
}
