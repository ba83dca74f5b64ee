/**
 * The Debian download cache: verified indices, release files and .debs, each stored under its
 * SHA-256 so that anything found there is known-good and a locked build works offline.
 * Every file appears whole or not at all (written to a temporary name, fsynced, renamed).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, rmSync, createReadStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { cairnHome } from '../paths.js';

/**
 * The cache folder: `$CAIRN_DEBIAN_CACHE` if set (lets tests and benchmarks share downloads
 * across throw-away cairn homes), else `<cairnHome()>/cache/debian`.
 */
export function debianCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.CAIRN_DEBIAN_CACHE ? env.CAIRN_DEBIAN_CACHE : join(cairnHome(env), 'cache', 'debian');
}

/** Where a verified .deb with this SHA-256 lives in the cache. */
export function debCachePath(sha256: string, cacheDir = debianCacheDir()): string {
  return join(cacheDir, 'debs', `${sha256}.deb`);
}

/** Hex SHA-256 of bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hex SHA-256 of a file, streamed (debs can be large). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes a file atomically: temp file in the same folder, fsync, rename over the target. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
