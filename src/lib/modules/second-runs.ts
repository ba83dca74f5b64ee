import { formatLocation, withDeferredSites, type SourceLocation } from '../location.js';
import { lib } from '../lib.js';
import { force, isPlainObject, lazyEntry, type Definition, type OptionError } from '../merge.js';
import { isOption } from '../options.js';
import { pkgs } from '../package.js';
import { If, Merge, Order, Override, Thunk } from '../properties.js';
import { isRef, makeRef, refPath, withOtherStandIns, withStandIns } from '../refs.js';
import { userCodeError } from '../usercode.js';
import { definedBy, splitDefinitions } from './definitions.js';
import type { Evaluation } from './evaluation.js';
import { evaluating, recursionError, secondRunBody, type OptionState } from './option-values.js';
import { normalizeModule, type CollectedModule, type ModuleArgs } from './syntax.js';

// Second runs: a module function that read config or options while it was collected runs again
// once options have values, and its definitions and computed defaults are taken from that run.
// (NixOS needs none: a lazy language reads config only where a value is needed.)

/** A module's second run: its function called again with option values. */
export interface SecondRun {
  module: CollectedModule;
  /** The option whose definitions asked for it, for the chain of a cycle. */
  requester?: OptionState;
  done: boolean;
  config?: unknown;
  configLoc?: SourceLocation;
  options?: unknown;
  /** Values its body needed that could not be computed yet (a cycle, so far) got stand-ins: those cycles. */
  partial?: OptionError[];
  /** Its definitions split namespace by namespace, as read. */
  split?: RunSplit;
}

/** A second run's definitions of one namespace, and once split, those of its children. */
interface RunSplit {
  defs: Definition[];
  children?: Map<string, Definition[]>;
  below?: Map<string, RunSplit>;
}

// Made with every field, set or not: one shape for all, where fields added later would make the
// reads of them polymorphic (each option of each module that runs twice reads them).
const secondRun = (module: CollectedModule, requester: OptionState | undefined): SecondRun => ({
  module,
  requester,
  done: false,
  config: undefined,
  configLoc: undefined,
  options: undefined,
  partial: [],
  split: undefined,
});
const runSplit = (defs: Definition[]): RunSplit => ({ defs, children: undefined, below: undefined });

/** The second runs of one evaluation's modules. */
export class SecondRuns {
  private readonly done = new Map<CollectedModule, SecondRun>();
  /** Modules whose second run is under way, and how many times over. */
  private readonly running = new Map<CollectedModule, number>();
  /** The objects of config's sets of options (the evaluation adds them), and their views for second runs. */
  private configSets?: WeakSet<object>;
  private views?: WeakMap<object, Record<string, unknown>>;
  private args?: ModuleArgs;

  constructor(private readonly ev: Evaluation) {}

  /** An object of config's sets of options, which second runs read through a view. */
  addConfigSet(obj: object): void {
    (this.configSets ??= new WeakSet()).add(obj);
  }

  private runAgain(run: SecondRun): SecondRun {
    const mod = run.module;
    const ev = this.ev;
    const body = secondRunBody.of;
    secondRunBody.of = run;
    let value: unknown;
    try {
      // As in a first run, specialArgs may replace any argument. One object for all second runs.
      const args = (this.args ??= Object.freeze({ name: '', config: this.strictView(ev.config, []), options: ev.options, lib, pkgs, ...ev.specialArgs }));
      value = force(withDeferredSites(() => withStandIns(0, () => mod.rerun!(ev.standInArgs())), () => mod.rerun!(args)));
    } catch (err) {
      throw userCodeError(err, () => `while computing the definitions of the module \`${formatLocation(mod.loc)}'`);
    } finally {
      secondRunBody.of = body;
    }
    const again = normalizeModule(value, mod.key, mod.loc, false, mod.yaml);
    run.config = again.config;
    run.configLoc = again.configLoc;
    // Its declarations are read only for defaults computed from config (laterDefault): else
    // they are let go, with their sites and types.
    run.options = mod.laterDefaults?.size ? again.options : undefined;
    run.done = true;
    return run;
  }

