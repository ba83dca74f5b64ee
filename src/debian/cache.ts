/**
 * The Debian download cache: verified indices, release files and .debs, each stored under its
 * SHA-256 so that anything found there is known-good and a locked build works offline.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../cache.js';

/**
 * The cache folder: `$CAIRN_DEBIAN_CACHE` if set (lets tests and benchmarks share downloads
 * across throw-away cairn homes), else `<cairnHome()>/cache/debian`.
 */
export function debianCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.CAIRN_DEBIAN_CACHE ? env.CAIRN_DEBIAN_CACHE : cacheDir('debian', env);
}

/** Where a verified .deb with this SHA-256 lives in the cache. */
export function debCachePath(sha256: string, cacheDir = debianCacheDir()): string {
  return join(cacheDir, 'debs', `${sha256}.deb`);
}

/** Hex SHA-256 of a file, streamed (debs can be large). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
