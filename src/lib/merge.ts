import { CairnError } from '../errors.js';
import type { SourceLocation } from './location.js';
import { If, Merge, Order, Override, ORDER, PRIORITY, Thunk } from './properties.js';
import { isRef, resolveRef } from './refs.js';
import { PRIORITY_HINT, showDefs, showOption, showValue } from './show.js';
import type { OptionType } from './types.js';

/** One definition of an option: its value (possibly wrapped in properties) and where it was written. */
export interface Definition {
  loc: SourceLocation;
  value: unknown;
}

/** A definition after its properties were discharged. */
export interface FinalDefinition extends Definition {
  priority: number;
  order: number;
}

/** A user-caused error in the module system. */
export class OptionError extends CairnError {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

/** Forces lazy values (getters, config references) until a real value appears. */
export function force(v: unknown): unknown {
  for (;;) {
    if (v instanceof Thunk) v = v.force();
    else if (isRef(v)) v = resolveRef(v as object);
    else return v;
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Reads `obj[key]` keeping getters lazy: a getter becomes a thunk evaluated on first use. */
export function lazyEntry(obj: object, key: string): unknown {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  if (!d) return undefined;
  return d.get ? new Thunk(() => (obj as Record<string, unknown>)[key]) : d.value;
}

function evalCondition(p: If, loc: SourceLocation): boolean {
  let c: unknown = p.condition;
  if (typeof c === 'function' && !isRef(c)) c = (c as () => unknown)();
  c = force(c);
  if (typeof c !== 'boolean') {
    throw new OptionError(`\`mkIf' called with a non-Boolean condition (${showValue(c)})${showDefs([{ loc: p.location ?? loc, value: c }], false)}`);
  }
  return c;
}

/**
 * Removes `mkMerge`, `mkIf`, `mkOverride` and `mkOrder` from a definition (NixOS's
 * dischargeProperties plus priority and order extraction). The outermost priority/order wins.
 */
export function discharge(def: Definition, out: FinalDefinition[], priority?: number, order?: number): void {
  dischargeValue(def.loc, def.value, out, priority, order);
}

/** discharge of a definition's value at `loc`: no definition made for each property unwrapped. */
function dischargeValue(loc: SourceLocation, value: unknown, out: FinalDefinition[], priority: number | undefined, order: number | undefined): void {
  const v = force(value);
  if (v instanceof Merge) {
    for (const c of v.contents) dischargeValue(loc, c, out, priority, order);
  } else if (v instanceof If) {
    if (evalCondition(v, loc)) dischargeValue(loc, v.content, out, priority, order);
  } else if (v instanceof Override) {
    dischargeValue(loc, v.content, out, priority ?? v.priority, order);
  } else if (v instanceof Order) {
    dischargeValue(loc, v.content, out, priority, order ?? v.priority);
  } else {
    out.push({ loc, value: v, priority: priority ?? PRIORITY.plain, order: order ?? ORDER.default });
  }
}

export interface PreparedDefinitions {
  /** Definitions at the winning priority, sorted by order. */
  defs: FinalDefinition[];
  /** The winning priority; Infinity when nothing is defined. */
  highestPrio: number;
}

/**
 * Discharge, keep only the highest priority (lowest number), sort by mkOrder (stable). An option's
 * default, when given, goes first at mkOptionDefault priority (as if wrapped in mkOptionDefault,
 * without making the wrapper: every option has one).
 */
export function prepareDefinitions(defs: readonly Definition[], optionDefault?: Definition): PreparedDefinitions {
  const all: FinalDefinition[] = [];
  if (optionDefault) discharge(optionDefault, all, PRIORITY.optionDefault);
  for (const d of defs) discharge(d, all);
  let highestPrio = Infinity;
  let lowest = -Infinity;
  let ordered = false;
  for (const d of all) {
    if (d.priority < highestPrio) highestPrio = d.priority;
    if (d.priority > lowest) lowest = d.priority;
    if (d.order !== ORDER.default) ordered = true;
  }
  // Most options have definitions of one priority in the default order: nothing to drop or sort.
  if (lowest !== highestPrio) {
    let w = 0;
    for (const d of all) if (d.priority === highestPrio) all[w++] = d;
    all.length = w;
  }
  // A copy of its length: an array pushed to keeps room for more, and options keep these.
  const kept = all.slice();
  if (ordered) sortByOrder(kept);
  return { defs: kept, highestPrio };
}

/** A stable sort by mkOrder, in place: an insertion sort for the few definitions an option has (Array's sort allocates). */
function sortByOrder(defs: FinalDefinition[]): void {
  if (defs.length > 16) {
    defs.sort((a, b) => a.order - b.order);
    return;
  }
  for (let i = 1; i < defs.length; i++) {
    const d = defs[i]!;
    let j = i - 1;
    for (; j >= 0 && defs[j]!.order > d.order; j--) defs[j + 1] = defs[j]!;
    defs[j + 1] = d;
  }
}

/** Type-checks the top of every definition, then merges them with the type's rule. */
export function checkAndMerge(loc: string[], type: OptionType, defs: FinalDefinition[], ctx: MergeContext): unknown {
  // A loop before the filter: every option and element is checked, and almost all pass.
  let valid = true;
  for (let i = 0; i < defs.length && valid; i++) valid = type.check(defs[i]!.value);
  const invalid = valid ? [] : defs.filter((d) => !type.check(d.value));
  if (invalid.length) {
    throw new OptionError(`A definition for option \`${showOption(loc)}' is not of type \`${type.description}'. Definition values:${showDefs(invalid, !type.secret)}`);
  }
  return type.merge(loc, defs, ctx);
}

/** Full merge of one option's (or one element's) definitions; `undefined` value when none remain. */
export function mergeDefinitions(loc: string[], type: OptionType, defs: readonly Definition[], ctx: MergeContext): { isDefined: boolean; value: () => unknown; prepared: PreparedDefinitions } {
  const prepared = prepareDefinitions(defs);
  let done = false;
  let value: unknown;
  return {
    isDefined: prepared.defs.length > 0,
    prepared,
    value: () => {
      if (!done) {
        value = checkAndMerge(loc, type, prepared.defs, ctx);
        done = true;
      }
      return value;
    },
  };
}

/** Context handed to type merges: what nested evaluations (submodules) inherit. */
export interface MergeContext {
  specialArgs: Record<string, unknown>;
}

/** All definitions must be equal (bool, int, str, …). */
export function mergeEqualOption(loc: string[], defs: readonly FinalDefinition[]): unknown {
  if (defs.length === 0) throw new OptionError(`The option \`${showOption(loc)}' has no definitions.`);
  const first = defs[0]!.value;
  let equal = true;
  for (let i = 1; i < defs.length && equal; i++) equal = deepEqual(defs[i]!.value, first);
  if (equal) return first;
  throw new OptionError(`The option \`${showOption(loc)}' has conflicting definition values:${showDefs(defs)}\n${PRIORITY_HINT}`);
}

/** Exactly one definition (package, raw, uniq). */
export function mergeUniqueOption(loc: string[], defs: readonly FinalDefinition[], message = ''): unknown {
  if (defs.length === 1) return defs[0]!.value;
  throw new OptionError(
    `The option \`${showOption(loc)}' is defined multiple times while it's expected to be unique.${message ? `\n${message}` : ''}\nDefinition values:${showDefs(defs)}\n${PRIORITY_HINT}`,
  );
}

export function deepEqual(a: unknown, b: unknown): boolean {
  a = force(a);
  b = force(b);
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return Number.isNaN(a) && Number.isNaN(b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Defines `obj[key]` computed on first read, then remembered. The getter keeps the value itself:
 * turning the accessor into a data property on first read changes the object's shape each time,
 * which costs quadratic time on objects with thousands of keys.
 */
export function defineLazy(obj: object, key: string, fn: () => unknown): void {
  let done = false;
  let value: unknown;
  Object.defineProperty(obj, key, {
    enumerable: true,
    configurable: true,
    get() {
      if (!done) {
        value = fn();
        done = true;
      }
      return value;
    },
  });
}
