/**
 * cairn's caches under `<cairnHome()>/cache`: files derived from others (downloads, compiled
 * modules and validators), so any of them may be deleted. Every file appears whole or not at
 * all (written to a temporary name, fsynced, renamed).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { cairnHome, projectRoot } from './paths.js';

/** The folder of one kind of cached file (`debian`, `modules`, …). */
export function cacheDir(kind: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(cairnHome(env), 'cache', kind);
}

const requireHere = createRequire(import.meta.url);
const versions = new Map<string, string>();

/** The installed version of one of cairn's dependencies: files made by it are keyed by it. */
export function packageVersion(name: string): string {
  let version = versions.get(name);
  if (version === undefined) {
    try {
      version = (requireHere(`${name}/package.json`) as { version: string }).version;
    } catch {
      // Bundled into cairn (a cairn system's copy has no node_modules/<name>): the copy's own path
      // names its content, so it stands for the version.
      version = `bundled:${projectRoot}`;
    }
    versions.set(name, version);
  }
  return version;
}

/** Hex SHA-256 of bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
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
