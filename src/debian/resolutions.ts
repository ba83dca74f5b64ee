/**
 * Resolutions kept in the Debian cache. A request resolved against the same signed Releases by
 * the same code resolves the same way, so the lock it gives is kept under a key of all of that:
 * the request, the locked versions it prefers and the ones it may move, the repositories' order
 * and the Releases' hashes (which pin every index), and cairn's own code. A build whose lock is
 * missing or stale in a way seen before (each new machine of a VM test, a configuration copied
 * elsewhere, a test run again) then neither parses the indices nor resolves: about 2 s of CPU
 * per build.
 *
 * The cache is trusted no more than the indices: a kept lock is used only while every package it
 * names is listed in the signed indices (lockPackages checks; unpacking then checks each .deb's
 * name, version and architecture against the lock). Like everything in the cache the entries are
 * derived data: a damaged one is ignored and replaced, and any of them may be deleted.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../cache.js';
import type { Release } from './archive.js';
import { parseLock, serializeLock, type LockFile } from './lock.js';
import type { Repository } from './sources.js';

/** What a resolution depends on besides the indices. */
export interface ResolutionInputs {
  packages: string[];
  installRecommends: boolean;
  /** Locked versions the resolver keeps where it can (absent: newest candidates). */
  prefer?: ReadonlyMap<string, string>;
  /** Packages the resolver may move off their preferred versions. */
  upgrade?: ReadonlySet<string>;
}

let code: string | undefined;

/**
 * A digest of cairn's code: every file beside this one with its extension. That is the bundle
 * of an installed cairn (dist/cli), the compiled tree, or src/debian under a test runner. Any
 * change of the resolver, the index parser or the lock format gives new keys, with no version
 * number to remember to raise.
 */
function codeDigest(): string {
  if (code === undefined) {
    const self = fileURLToPath(import.meta.url);
    const dir = dirname(self);
    const ext = extname(self);
    const hash = createHash('sha256');
    for (const name of readdirSync(dir).filter((n) => n.endsWith(ext)).sort()) hash.update(`${name}\0`).update(readFileSync(join(dir, name)));
    code = hash.digest('hex');
  }
  return code;
}

/** The cache key of a resolution (hex SHA-256). */
export function resolutionKey(inputs: ResolutionInputs, repos: Repository[], releases: Release[]): string {
  const key = {
    code: codeDigest(),
    packages: [...new Set(inputs.packages)].sort(),
    installRecommends: inputs.installRecommends,
    prefer: inputs.prefer ? [...inputs.prefer].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : null,
    upgrade: inputs.upgrade ? [...inputs.upgrade].sort() : null,
    // In apt's order: the first repository's candidates win ties. The Release hash pins the rest.
    repositories: repos.map((r, i) => ({ suite: r.suite, components: r.components, architecture: r.architecture, release: releases[i]!.sha256 })),
  };
  return createHash('sha256').update(JSON.stringify(key)).digest('hex');
}

const entryPath = (cacheDir: string, key: string): string => join(cacheDir, 'resolutions', `${key}.lock`);

/** The lock kept for this key, or undefined (none, or unreadable: resolved again and replaced). */
export function cachedResolution(cacheDir: string, key: string): LockFile | undefined {
  const file = entryPath(cacheDir, key);
  try {
    return parseLock(readFileSync(file, 'utf8'), file);
  } catch {
    return undefined;
  }
}

/** Keeps a resolution's lock (whole or not at all). */
export function keepResolution(cacheDir: string, key: string, lock: LockFile): void {
  writeFileAtomic(entryPath(cacheDir, key), serializeLock(lock));
}
