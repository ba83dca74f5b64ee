/**
 * Checking that a closure names nothing of the machine that built it: a built system must mean
 * the same on any machine, and a path of the builder in it would be a dangling reference there.
 */
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/index.js';

/** A place in a closure where a forbidden string occurs. */
export interface HostPathHit {
  /** Logical path of the file or link. */
  path: string;
  needle: string;
  /** `content` or `link` (the symlink's target). */
  where: 'content' | 'link';
}

/** Does the file contain any needle? Read in chunks that overlap by the longest needle. */
function scanFile(file: string, needles: Buffer[]): Buffer | undefined {
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const buf = Buffer.allocUnsafe((1 << 20) + overlap);
  const fd = openSync(file, 'r');
  try {
    let kept = 0;
    for (;;) {
      const n = readSync(fd, buf, kept, buf.length - kept, null);
      if (n === 0) return undefined;
      const view = buf.subarray(0, kept + n);
      for (const needle of needles) if (view.includes(needle)) return needle;
      kept = Math.min(overlap, view.length);
      view.copy(buf, 0, view.length - kept);
    }
  } finally {
    closeSync(fd);
  }
}

/** Every occurrence (one per file) of the needles in the files and link targets of `paths`. */
export function findHostPaths(store: Store, paths: string[], needles: string[]): HostPathHit[] {
  const bufs = needles.filter((n) => n.length > 0).map((n) => Buffer.from(n));
  const hits: HostPathHit[] = [];
  const walk = (phys: string): void => {
    const st = lstatSync(phys);
    if (st.isSymbolicLink()) {
      const target = readlinkSync(phys);
      for (const n of needles) if (target.includes(n)) hits.push({ path: store.toLogical(phys), needle: n, where: 'link' });
    } else if (st.isDirectory()) {
      for (const e of readdirSync(phys)) walk(join(phys, e));
    } else if (st.isFile()) {
      const hit = scanFile(phys, bufs);
      if (hit) hits.push({ path: store.toLogical(phys), needle: hit.toString(), where: 'content' });
    }
  };
  for (const p of paths) walk(store.toPhysical(p));
  return hits;
}
