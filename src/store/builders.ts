import { CairnError } from '../errors.js';
import type { Derivation } from './derivation.js';
import type { Store } from './store.js';

/** What a builder receives. */
export interface BuildContext {
  /** Physical temporary path (inside the store directory) the builder creates and fills: a directory, a file or a symlink. */
  out: string;
  drv: Derivation;
  store: Store;
  log: (line: string) => void;
}

/** A setuid/setgid file the target system must restore (the building machine's store never carries these bits). */
export interface SetuidEntry {
  /** Path relative to the store path's root, e.g. `usr/bin/sudo`. */
  path: string;
  /** Full mode bits to restore, e.g. 0o4755. */
  mode: number;
}

export interface BuildResult {
  setuid?: SetuidEntry[];
}

export type Builder = (ctx: BuildContext) => Promise<BuildResult | void>;

const builders = new Map<string, Builder>();

/** Registers (or replaces) a builder under a name derivations refer to. */
export function registerBuilder(name: string, fn: Builder): void {
  builders.set(name, fn);
}

/** The builder a derivation names; a CairnError naming the known ones if it is not registered. */
export function getBuilder(name: string): Builder {
  const fn = builders.get(name);
  if (!fn) {
    const known = [...builders.keys()].sort().join(', ') || 'none';
    throw new CairnError(`no builder named '${name}' is registered (known: ${known})`);
  }
  return fn;
}
