/**
 * Inter-process locks and process identity.
 *
 * Why lock files (O_EXCL-style, via link(2)) and not flock(1): Node has no flock, and holding a
 * kernel lock through a helper process costs a process per lock, which adds up when thousands of
 * packages are unpacked. A lock file that names its holder works with plain syscalls; a lock whose
 * holder is dead is stale and may be broken. Holders are identified by pid *and* process start time
 * (from /proc), so a recycled pid does not keep a dead holder's lock alive.
 *
 * The file is created complete: the token is written to a private temporary file which is then
 * link(2)ed to the lock name, an atomic create-if-absent, so no reader ever sees an empty lock.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';

/** Start time of a process in clock ticks since boot, or undefined where /proc is unavailable. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19]; // field 22, starttime
  } catch {
    return undefined;
  }
}

let ownToken: string | undefined;

/** Identifies this process: `<pid>_<starttime>`. Appears in lock files, temporary names and temp-root files. */
export function processToken(): string {
  ownToken ??= `${process.pid}_${startTime(process.pid) ?? '0'}`;
  return ownToken;
}

/** Is the process a token names still running (and the same process, not a recycled pid)? */
export function isAlive(token: string): boolean {
  const m = /^(\d+)_(\d+)$/.exec(token.trim());
  if (!m) return false;
  const pid = Number(m[1]);
  if (token.trim() === processToken()) return true;
  const start = startTime(pid);
  if (start !== undefined) return m[2] === '0' || start === m[2];
  return pidAlive(pid);
}

/** Is a process of this pid running (signal 0; EPERM means it runs as another user)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The live holder of a lock file, if any. */
export function lockHolder(path: string): string | undefined {
  const token = readOrUndefined(path)?.trim();
  return token && isAlive(token) ? token : undefined;
}

/** Tries once to create the lock file. True when this process now holds it. */
function tryCreate(path: string): boolean {
  const tmp = `${path}.new.${processToken()}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, processToken() + '\n');
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * Removes a lock whose holder is dead. The lock is first renamed to a private name, so two
 * processes breaking it at once cannot both succeed; if what was renamed turns out to be a fresh,
 * live lock (another process broke the stale one and took the lock in between), it is put back.
 */
function breakStale(path: string, staleContent: string): void {
  const aside = `${path}.stale.${processToken()}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = readOrUndefined(aside);
  if (moved !== undefined && moved !== staleContent) {
    try {
      linkSync(aside, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  unlinkSync(aside);
}

export interface LockOptions {
  /** Wait for a live holder to release it (default), or give up at once. */
  wait?: boolean;
  /** Called once when the lock is held by someone else and we start waiting. */
  onWait?: (holder: string) => void;
}

/** A held lock. */
export interface Lock {
  path: string;
  release(): void;
}

/**
 * Acquires the lock at `path`. Returns undefined when `wait` is false and a live process holds it.
 * Waiting polls with a growing interval: lock holders are builds, which take milliseconds to minutes.
 */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<Lock | undefined> {
  let interval = 5;
  let announced = false;
  for (;;) {
    if (tryCreate(path)) return { path, release: () => releaseLock(path) };
    const content = readOrUndefined(path);
    if (content === undefined) continue; // released between our attempt and the read
    const holder = content.trim();
    if (!isAlive(holder)) {
      breakStale(path, content);
      continue;
    }
    if (opts.wait === false) return undefined;
    if (!announced) {
      announced = true;
      opts.onWait?.(holder);
    }
    await delay(interval);
    interval = Math.min(interval * 2, 100);
  }
}

/** Non-waiting variant for callers that must not yield (GC deciding whether to skip a path). */
export function tryLockSync(path: string): Lock | undefined {
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(path)) return { path, release: () => releaseLock(path) };
    const content = readOrUndefined(path);
    if (content === undefined) continue;
    if (isAlive(content.trim())) return undefined;
    breakStale(path, content);
  }
  return undefined;
}

function releaseLock(path: string): void {
  // Only remove the lock if it is still ours (it always should be; this guards against surprises).
  if (readOrUndefined(path)?.trim() === processToken()) {
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * Removes leftovers of dead processes in a lock directory: lock files of dead holders and the
 * private temporary files of interrupted lock operations. Returns how many were removed.
 */
export function sweepLocks(dir: string): number {
  let removed = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = join(dir, entry);
    const m = /\.(?:new|stale)\.(\d+_\d+)\.[0-9a-f]+$/.exec(entry);
    try {
      if (m) {
        if (!isAlive(m[1]!)) {
          unlinkSync(full);
          removed++;
        }
      } else if (entry.endsWith('.lock')) {
        const content = readOrUndefined(full);
        if (content !== undefined && !isAlive(content.trim())) {
          breakStale(full, content);
          removed++;
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return removed;
}

