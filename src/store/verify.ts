/** Checking the store against its metadata. */
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LOGICAL_STORE } from '../paths.js';
import { acquireLock, lockHolder } from './lock.js';
import { dumpTree } from './nar.js';
import { isStoreBaseName } from './storepath.js';
import { referencesFirst, type Store } from './store.js';

export interface VerifyProblem {
  path: string;
  problem: string;
}

/**
 * Finds store objects without metadata, metadata without objects, references to invalid paths and,
 * with `checkContents`, objects whose contents no longer match their recorded hash. Paths that a
 * live process is building are in flux and not reported.
 */
export async function verifyStore(
  store: Store,
  opts: { checkContents?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  const entries = new Set(readdirSync(store.dir).filter(isStoreBaseName));
  const infos = new Set(
    readdirSync(store.infoDir)
      .filter((e) => e.endsWith('.json') && isStoreBaseName(e.slice(0, -5)))
      .map((e) => e.slice(0, -5)),
  );
  const busy = (base: string): boolean => lockHolder(join(store.locksDir, `${base}.lock`)) !== undefined;
  const all = [...new Set([...entries, ...infos])].sort();
  let done = 0;
  for (const base of all) {
    opts.onProgress?.(++done, all.length);
    const path = `${LOGICAL_STORE}/${base}`;
    if (!infos.has(base)) {
      if (!busy(base)) problems.push({ path, problem: 'metadata missing (an incomplete or damaged path; gc removes it)' });
      continue;
    }
    if (!entries.has(base)) {
      if (!busy(base)) problems.push({ path, problem: 'contents missing (gc removes the leftover metadata)' });
      continue;
    }
    const damaged = store.damagedInfo(base);
    if (damaged) {
      problems.push({ path, problem: `metadata damaged (${damaged.file}: ${damaged.problem}); \`cairn store repair\` removes the path and what refers to it` });
      continue;
    }
    let info;
    try {
      info = store.pathInfo(path);
    } catch {
      problems.push({ path, problem: 'metadata unreadable' });
      continue;
    }
    for (const r of info.references) {
      if (!store.isValid(r)) problems.push({ path, problem: `references ${r}, which is not valid` });
    }
    if (opts.checkContents) {
      try {
        const dump = await dumpTree(store.toPhysical(path));
        if (dump.narHash !== info.narHash || dump.narSize !== info.narSize) {
          problems.push({ path, problem: `contents changed (hash ${dump.narHash}, recorded ${info.narHash})` });
        }
      } catch (err) {
        problems.push({ path, problem: `contents unreadable: ${(err as Error).message}` });
      }
    }
  }
  return problems;
}

export interface RepairResult {
  /** Paths whose metadata was damaged, with the file and what was wrong. */
  damaged: { path: string; file: string; problem: string }[];
  /** Logical paths removed (or, in a dry run, that would be): the damaged ones and their referrers. */
  removed: string[];
  /** Paths left alone because a live process holds them. */
  skipped: string[];
}

/**
 * Repairs what `verifyStore` finds that the store cannot use: a path whose metadata is damaged
 * cannot be trusted (its references and setuid modes are lost), so it is removed with every path
 * that refers to it, directly or not; the next build makes them again. Leftovers of crashed
 * processes (metadata without contents and the reverse) are swept as GC does. Referrers go before
 * what they refer to and metadata before contents, so every step leaves a consistent store.
 */
export async function repairStore(store: Store, opts: { dryRun?: boolean } = {}): Promise<RepairResult> {
  const gcLock = opts.dryRun ? undefined : await acquireLock(store.gcLockPath);
  try {
    if (!opts.dryRun) store.sweep();
    const damaged: RepairResult['damaged'] = [];
    const referrers = new Map<string, string[]>();
    for (const base of readdirSync(store.dir).filter(isStoreBaseName)) {
      const path = `${LOGICAL_STORE}/${base}`;
      const bad = store.damagedInfo(base);
      if (bad) {
        damaged.push({ path, ...bad });
        continue;
      }
      if (!store.isValid(path)) continue;
      for (const r of store.pathInfo(path).references) if (r !== path) referrers.set(r, [...(referrers.get(r) ?? []), path]);
    }
    const doomed = new Set<string>();
    const todo = damaged.map((d) => d.path);
    while (todo.length > 0) {
      const p = todo.pop()!;
      if (doomed.has(p)) continue;
      doomed.add(p);
      todo.push(...(referrers.get(p) ?? []));
    }
    const referencesOf = (p: string): string[] => (store.damagedInfo(basename(p)) ? [] : store.pathInfo(p).references);
    const removed: string[] = [];
    const skipped: string[] = [];
    for (const p of referencesFirst(doomed, referencesOf).reverse()) {
      if (opts.dryRun) {
        removed.push(p);
        continue;
      }
      const lock = store.tryLockPath(basename(p));
      if (!lock) {
        skipped.push(p);
        continue;
      }
      try {
        store.deletePath(basename(p));
        removed.push(p);
      } finally {
        lock.release();
      }
    }
    return { damaged, removed, skipped };
  } finally {
    gcLock?.release();
  }
}