  /**
   * What a module's second run gives at one place (`extract`). When the run is under way (its body
   * read an option that needs this module: JavaScript runs the whole body, where NixOS would only
   * evaluate what is needed), the module runs twice more with different stand-ins for the values
   * that cannot be computed yet: the same result both times does not depend on them; a different
   * one does, and that is infinite recursion.
   */
  private fromSecondRun<T>(mod: CollectedModule, extract: (run: SecondRun) => T, same: (a: T, b: T) => boolean): T {
    const done = this.done.get(mod);
    if (done) return extract(done);
    const requester = evaluating[evaluating.length - 1];
    // A run within a run of the same module comes with a new option being computed; the bound is
    // only a guard.
    const depth = this.running.get(mod) ?? 0;
    if (depth >= 16) {
      const msg = requester ? requester.recursion().message : `infinite recursion encountered: the module \`${formatLocation(mod.loc)}' needs its own definitions to compute them.`;
      throw recursionError(msg);
    }
    this.running.set(mod, depth + 1);
    try {
      const a = secondRun(mod, requester);
      withStandIns(0, () => this.runAgain(a));
      // Nothing needed a stand-in: this is the module's second run, kept for the evaluation.
      if (a.partial!.length === 0) {
        this.done.set(mod, a);
        return extract(a);
      }
      const first = extract(a);
      const b = secondRun(mod, requester);
      const second = extract(withOtherStandIns(() => this.runAgain(b)));
      if (same(first, second)) return first;
      // The longest chain names the cycle best: from the outermost option being computed.
      throw [...a.partial!, ...b.partial!].reduce((x, y) => (y.message.length > x.message.length ? y : x));
    } finally {
      if (depth) this.running.set(mod, depth);
      else this.running.delete(mod);
    }
  }

  /**
   * `config` for a second run: reading an option that does not exist gives a reference, an error
   * when it is needed (as in NixOS), not `undefined`.
   */
  private strictView(obj: Record<string, unknown>, path: string[]): Record<string, unknown> {
    const views = (this.views ??= new WeakMap());
    let view = views.get(obj);
    if (view) return view;
    const sets = this.configSets;
    const ev = this.ev;
    const runs = this;
    view = new Proxy(obj, {
      get(t, key, receiver) {
        // A reference, which fails when resolved: `mkIf(() => 'x' in config, config.x)` stays lazy.
        if (typeof key === 'string' && !(key in t) && key !== 'then' && key !== 'toJSON') return makeRef(ev, [...path, key]);
        const v = Reflect.get(t, key, receiver);
        return typeof key === 'string' && sets?.has(v as object) ? runs.strictView(v as Record<string, unknown>, [...path, key]) : v;
      },
    });
    views.set(obj, view);
    return view;
  }

  /** An option's default as the module's second run declares it. */
  laterDefault(mod: CollectedModule, path: string[]): { value: unknown } | undefined {
    const extract = (run: SecondRun): { value: unknown } | undefined => {
      let v: unknown = run.options;
      for (const p of path) {
        v = force(v);
        if (!isPlainObject(v)) return undefined;
        v = v[p];
      }
      v = force(v);
      return isOption(v) ? { value: v.decl.default } : undefined;
    };
    return this.fromSecondRun(mod, extract, (a, b) => a === b || (a !== undefined && b !== undefined && sameValue(a.value, b.value)));
  }

  /** Definitions of modules that run twice replaced by those of their second run, at `path`. */
  fromSecondRuns(defs: Definition[], path: string[]): Definition[] {
    if (!defs.some(definedBy)) return defs;
    const extract = (run: SecondRun): Definition[] => this.definitionsOf(run, path);
    // Most options have one module's definitions: its second run's, as they are.
    if (defs.length === 1) return this.fromSecondRun(definedBy(defs[0]!)!, extract, sameDefinitions);
    const out: Definition[] = [];
    const done = new Set<CollectedModule>();
    for (const d of defs) {
      const mod = definedBy(d);
      if (!mod) out.push(d);
      else if (!done.has(mod)) {
        done.add(mod);
        out.push(...this.fromSecondRun(mod, extract, sameDefinitions));
      }
    }
    return out;
  }

