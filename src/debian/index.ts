/**
 * Debian packages for cairn: from a list of package names to unpacked store paths.
 *
 *   repositories (host apt config or configuration) → signed indices → resolution (or cairn.lock)
 *   → verified downloads in the cache → one store path per .deb (the `deb` builder).
 */
import { CairnError } from '../errors.js';
import { registerBuilder, type Derivation, type Store } from '../store/index.js';
import { resolveRepositories, type Repository, type RepositorySpec } from './sources.js';
import { loadUniverse } from './packages.js';
import { resolve } from './resolve.js';
import { lockMatches, makeLock, readLock, writeLock, type LockFile, type LockedPackage } from './lock.js';
import { fetchDebs } from './fetch.js';
import { debStoreName, unpackDeb, type DebArgs } from './deb.js';
import { debianCacheDir } from './cache.js';

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
  const universe = await loadUniverse(repositories, { cacheDir: opts.cacheDir });
  const res = resolve(universe, request.packages, { installRecommends: request.installRecommends, prefer, upgrade });
  const lock = makeLock(request, repositories, universe.releases, res);
  if (opts.lockPath && opts.write !== false) writeLock(opts.lockPath, lock);
  return { lock, repositories, resolved: true };
}

/** The store derivation that unpacks one locked package. */
export function debDerivation(p: LockedPackage): Derivation {
  const args: DebArgs = { package: p.name, version: p.version, architecture: p.architecture, sha256: p.sha256, filename: p.filename };
  return { name: debStoreName(p.name, p.version), builder: 'deb', args, inputs: [] };
}

export interface RealisedPackage {
  name: string;
  version: string;
  sha256: string;
  storePath: string;
}

/**
 * Makes every locked package (or those `only` names) a valid store path: downloads only what is
 * neither in the store nor in the cache, then builds (unpacks) the missing paths in parallel.
 * Every package's store path is returned, realised or not: a build that finds its outputs valid
 * needs none of its build-only packages (a machine switching itself has no kernel package).
 */
export async function realisePackages(
  lock: LockFile,
  repositories: Repository[],
  store: Store,
  opts: { jobs?: number; cacheDir?: string; progress?: boolean; onProgress?: (done: number, total: number, name: string) => void; only?: ReadonlySet<string> } = {},
): Promise<RealisedPackage[]> {
  const drvs = lock.packages.map(debDerivation);
  const outs = drvs.map((d) => store.outputPath(d));
  const wanted = (p: LockedPackage) => opts.only === undefined || opts.only.has(p.name);
  // Rooted before they are checked: a `store gc` running meanwhile must not delete what we found
  // valid, which the rest of the build goes on to use.
  await store.addTempRoots(outs.filter((_, i) => wanted(lock.packages[i]!)));
  const missing = lock.packages.filter((p, i) => wanted(p) && !store.isValid(outs[i]!));
  if (missing.length > 0) {
    const bySuite = new Map(repositories.map((r) => [r.suite, r.uri]));
    await fetchDebs(missing.map((p) => {
      const uri = bySuite.get(p.suite) ?? repositories[0]?.uri;
      if (!uri) throw new CairnError(`no repository is configured for suite ${p.suite} of locked package ${p.name}`);
      return { name: p.name, version: p.version, filename: p.filename, sha256: p.sha256, size: p.size, uri };
    }), { cacheDir: opts.cacheDir ?? debianCacheDir(), progress: opts.progress });
    await store.buildAll(drvs.filter((_, i) => wanted(lock.packages[i]!) && !store.isValid(outs[i]!)), { jobs: opts.jobs, onProgress: opts.onProgress });
  }
  return lock.packages.map((p, i) => ({ name: p.name, version: p.version, sha256: p.sha256, storePath: outs[i]! }));
}
