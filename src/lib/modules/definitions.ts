import { entryLocation, keyLocation, setEntryLocation, type SourceLocation } from '../location.js';
import { force, isPlainObject, lazyEntry, type Definition } from '../merge.js';
import { isOption } from '../options.js';
import { If, Merge, Order, Override, Thunk } from '../properties.js';
import type { NamespaceNode } from './declarations.js';
import type { Evaluation } from './evaluation.js';
import type { CollectedModule } from './syntax.js';

// Definitions: each module's `config` pushed down the declaration tree to the options it defines,
// mkMerge flattened and mkIf/mkOverride carried to each attribute (NixOS's pushDownProperties).

/** Which module gave a definition, for those of modules that run twice. */
export const definedBy = new WeakMap<Definition, CollectedModule>();

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
    for (const def of this.defs) {
      const from = definedBy.get(def);
      for (const { obj, wraps, loc } of expandSet(def.value, [], def.loc, (v, l) => this.ev.notASet(this.node.path, v, l))) {
        for (const key of Object.keys(obj)) {
          const d = entryDefinition(obj, key, wraps, loc);
          if (from) definedBy.set(d, from);
          if (this.node.children.has(key)) {
            let list = matched.get(key);
            if (!list) matched.set(key, (list = []));
            list.push(d);
          } else unmatched.push({ path: [...this.node.path, key], def: d });
        }
      }
    }
    return (this.result = { matched, unmatched });
  }
}

/** Flattens mkMerge and pushes mkIf/mkOverride into the attributes of a namespace's definition. */
function* expandSet(
  value: unknown,
  wraps: ((v: unknown) => unknown)[],
  loc: SourceLocation,
  notASet: (v: unknown, loc: SourceLocation) => never,
): Generator<{ obj: Record<string, unknown>; wraps: ((v: unknown) => unknown)[]; loc: SourceLocation }> {
  const v = force(value);
  if (v instanceof Merge) {
    for (const c of v.contents) yield* expandSet(c, wraps, loc, notASet);
  } else if (v instanceof If) {
    yield* expandSet(v.content, [...wraps, (x) => new If(v.condition, x, v.site)], loc, notASet);
  } else if (v instanceof Override) {
    yield* expandSet(v.content, [...wraps, (x) => new Override(v.priority, x, v.site)], loc, notASet);
  } else if (v instanceof Order) {
    yield* expandSet(v.content, wraps, loc, notASet);
  } else if (v === null || v === undefined) {
    // An empty YAML mapping (`services:` with everything below commented out) defines nothing.
  } else if (isPlainObject(v)) {
    yield { obj: v, wraps, loc };
  } else {
    notASet(v, loc);
  }
}

/** The definitions at `path` within definitions of the whole config (NixOS's pushDownProperties, one path). */
export function pushDown(defs: Definition[], path: string[], notASet: (path: string[], value: unknown, loc: SourceLocation) => never): Definition[] {
  let at = defs;
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    const next: Definition[] = [];
    for (const def of at) {
      for (const { obj, wraps, loc } of expandSet(def.value, [], def.loc, (v, l) => notASet(path.slice(0, i), v, l))) {
        if (Object.prototype.hasOwnProperty.call(obj, key)) next.push(entryDefinition(obj, key, wraps, loc));
      }
    }
    at = next;
  }
  return at;
}

/** The definition of one attribute of a set's definition, within that set's mkIf/mkOverride. */
function entryDefinition(obj: Record<string, unknown>, key: string, wraps: ((v: unknown) => unknown)[], loc: SourceLocation): Definition {
  let value = lazyEntry(obj, key);
  for (let i = wraps.length - 1; i >= 0; i--) value = wraps[i]!(value);
  return { loc: entryLocation(obj, key) ?? keyLocation(loc, key), value };
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