  /** A second run's definitions at `path`, its config split one namespace at a time, once each. */
  private definitionsOf(run: SecondRun, path: string[]): Definition[] {
    if (run.config === undefined) return [];
    // A tree, not a map keyed by joined paths: each option of each module that runs twice asks.
    let node = (run.split ??= runSplit([{ loc: run.configLoc!, value: run.config }]));
    for (let i = 0; i < path.length; i++) {
      const children = (node.children ??= splitDefinitions(node.defs, (v, l) => this.ev.notASet(path.slice(0, i), v, l)));
      const defs = children.get(path[i]!);
      if (!defs) return [];
      if (i === path.length - 1) return defs;
      const below = (node.below ??= new Map());
      let next = below.get(path[i]!);
      if (!next) below.set(path[i]!, (next = runSplit(defs)));
      node = next;
    }
    return node.defs;
  }

  /**
   * An undeclared definition of a module that runs twice, for the freeformType: its second run's
   * definitions at `path`, run when the value is needed (config is being built now).
   */
  laterDefinition(def: Definition, path: string[]): Definition {
    if (!definedBy(def)) return def;
    return { loc: def.loc, value: new Thunk(() => new Merge(this.fromSecondRuns([def], path).map((d) => d.value))) };
  }
}

/** Whether two runs of a module gave the same definitions at a place. */
const sameDefinitions = (a: Definition[], b: Definition[]): boolean => a.length === b.length && a.every((d, i) => sameValue(d.value, b[i]!.value));

/**
 * The options whose default differs between two first runs with different stand-ins for config
 * values: those computed from config.
 */
export function configDependentDefaults(a: unknown, b: unknown, path: string[], out: Set<string>): void {
  a = force(a);
  b = force(b);
  if (isOption(a)) {
    const da = Object.getOwnPropertyDescriptor(a.decl, 'default');
    const db = isOption(b) ? Object.getOwnPropertyDescriptor(b.decl, 'default') : undefined;
    if (da && !da.get && !(db && !db.get && sameValue(da.value, db.value))) out.add(path.join('\0'));
    return;
  }
  if (!isPlainObject(a)) return;
  for (const k of Object.keys(a)) configDependentDefaults(lazyEntry(a, k), isPlainObject(b) ? lazyEntry(b, k) : undefined, [...path, k], out);
}

/** Whether two values built by two runs of a module are the same (getters are not run). */
export function sameValue(a: unknown, b: unknown, depth = 0): boolean {
  if (Object.is(a, b)) return true;
  if (depth > 40) return false;
  if (isRef(a) || isRef(b)) return isRef(a) && isRef(b) && refPath(a as object) === refPath(b as object);
  if (typeof a === 'function' || typeof b === 'function') return typeof a === typeof b && String(a) === String(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Thunk || b instanceof Thunk) return a instanceof Thunk && b instanceof Thunk;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const da = Object.getOwnPropertyDescriptors(a);
  const db = Object.getOwnPropertyDescriptors(b);
  // Where mkIf & co. were called differs between runs only in the captured stack.
  const property = a instanceof If || a instanceof Merge || a instanceof Override || a instanceof Order;
  const keys = Object.keys(da).filter((k) => !property || k !== 'site');
  if (keys.length !== Object.keys(db).filter((k) => !property || k !== 'site').length) return false;
  return keys.every((k) => {
    const x = da[k]!;
    const y = db[k];
    if (!y) return false;
    if (x.get || y.get) return !!x.get && !!y.get;
    return sameValue(x.value, y.value, depth + 1);
  });
}
