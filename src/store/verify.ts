/** Checking the store against its metadata. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LOGICAL_STORE } from '../paths.js';
import { lockHolder } from './lock.js';
import { dumpTree } from './nar.js';
import { isStoreBaseName } from './storepath.js';
import type { Store } from './store.js';

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
