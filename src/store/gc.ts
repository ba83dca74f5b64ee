/** Garbage collection: delete every store object not reachable from a root. */
import { lstatSync, readdirSync, readlinkSync, unlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { LOGICAL_STORE } from '../paths.js';
import { acquireLock } from './lock.js';
import { isStoreBaseName } from './storepath.js';
import { referencesFirst, type Store } from './store.js';

/** A GC root: the link that keeps a store path alive. */
export interface GcRoot {
  link: string;
  path: string;
}

/** Walks a directory tree for symlinks without following symlinked directories. */
function symlinksUnder(dir: string, skip?: string): string[] {
  const out: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const full = join(dir, e.name);
    if (full === skip) continue;
    if (e.isSymbolicLink()) out.push(full);
    else if (e.isDirectory()) out.push(...symlinksUnder(full, skip));
  }
  return out;
}

/**
 * The roots: symlinks under profiles/ and gcroots/ that lead (possibly through other links) to a
 * valid store path, and the out-links registered in gcroots/auto/. Auto roots whose out-link is gone
 * are removed unless `keepDangling`.
 */
export function findRoots(store: Store, opts: { keepDangling?: boolean } = {}): GcRoot[] {
  const roots: GcRoot[] = [];
  const consider = (link: string): void => {
    try {
      const path = store.resolve(link);
      if (store.isValid(path)) roots.push({ link, path });
    } catch {
      // not a link into the store: not a root
    }
  };
  for (const link of symlinksUnder(store.profilesDir)) consider(link);
  for (const link of symlinksUnder(store.gcrootsDir, store.autoRootsDir)) consider(link);
  // On a cairn system (home /cairn) the system profile and activation's roots live under /cairn/var,
  // and the running and booted generations are linked from /run.
  for (const dir of [join(store.home, 'var', 'profiles'), join(store.home, 'var', 'gcroots')]) for (const link of symlinksUnder(dir)) consider(link);
  if (store.dir === LOGICAL_STORE) for (const link of ['/run/current-system', '/run/booted-system']) consider(link);
  for (const auto of symlinksUnder(store.autoRootsDir)) {
    let outLink: string;
    try {
      outLink = readlinkSync(auto);
    } catch {
      continue;
    }
    let st: Stats | undefined;
    try {
      st = lstatSync(outLink);
    } catch {
      st = undefined;
    }
    if (!st?.isSymbolicLink()) {
      if (!opts.keepDangling) {
        try {
          unlinkSync(auto);
        } catch {
          // gone already
        }
      }
      continue;
    }
    consider(outLink);
  }
  return roots.sort((a, b) => (a.link < b.link ? -1 : a.link > b.link ? 1 : 0));
}

/** Like Store.closure, but tolerates dangling references (a damaged store must not stop GC from keeping what it can). */
function liveSet(store: Store, start: Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const todo = [...start];
  while (todo.length > 0) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      todo.push(...store.pathInfo(p).references);
    } catch {
      // invalid: nothing to follow
    }
  }
  return seen;
}

export interface GcResult {
  /** Logical paths deleted (or, in a dry run, that would be). */
  deleted: string[];
  /** Bytes given back: sizes of the inodes whose last link went away. */
  freedBytes: number;
  /** Paths kept because another process holds them. */
  skipped: string[];
}

/** Adds the inodes of a tree to `inodes`, counting how many of their links lie in doomed trees. */
function tallyInodes(path: string, inodes: Map<string, { size: number; nlink: number; seen: number }>): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  const key = `${st.dev}:${st.ino}`;
  const rec = inodes.get(key);
  if (rec) rec.seen++;
  else inodes.set(key, { size: st.size, nlink: st.isDirectory() ? 1 : st.nlink, seen: 1 });
  if (st.isDirectory()) for (const e of readdirSync(path)) tallyInodes(join(path, e), inodes);
}

/**
 * Deletes every store object outside the closure of the roots (profiles, gcroots, out-links, and
 * paths that running cairn processes use or build). Referrers are deleted before what they refer
 * to, and each path's metadata before its contents, so no valid path ever lacks a reference or
 * contents, even if GC is killed half-way. `dryRun` only reports.
 */
export async function collectGarbage(
  store: Store,
  opts: { dryRun?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<GcResult> {
  const gcLock = opts.dryRun ? undefined : await acquireLock(store.gcLockPath);
  try {
    if (!opts.dryRun) store.sweep();
    const rootPaths = findRoots(store, { keepDangling: opts.dryRun }).map((r) => r.path);
    const live = liveSet(store, [...rootPaths, ...store.liveTempRoots()]);

    const dead = new Set<string>();
    for (const e of readdirSync(store.dir)) if (isStoreBaseName(e)) dead.add(`${LOGICAL_STORE}/${e}`);
    for (const e of readdirSync(store.infoDir)) {
      if (e.endsWith('.json') && isStoreBaseName(e.slice(0, -5))) dead.add(`${LOGICAL_STORE}/${e.slice(0, -5)}`);
    }
    for (const p of live) dead.delete(p);

    // Referrers first: references first, reversed.
    const order = referencesFirst(dead, (p) => {
      try {
        return store.pathInfo(p).references;
      } catch {
        return []; // invalid path: no references
      }
    }).reverse();

    const inodes = new Map<string, { size: number; nlink: number; seen: number }>();
    for (const p of order) tallyInodes(store.toPhysical(p), inodes);
    let freedBytes = 0;
    for (const rec of inodes.values()) if (rec.seen >= rec.nlink) freedBytes += rec.size;

    const result: GcResult = { deleted: [], freedBytes, skipped: [] };
    let done = 0;
    for (const p of order) {
      opts.onProgress?.(++done, order.length);
      if (opts.dryRun) {
        result.deleted.push(p);
        continue;
      }
      const base = p.slice(LOGICAL_STORE.length + 1);
      const lock = store.tryLockPath(base);
      if (!lock) {
        result.skipped.push(p);
        continue;
      }
      try {
        store.deletePath(base);
        result.deleted.push(p);
      } finally {
        lock.release();
      }
    }
    result.deleted.sort();
    return result;
  } finally {
    gcLock?.release();
  }
}
