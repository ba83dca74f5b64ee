/**
 * `cairn.lock`: the exact package set of a configuration, so builds are reproducible and work
 * offline. It records *what* (names, versions, archive paths, hashes, the verified Release
 * hashes), never *where*: the mirror comes from the configuration or the host at build time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CairnError } from '../errors.js';
import { writeFileAtomic } from '../cache.js';
import type { Repository } from './sources.js';
import type { Release } from './archive.js';
import type { Resolution } from './resolve.js';

export const LOCK_VERSION = 1;

export interface LockedRepository {
  suite: string;
  components: string[];
  architecture: string;
  /** SHA-256 of the verified InRelease content the resolution used. */
  release: string;
  date: string;
}

export interface LockedPackage {
  name: string;
  version: string;
  architecture: string;
  /** Suite the .deb was found in (which configured repository to fetch it from). */
  suite: string;
  /** Archive path, e.g. `pool/main/s/systemd/systemd_252.39-1~deb12u1_amd64.deb`. */
  filename: string;
  sha256: string;
  size: number;
  /** Names of the locked packages that satisfy its dependencies. */
  depends?: string[];
}

export interface LockFile {
  version: number;
  /** What was asked for: a lock whose request differs from the configuration's is refreshed. */
  request: { packages: string[]; installRecommends: boolean };
  repositories: LockedRepository[];
  packages: LockedPackage[];
}

/** The lock file beside a configuration file. */
export function lockPathFor(configPath: string): string {
  // Named after its configuration, as flake.nix pairs with flake.lock: several configurations
  // can share a folder (examples/minimal.yaml → minimal.lock); `cairn.yaml` gets `cairn.lock`.
  return join(dirname(configPath), `${basename(configPath).replace(/\.[^.]*$/, '')}.lock`);
}

/** Builds the lock contents from a resolution. */
export function makeLock(request: { packages: string[]; installRecommends: boolean }, repos: Repository[], releases: Release[], res: Resolution): LockFile {
  return {
    version: LOCK_VERSION,
    request: { packages: [...new Set(request.packages)].sort(), installRecommends: request.installRecommends },
    repositories: repos.map((r, i) => ({
      suite: r.suite,
      components: [...r.components],
      architecture: r.architecture,
      release: releases[i]!.sha256,
      date: releases[i]!.date ?? '',
    })),
    packages: res.packages.map((p) => ({
      name: p.name,
      version: p.version,
      architecture: p.architecture,
      suite: p.suite,
      filename: p.filename,
      sha256: p.sha256,
      size: p.size,
      depends: res.depends.get(p.name) ?? [],
    })),
  };
}

/** Serialises with a fixed key order and a final newline, so lock diffs stay minimal. */
export function serializeLock(lock: LockFile): string {
  const ordered = {
    version: lock.version,
    request: { packages: lock.request.packages, installRecommends: lock.request.installRecommends },
    repositories: lock.repositories.map((r) => ({ suite: r.suite, components: r.components, architecture: r.architecture, release: r.release, date: r.date })),
    packages: [...lock.packages]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((p) => ({
        name: p.name, version: p.version, architecture: p.architecture, suite: p.suite,
        filename: p.filename, sha256: p.sha256, size: p.size,
        ...(p.depends ? { depends: p.depends } : {}),
      })),
  };
  return JSON.stringify(ordered, null, 2) + '\n';
}

/** Checks the shape of a parsed lock; a hand-edited or foreign file gets a clear error. */
export function parseLock(text: string, path: string): LockFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CairnError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  const bad = (what: string): never => { throw new CairnError(`${path}: ${what}; delete it and run \`cairn lock\` to recreate it`); };
  const d = data as Partial<LockFile>;
  if (typeof d !== 'object' || d === null) bad('not a lock file');
  if (d.version !== LOCK_VERSION) bad(`unsupported lock version ${String(d.version)} (this cairn writes ${LOCK_VERSION})`);
  if (!d.request || !Array.isArray(d.request.packages)) bad('missing "request"');
  if (!Array.isArray(d.repositories) || !Array.isArray(d.packages)) bad('missing "repositories" or "packages"');
  for (const p of d.packages!) {
    if (typeof p.name !== 'string' || typeof p.version !== 'string' || typeof p.filename !== 'string' || !/^[0-9a-f]{64}$/.test(String(p.sha256)) || typeof p.size !== 'number') {
      bad(`package entry ${JSON.stringify(p).slice(0, 120)} is incomplete`);
    }
    if (p.filename.includes('..') || p.filename.startsWith('/') || /^[a-z]+:/i.test(p.filename)) bad(`package ${p.name} has an unsafe filename ${p.filename}`);
  }
  return d as LockFile;
}

/** Reads `path` if it exists. */
export function readLock(path: string): LockFile | undefined {
  if (!existsSync(path)) return undefined;
  return parseLock(readFileSync(path, 'utf8'), path);
}

/** Writes the lock atomically. */
export function writeLock(path: string, lock: LockFile): void {
  writeFileAtomic(path, serializeLock(lock));
}

/** Whether a lock was made for this request and these repositories (by suite, components, architecture). */
export function lockMatches(lock: LockFile, request: { packages: string[]; installRecommends: boolean }, repos: Repository[]): boolean {
  const want = [...new Set(request.packages)].sort();
  if (lock.request.installRecommends !== request.installRecommends) return false;
  if (want.length !== lock.request.packages.length || want.some((p, i) => p !== lock.request.packages[i])) return false;
  if (lock.repositories.length !== repos.length) return false;
  return repos.every((r, i) => {
    const l = lock.repositories[i]!;
    return l.suite === r.suite && l.architecture === r.architecture && l.components.join(' ') === r.components.join(' ');
  });
}
