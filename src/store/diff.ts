/** Comparing two closures per package, like `nix store diff-closures`. */
import { nameOf, splitName } from './storepath.js';
import type { Store } from './store.js';

export interface ClosureChange {
  pname: string;
  /** Versions in the first closure (sorted; `''` for a path without a version). */
  before: string[];
  after: string[];
  /** Change of the summed narSize of the package's paths, in bytes. */
  sizeDelta: number;
}

/** Per package name: the versions on each side and the change in size. Unchanged packages are left out. */
export function diffClosures(store: Store, a: string, b: string): ClosureChange[] {
  const tally = (root: string): Map<string, { versions: Set<string>; size: number }> => {
    const m = new Map<string, { versions: Set<string>; size: number }>();
    for (const p of store.closure([root])) {
      const { pname, version } = splitName(nameOf(p));
      let rec = m.get(pname);
      if (!rec) m.set(pname, (rec = { versions: new Set(), size: 0 }));
      rec.versions.add(version);
      rec.size += store.pathInfo(p).narSize;
    }
    return m;
  };
  const before = tally(a);
  const after = tally(b);
  const changes: ClosureChange[] = [];
  for (const pname of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const x = before.get(pname);
    const y = after.get(pname);
    const vx = [...(x?.versions ?? [])].sort();
    const vy = [...(y?.versions ?? [])].sort();
    const sizeDelta = (y?.size ?? 0) - (x?.size ?? 0);
    if (vx.join('\0') === vy.join('\0') && sizeDelta === 0 && x !== undefined && y !== undefined) continue;
    changes.push({ pname, before: vx, after: vy, sizeDelta });
  }
  return changes;
}

/** `1.5 KiB`, `-12.3 MiB`: sizes as diff-closures and gc print them. */
export function formatBytes(n: number, signed = false): string {
  const sign = n < 0 ? '-' : signed ? '+' : '';
  let v = Math.abs(n);
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${sign}${v} bytes` : `${sign}${v.toFixed(1)} ${units[u]}`;
}

/** One line per change: `openssl: 3.0.11-1~deb12u2 → 3.0.13-1~deb12u1, +12.3 KiB`; ∅ marks absence, ε an empty version. */
export function formatChange(c: ClosureChange): string {
  const side = (vs: string[]): string => (vs.length === 0 ? '∅' : vs.map((v) => v || 'ε').join(', '));
  const parts: string[] = [];
  if (c.before.join('\0') !== c.after.join('\0') || c.before.length === 0 || c.after.length === 0) {
    parts.push(`${side(c.before)} → ${side(c.after)}`);
  }
  if (c.sizeDelta !== 0) parts.push(formatBytes(c.sizeDelta, true));
  return `${c.pname}: ${parts.join(', ')}`;
}
