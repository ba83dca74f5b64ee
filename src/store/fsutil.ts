import { chmodSync, closeSync, copyFileSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { processToken } from './lock.js';

/**
 * Hard-links a file of the store into a build (the store is immutable, so sharing inodes is safe),
 * else copies it (another file system, or the inode's link limit reached); makes the folder first.
 */
export function linkOrCopy(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/** Flushes a directory's entries (a rename inside it) to disk. */
/** Whether a path exists as itself (a dangling symlink counts). */
export function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `path` with `data` so that readers see the old or the new file, never a partial one, even after a power loss. */
export function writeFileAtomic(path: string, data: string): void {
  const dir = dirname(path);
  const tmp = join(dir, `.tmp-${processToken()}-${randomBytes(4).toString('hex')}`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    // A full disk must not leave a partial file behind, not even under a temporary name.
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}

/**
 * Flushes the whole filesystem holding `path` (syncfs via `sync -f`): one call instead of an fsync
 * per file, so a freshly built tree is on disk before its metadata makes it valid. Best effort:
 * where `sync` is missing the build still succeeds (a crash of the process is covered anyway;
 * only a power loss could then leave a valid path with unflushed contents, which `verify` finds).
 */
export function syncFilesystem(path: string): void {
  // A failure (no `sync` binary) is reported in the result, not thrown: see above.
  spawnSync('sync', ['-f', path], { stdio: 'ignore' });
}

/**
 * Deletes a tree that may be read-only (store objects are): directories get their write bit back
 * first. Files are never chmod-ed, as they may be hard links shared with other store paths.
 */
export function removeTree(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (st.isDirectory()) makeDirsWritable(path);
  rmSync(path, { recursive: true, force: true });
}

function makeDirsWritable(dir: string): void {
  const st = lstatSync(dir);
  if ((st.mode & 0o700) !== 0o700) chmodSync(dir, (st.mode & 0o7777) | 0o700);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) makeDirsWritable(join(dir, entry.name));
  }
}

/** Bytes of a tree on disk, counting each inode once per call (hard links within it are shared). */
export function treeBytes(path: string, seen = new Set<string>()): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  const key = `${st.dev}:${st.ino}`;
  if (seen.has(key)) return 0;
  seen.add(key);
  let total = st.size;
  if (st.isDirectory()) for (const e of readdirSync(path)) total += treeBytes(join(path, e), seen);
  return total;
}
