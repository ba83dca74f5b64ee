import { entryLocations, keyLocation, setEntryLocation, type SourceLocation } from '../location.js';
import { force, isPlainObject, lazyEntry, type Definition } from '../merge.js';
import { isOption } from '../options.js';
import { If, Merge, Order, Override, Thunk } from '../properties.js';
import { NamespaceNode } from './declarations.js';
import type { Evaluation } from './evaluation.js';
import type { CollectedModule } from './syntax.js';

// Definitions: each module's `config` pushed down the declaration tree to the options it defines,
// mkMerge flattened and mkIf/mkOverride carried to each attribute (NixOS's pushDownProperties).

/**
 * A definition from a module that runs twice (its second run's replace it), with the module. A
 * field rather than a WeakMap beside: such modules make most definitions of some configurations.
 */
interface ModuleDefinition extends Definition {
  module: CollectedModule | undefined;
}

/** Which module gave a definition, for those of modules that run twice. */
export const definedBy = (def: Definition): CollectedModule | undefined => (def as Partial<ModuleDefinition>).module;

/** A definition of the whole config by a module (`module` when it runs twice). */
export const moduleDefinition = (loc: SourceLocation, value: unknown, module: CollectedModule | undefined): ModuleDefinition => ({ loc, value, module });

/** Definitions arriving at one namespace, split among its children. */
export class NamespaceEval {
  private result?: { matched: Map<string, Definition[]>; unmatched: { path: string[]; def: Definition }[] };
  constructor(
    private readonly ev: Evaluation,
    private readonly node: NamespaceNode,
    readonly defs: Definition[],
  ) {}

  split(): { matched: Map<string, Definition[]>; unmatched: { path: string[]; def: Definition }[] } {
    if (this.result) return this.result;
    const matched = new Map<string, Definition[]>();
    const unmatched: { path: string[]; def: Definition }[] = [];
    const children = this.node.children;
    const notASet = (v: unknown, l: SourceLocation): never => this.ev.notASet(this.node.path, v, l);
    for (const def of this.defs) {
      const from = definedBy(def);
      // An option's definitions from a module that runs twice are replaced by its second run's
      // (fromSecondRuns): only which module defines it is needed, and one stand-in says that.
      let stands: ModuleDefinition | undefined;
      expandSet(def.value, NO_WRAPS, def.loc, notASet, (obj, wraps, loc) => {
        const positions = entryLocations(obj);
        for (const key of Object.keys(obj)) {
          const child = children.get(key);
          if (from && child && !(child instanceof NamespaceNode)) {
            const list = matched.get(key);
            stands ??= moduleDefinition(def.loc, undefined, from);
            if (list) list.push(stands);
            else matched.set(key, [stands]);
            continue;
          }
          const d = entryDefinition(obj, key, wraps, loc, positions, from);
          if (child) {
            const list = matched.get(key);
            if (list) list.push(d);
            else matched.set(key, [d]);
          } else unmatched.push({ path: [...this.node.path, key], def: d });
        }
      });
    }
    return (this.result = { matched, unmatched });
  }
}

type Wrap = (v: unknown) => unknown;
const NO_WRAPS: Wrap[] = [];

/** Flattens mkMerge and pushes mkIf/mkOverride into the attributes of a namespace's definition: each set found goes to `found`. */
function expandSet(
  value: unknown,
  wraps: Wrap[],
  loc: SourceLocation,
  notASet: (v: unknown, loc: SourceLocation) => never,
  found: (obj: Record<string, unknown>, wraps: Wrap[], loc: SourceLocation) => void,
): void {
  const v = force(value);
  if (v instanceof Merge) {
    for (const c of v.contents) expandSet(c, wraps, loc, notASet, found);
  } else if (v instanceof If) {
    expandSet(v.content, [...wraps, (x) => new If(v.condition, x, v.site)], loc, notASet, found);
  } else if (v instanceof Override) {
    expandSet(v.content, [...wraps, (x) => new Override(v.priority, x, v.site)], loc, notASet, found);
  } else if (v instanceof Order) {
    expandSet(v.content, wraps, loc, notASet, found);
  } else if (v === null || v === undefined) {
    // An empty YAML mapping (`services:` with everything below commented out) defines nothing.
  } else if (isPlainObject(v)) {
    found(v, wraps, loc);
  } else {
    notASet(v, loc);
  }
}

/** Definitions of a set of options split among its attributes (NixOS's pushDownProperties, one level). */
export function splitDefinitions(defs: Definition[], notASet: (value: unknown, loc: SourceLocation) => never): Map<string, Definition[]> {
  const out = new Map<string, Definition[]>();
  for (const def of defs) {
    expandSet(def.value, NO_WRAPS, def.loc, notASet, (obj, wraps, loc) => {
      const positions = entryLocations(obj);
      for (const key of Object.keys(obj)) {
        const d = entryDefinition(obj, key, wraps, loc, positions);
        const list = out.get(key);
        if (list) list.push(d);
        else out.set(key, [d]);
      }
    });
  }
  return out;
}

/** The definition of one attribute of a set's definition, within that set's mkIf/mkOverride. */
function entryDefinition(
  obj: Record<string, unknown>,
  key: string,
  wraps: ((v: unknown) => unknown)[],
  loc: SourceLocation,
  positions: ReadonlyMap<string, SourceLocation> | undefined,
  module?: CollectedModule,
): ModuleDefinition {
  let value = lazyEntry(obj, key);
  for (let i = wraps.length - 1; i >= 0; i--) value = wraps[i]!(value);
  return moduleDefinition(positions?.get(key) ?? keyLocation(loc, key), value, module);
}

/** An undeclared definition at `path` as a value of the whole config (for the freeformType), its position kept. */
export function nest(path: string[], def: Definition): unknown {
  let v: unknown = def.value;
  for (let i = path.length - 1; i >= 0; i--) {
    const o = { [path[i]!]: v };
    setEntryLocation(o, path[i]!, def.loc);
    v = o;
  }
  return v;
}

/** Whether an undeclared definition is, or holds, an mkOption (read without running getters). */
export function holdsOption(value: unknown, depth = 0): boolean {
  // A getter is never run for a hint: its value may throw, or need config.
  if (value instanceof Thunk) return false;
  const v = force(value);
  if (isOption(v)) return true;
  if (depth > 8 || !isPlainObject(v)) return false;
  return Object.values(Object.getOwnPropertyDescriptors(v)).some((d) => !d.get && holdsOption(d.value, depth + 1));
}
