import { dirname, isAbsolute, resolve } from 'node:path';
import { lib } from '../lib.js';
import { loadModuleFileSync } from '../loader.js';
import { entryLocations, formatLocation, withDeferredSites, type SourceLocation } from '../location.js';
import { defineLazy, force, isPlainObject, lazyEntry, OptionError, prepareDefinitions, type Definition, type FinalDefinition, type MergeContext } from '../merge.js';
import { pkgs } from '../package.js';
import { PRIORITY, Thunk } from '../properties.js';
import { isRef, makeRef, withOtherStandIns, withStandIns, type RefHost } from '../refs.js';
import { didYouMean, nearest, nixTypeOf, showDefs, showOption } from '../show.js';
import { setSubmoduleEvaluator } from '../types.js';
import { userCodeError } from '../usercode.js';
import { Declarations, NamespaceNode, OptionNode } from './declarations.js';
import { holdsOption, moduleDefinition, NamespaceEval, nest } from './definitions.js';
import { isDeeper, isRecursion, OptionState, secondRunBody } from './option-values.js';
import { isModulePath, modulesPath, normKey, resolveModulePath } from './paths.js';
import { configDependentDefaults, SecondRuns } from './second-runs.js';
import { normalizeModule, SourcedModule, type CollectedModule, type LoadRequest, type Loaded, type ModuleArgs, type ModuleFunction, type ModuleInput, type ModuleLoader } from './syntax.js';

// Evaluation: modules collected, their options declared, and config built lazily from their
// definitions (NixOS's evalModules); the entry points, and the evaluator of submodule values.

/** No aliases, no warnings: one empty list for every option asked. */
const NONE: readonly never[] = [];

/** Marks the config object of an evaluation (also submodule values), for `cairn option`. */
export const EVALUATION = Symbol('cairn.evaluation');

/** The evaluation a config object (or submodule value) came from. */
export function evaluationOf(value: unknown): Evaluation | undefined {
  return typeof value === 'object' && value !== null ? ((value as Record<symbol, Evaluation | undefined>)[EVALUATION] ?? undefined) : undefined;
}

/** What a partial run reads for a value that cannot be computed yet: a reference computing as a stand-in. */
const standIns: RefHost = { ready: false, lookup: () => undefined, describe: () => ({ root: 'config' }) };

/** What `options` references read: the evaluation's options, once it is ready. */
class OptionsHost implements RefHost {
  constructor(private readonly ev: Evaluation) {}
  get ready(): boolean {
    return this.ev.ready;
  }
  lookup(path: string[]): unknown {
    return lookupPath(this.ev.options, path, 'options');
  }
  describe(): { root: string; module?: string } {
    const loading = this.ev.loadingModule;
    return { root: 'options', module: loading && formatLocation(loading) };
  }
  touched(stub: boolean): void {
    this.ev.touched(stub);
  }
}

/**
 * One evaluation of a set of modules: the whole system, or one submodule value. `config` is the
 * fixpoint of all modules, built lazily: each option is merged on first read.
 */
export class Evaluation implements MergeContext, RefHost {
  ready = false;
  readonly decls: Declarations;
  modules: CollectedModule[] = [];
  readonly specialArgs: Record<string, unknown>;
  /** The module whose function is running, for messages about early reads. */
  private loading?: SourceLocation;
  private readonly collected = new Map<string, CollectedModule>();
  private configValue?: Record<string, unknown>;
  private buildingConfig = false;
  private optionsValue?: Record<string, unknown>;
  /** Reads through references while collecting: all, and those computing with a stand-in. */
  private reads = 0;
  private stubs = 0;
  private secondRunsMade?: SecondRuns;
  /** Some module runs twice (read config while collected). */
  private hasSecondRuns = false;
  private lateConfigMade?: Record<string, unknown>;
  private lateOptionsMade?: Record<string, unknown>;
  private argsMade?: ModuleArgs;
  /** A submodule value's: where the value (and so its `name`) was defined, for messages about defaults. */
  definedAt?: SourceLocation[];
  /** Told the files each module imports before they are loaded one by one (the loader bundles them together). */
  onImports?: (files: string[]) => void;

  constructor(
    readonly prefix: string[],
    specialArgs: Record<string, unknown>,
  ) {
    this.decls = new Declarations(prefix);
    this.specialArgs = specialArgs;
  }

  // Made when first needed: most submodule values' modules never read config or options, and
  // their evaluations are many.
  private get secondRuns(): SecondRuns {
    return (this.secondRunsMade ??= new SecondRuns(this));
  }

  /** `config` for module functions: references until the evaluation is ready. */
  get lateConfig(): Record<string, unknown> {
    return (this.lateConfigMade ??= makeRef(this, []));
  }

  /** `options` for module functions: references until the evaluation is ready. */
  get lateOptions(): Record<string, unknown> {
    return (this.lateOptionsMade ??= makeRef(new OptionsHost(this), []));
  }

  /** What the options host needs of the evaluation (its `touched` is the config host's). */
  get loadingModule(): SourceLocation | undefined {
    return this.loading;
  }

  // RefHost
  lookup(path: string[]): unknown {
    // Resolving a reference needs the value: a cycle is an error here, even in a second run's body.
    const body = secondRunBody.of;
    secondRunBody.of = undefined;
    try {
      return lookupPath(this.config, path, 'config', this.prefix);
    } catch (err) {
      // In a partial run, a value that cannot be computed yet is a stand-in.
      if (body?.partial && isRecursion(err)) {
        body.partial.push(err);
        return makeRef(standIns, path);
      }
      throw err;
    } finally {
      secondRunBody.of = body;
    }
  }
  touched(stub: boolean): void {
    this.reads++;
    if (stub) this.stubs++;
  }
  describe(): { root: string; module?: string } {
    return { root: 'config', module: this.loading && formatLocation(this.loading) };
  }

  get config(): Record<string, unknown> {
    if (!this.ready) throw new Error('internal: config read before the evaluation was ready');
    if (this.configValue) return this.configValue;
    // Building config merges the freeform definitions; one that reads config (through a type
    // that is not lazy, like attrsOf) would rebuild it forever.
    if (this.buildingConfig) {
      throw new OptionError(
        `infinite recursion encountered: the undeclared definitions merged by the freeformType of \`${showOption(this.prefix) || '<root>'}' read config while it was being built.\n` +
          'Use a lazy freeformType (types.lazyAttrsOf) or declare the options they read through.',
      );
    }
    this.buildingConfig = true;
    try {
      return (this.configValue = this.buildConfig());
    } finally {
      this.buildingConfig = false;
    }
  }

  get options(): Record<string, unknown> {
    if (!this.ready) throw new Error('internal: options read before the evaluation was ready');
    return (this.optionsValue ??= this.buildOptions(this.decls.root, []));
  }

  /** Collects modules and their imports. Yields file paths to load; receives their values. */
  *collect(inputs: ModuleInput[], parent: { key: string; loc: SourceLocation; dir: string }): Generator<LoadRequest, CollectedModule[], Loaded> {
    const out: CollectedModule[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const m = yield* this.collectOne(inputs[i]!, parent, i);
      if (m) out.push(m);
    }
    return out;
  }

  private *collectOne(input: ModuleInput, parent: { key: string; loc: SourceLocation; dir: string }, index: number): Generator<LoadRequest, CollectedModule | undefined, Loaded> {
    let value: unknown = input;
    let key = `${parent.key}:anon-${index + 1}`;
    let loc: SourceLocation = parent.loc;
    let dir = parent.dir;
    let configOnly = false;
    let yaml = false;
    const requestedAt = parent.loc;
    if (typeof value === 'string') {
      const file = resolveModulePath(value, dir);
      const seen = this.collected.get(file);
      if (seen) return seen;
      value = yield { load: file, loc: requestedAt };
      key = file;
      loc = { file };
      dir = dirname(file);
    }
    if (value instanceof SourcedModule) {
      ({ key, loc, configOnly, yaml } = value);
      dir = value.baseDir ?? dir;
      value = value.value;
    }
    const seen = this.collected.get(key);
    if (seen) return seen;
    value = force(value);
    let rerun: ModuleFunction | undefined;
    let stubbed = false;
    let laterDefaults: Set<string> | undefined;
    if (typeof value === 'function') {
      const previous = this.loading;
      this.loading = loc;
      const fn = value as ModuleFunction;
      const reads = this.reads;
      const stubs = this.stubs;
      try {
        const args = this.moduleArgs();
        value = force(withDeferredSites(() => withStandIns(0, () => fn(this.standInArgs())), () => fn(args)));
        if (this.reads !== reads) rerun = fn;
        stubbed = this.stubs !== stubs;
        if (stubbed) laterDefaults = this.dependentDefaults(fn, value);
      } catch (err) {
        const standIns = this.stubs !== stubs ? '; its first run, before options have values, computed with stand-ins for the config values it read (0, an empty string or list)' : '';
        throw userCodeError(err, () => `while loading the module \`${formatLocation(loc)}'${standIns}`);
      } finally {
        this.loading = previous;
      }
    }
    // A module's own `key` names it, as in NixOS: modules with one key count once, and
    // `disabledModules: [{ key }]` leaves them out. (In config-only definitions, `key` is config.)
    // A number (`key = 123`) names a module as its string does (NixOS's toString).
    // `_file' names where a module came from in messages, as in NixOS (modules made by code).
    if (!configOnly && isPlainObject(value) && typeof value._file === 'string') loc = { file: value._file };
    if (!configOnly && isPlainObject(value) && (typeof value.key === 'string' || typeof value.key === 'number')) {
      key = String(value.key);
      const again = this.collected.get(key);
      if (again) return again;
    }
    const mod = normalizeModule(value, key, loc, configOnly, yaml);
    if (rerun) {
      mod.rerun = rerun;
      mod.laterDefaults = laterDefaults;
    }
    this.collected.set(key, mod);
    const imports = force(mod.imports) as unknown[];
    mod.imports = [];
    if (imports.length > 0) this.onImports?.(imports.filter((p): p is string => typeof p === 'string').map((p) => resolveModulePath(p, dir)));
    const positions = entryLocations(imports);
    for (let i = 0; i < imports.length; i++) {
      const imp = imports[i];
      const at = positions?.get(String(i)) ?? loc;
      // An import read from config is named in the message with the module importing it.
      const previous = this.loading;
      this.loading = loc;
      let child: CollectedModule | undefined;
      try {
        child = yield* this.collectOne(imp as ModuleInput, { key, loc: at, dir }, i);
      } finally {
        this.loading = previous;
      }
      if (child) mod.imports.push(child);
    }
    if (mod.disabledModules.length > 0) mod.disabledModules = mod.disabledModules.map((d) => (typeof d !== 'string' ? d.key : d.startsWith('.') || isAbsolute(d) ? resolve(dir, d) : resolve(modulesPath, d)));
    return mod;
  }

  /** Which option defaults a module's first run computed from config: those another first run gives differently. */
  private dependentDefaults(fn: ModuleFunction, value: unknown): Set<string> {
    const out = new Set<string>();
    const optionsOf = (v: unknown): unknown => (isPlainObject(v) ? force(lazyEntry(v, 'options')) : undefined);
    if (optionsOf(value) === undefined) return out;
    let other: unknown;
    try {
      other = force(withOtherStandIns(() => withDeferredSites(undefined, () => fn(this.moduleArgs()))));
    } catch (err) {
      // The other stand-ins made it fail: every computed default depends on them.
      if (isDeeper(err)) throw err;
    }
    configDependentDefaults(optionsOf(value), optionsOf(other), [], out);
    return out;
  }

  /** Arguments for a module function run again only for the call sites it makes: config and options read as in a first run. */
  standInArgs(): ModuleArgs {
    return { name: '', lib, pkgs, ...this.specialArgs, config: makeRef(standIns, []), options: makeRef(standIns, []) };
  }

  /**
   * The arguments of module functions, one object for all: a module cannot change them (as in
   * NixOS). specialArgs come last: they may replace any argument, `lib` too, as in NixOS.
   */
  moduleArgs(): ModuleArgs {
    return (this.argsMade ??= Object.freeze({ name: '', config: this.lateConfig, options: this.lateOptions, lib, pkgs, ...this.specialArgs }));
  }

  /** After collection: drop disabled modules, declare options, and become ready to evaluate. */
  finish(roots: CollectedModule[]): void {
    const disabled = new Set<string>();
    const all = new Set<CollectedModule>();
    const gather = (m: CollectedModule): void => {
      if (all.has(m)) return;
      all.add(m);
      for (const d of m.disabledModules) disabled.add(normKey(typeof d === 'string' ? d : d.key));
      m.imports.forEach(gather);
    };
    roots.forEach(gather);
    const seen = new Set<string>();
    const visit = (m: CollectedModule): void => {
      if ((disabled.size > 0 && disabled.has(normKey(m.key))) || seen.has(m.key)) return;
      seen.add(m.key);
      this.modules.push(m);
      m.imports.forEach(visit);
    };
    roots.forEach(visit);
    for (const m of this.modules) this.decls.add(m, m.rerun && ((path) => this.secondRuns.laterDefault(m, path)));
    this.hasSecondRuns = this.modules.some((m) => m.rerun);
    this.ready = true;
  }

  /** A set of options defined as a value. */
  notASet(path: string[], value: unknown, loc: SourceLocation): never {
    const node = this.decls.lookup(path);
    const names = node instanceof NamespaceNode ? [...node.children.keys()] : [];
    const name = this.decls.show(path);
    throw new OptionError(`In module \`${formatLocation(loc)}', you're trying to define a value of type \`${nixTypeOf(value)}'\nrather than an attribute set for the option \`${name}'; \`${name}' is a set of options, not an option. Definition values:${showDefs([{ loc, value }])}\nOptions below it: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`);
  }

  // -------------------------------------------------------------------------------------------
  // Definitions, pushed down the declaration tree as NixOS's pushDownProperties does

  namespace(path: string[]): NamespaceEval {
    return this.namespaceOf(path.length === 0 ? this.decls.root : (this.decls.lookup(path) as NamespaceNode));
  }

  /** A namespace's definitions, kept on its node (which is this evaluation's). */
  private namespaceOf(node: NamespaceNode): NamespaceEval {
    if (node.evaluated) return node.evaluated;
    const parent = node.parent;
    const defs = parent
      ? (this.namespaceOf(parent).split().matched.get(node.path[node.path.length - 1]!) ?? [])
      : this.modules.filter((m) => m.config !== undefined).map((m) => moduleDefinition(m.configLoc, m.config, m.rerun ? m : undefined));
    return (node.evaluated = new NamespaceEval(this, node, defs));
  }

  /** The definitions of an option (or a namespace) at `path`, relative to this evaluation; `node` is what is declared there. */
  definitionsAt(path: string[], node: NamespaceNode | OptionNode | undefined = this.decls.lookup(path)): Definition[] {
    const parent = node?.parent ? this.namespaceOf(node.parent) : this.namespace(path.slice(0, -1));
    const matched = parent.split().matched.get(path[path.length - 1]!) ?? [];
    // Only modules that run twice give definitions to replace.
    const own = this.hasSecondRuns ? this.secondRuns.fromSecondRuns(matched, path) : matched;
    // (The path is joined only below a top-level name some alias points into.)
    const aliased = this.decls.aliases.length === 0 || !this.aliasesByTarget().tops.has(path[0]!) ? NONE : (this.aliasesByTarget().paths.get(path.join('\0')) ?? NONE);
    // Renamed options warn through config.warnings, as NixOS's doRename defines it.
    const warned = path.length === 1 && path[0] === 'warnings' ? this.renameWarningDefinitions() : NONE;
    if (aliased.length === 0 && warned.length === 0) return own;
    return [...own, ...aliased.flatMap((a) => this.definitionsAt(a.path)), ...warned];
  }

  private aliasTargets?: { paths: Map<string, OptionNode[]>; tops: Set<string> };

  /** The aliases of each option (renamed options), by the option's path; the first names of those paths. */
  private aliasesByTarget(): { paths: Map<string, OptionNode[]>; tops: Set<string> } {
    if (!this.aliasTargets) {
      this.aliasTargets = { paths: new Map(), tops: new Set() };
      for (const a of this.decls.aliases) {
        const to = a.option.special.alias!.to;
        const k = to.join('\0');
        const list = this.aliasTargets.paths.get(k);
        if (list) list.push(a);
        else this.aliasTargets.paths.set(k, [a]);
        this.aliasTargets.tops.add(to[0]!);
      }
    }
    return this.aliasTargets;
  }

  option(path: string[]): OptionState {
    const node = this.decls.lookup(path);
    if (!(node instanceof OptionNode)) throw new Error(`internal: no option at ${path.join('.')}`);
    return this.optionOf(node);
  }

  /** The evaluation of one of this evaluation's options, kept on its node. */
  optionOf(node: OptionNode): OptionState {
    return (node.state ??= new OptionState(this, node));
  }

  /** Definitions that match no declared option: for freeformType, or an error. */
  unmatched(): { path: string[]; def: Definition }[] {
    const out: { path: string[]; def: Definition }[] = [];
    const walk = (node: NamespaceNode): void => {
      const ns = this.namespaceOf(node);
      if (ns.defs.length === 0) return;
      const { matched, unmatched } = ns.split();
      out.push(...unmatched);
      // forEach, not for-of: no entry made per child (namespaces have thousands, walked per evaluation).
      node.children.forEach((child, name) => {
        if (child instanceof NamespaceNode && matched.has(name)) walk(child);
      });
    };
    walk(this.decls.root);
    return out;
  }

  /** Unknown options are errors unless a freeformType takes them (NixOS's `_module.check`). */
  checkDefinitions(): void {
    if (this.decls.freeformType) return;
    const bad = this.unmatched();
    if (bad.length === 0) return;
    const { path, def } = bad[0]!;
    const full = [...this.prefix, ...path];
    const parent = this.decls.lookup(path.slice(0, -1));
    let hint = '';
    if (parent instanceof NamespaceNode) {
      const near = nearest(path[path.length - 1]!, parent.children.keys(), 3);
      if (near.length) hint = `\n${didYouMean(near.map((n) => showOption([...this.prefix, ...path.slice(0, -1), n])))}`;
    }
    const more = bad.length > 1 ? `\n(and ${bad.length - 1} more undeclared option${bad.length > 2 ? 's' : ''}: ${bad.slice(1, 4).map((b) => `\`${showOption([...this.prefix, ...b.path])}'`).join(', ')}${bad.length > 4 ? ', …' : ''})` : '';
    if (this.prefix.length && this.decls.root.children.size === 0) {
      hint +=
        `\n\nHowever there are no options defined in \`${showOption(this.prefix)}'. Are you sure you've declared your options properly? ` +
        "This can happen if you e.g. declared your options in `types.submodule'\nunder `config' rather than `options'.";
    } else if (holdsOption(def.value)) hint += "\n\nIt seems as if you're trying to declare an option by placing it into `config' rather than `options'!";
    throw new OptionError(`The option \`${showOption(full)}' does not exist. Definition values:${showDefs([def])}${hint}${more}`);
  }

  /** Warnings the module system itself raises (renamed options) when no `warnings` option is declared to hold them. */
  internalWarnings(): string[] {
    const node = this.decls.lookup(['warnings']);
    if (node instanceof OptionNode) return [];
    return this.decls.aliases.flatMap((a) => this.renameWarning(a));
  }

  private renameWarning(a: OptionNode): string[] {
    if (!a.option.special.alias!.warn) return [];
    const p = prepareDefinitions(this.definitionsAt(a.path));
    if (p.defs.length === 0) return [];
    return [`The option \`${this.decls.show(a.path)}' defined in ${p.defs.map((d) => `\`${formatLocation(d.loc)}'`).join(', ')} has been renamed to \`${showOption(a.option.special.alias!.to)}'.`];
  }

  private renameWarningDefinitions(): Definition[] {
    return this.decls.aliases
      .filter((a) => a.option.special.alias!.warn)
      .map((a) => ({ loc: a.declarations[0]!, value: new Thunk(() => this.renameWarning(a)) }));
  }

  /** Failed assertions the module system itself raises (removed options). */
  internalAssertions(): string[] {
    const out: string[] = [];
    for (const r of this.decls.removed) {
      const p = prepareDefinitions(this.definitionsAt(r.path));
      if (p.defs.length) {
        out.push(`The option definition \`${this.decls.show(r.path)}' in ${p.defs.map((d) => `\`${formatLocation(d.loc)}'`).join(', ')} no longer has any effect; please remove it.\n${r.option.special.removed!.instructions}`);
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // config and options values

  private buildConfig(): Record<string, unknown> {
    let free: Record<string, unknown> | undefined;
    if (this.decls.freeformType) {
      const defs: FinalDefinition[] = this.unmatched().map(({ path, def }) => ({ loc: def.loc, value: nest(path, this.secondRuns.laterDefinition(def, path)), priority: PRIORITY.plain, order: 1000 }));
      free = defs.length ? (this.decls.freeformType.merge(this.prefix, defs, this) as Record<string, unknown>) : {};
    }
    const root = this.configObject(this.decls.root, free);
    Object.defineProperty(root, EVALUATION, { value: this, enumerable: false });
    return root;
  }

  private configObject(ns: NamespaceNode, free: Record<string, unknown> | undefined): Record<string, unknown> {
    const obj: Record<string, unknown> = {};
    // Only second runs read config through views of these objects.
    if (this.hasSecondRuns) this.secondRuns.addConfigSet(obj);
    ns.children.forEach((child, name) => {
      if (child instanceof OptionNode) {
        // Kept once read, unless the read gave a reference (an option a second run's body read
        // while it was being computed): the value is there on the next read.
        let state: OptionState | undefined;
        let done = false;
        let value: unknown;
        Object.defineProperty(obj, name, {
          enumerable: true,
          configurable: true,
          get: () => {
            if (done) return value;
            const v = (state ??= this.optionOf(child)).value;
            if (!isRef(v)) {
              done = true;
              value = v;
            }
            return v;
          },
        });
      } else {
        defineLazy(obj, name, () => this.configObject(child, free && isPlainObject(free[name]) ? (free[name] as Record<string, unknown>) : undefined));
      }
    });
    if (free) {
      for (const k of Object.keys(free)) {
        if (!ns.children.has(k)) Object.defineProperty(obj, k, Object.getOwnPropertyDescriptor(free, k)!);
      }
    }
    return obj;
  }

  private buildOptions(ns: NamespaceNode, path: string[]): Record<string, unknown> {
    const obj: Record<string, unknown> = {};
    for (const [name, child] of ns.children) {
      const p = [...path, name];
      defineLazy(obj, name, () => (child instanceof OptionNode ? this.optionOf(child).info : this.buildOptions(child, p)));
    }
    return obj;
  }
}

function lookupPath(root: Record<string, unknown>, path: readonly string[], rootName: string, prefix: readonly string[] = []): unknown {
  let v: unknown = root;
  for (let i = 0; i < path.length; i++) {
    if (typeof v !== 'object' || v === null || !(path[i]! in v)) {
      throw new OptionError(`The option \`${showOption([...prefix, ...path.slice(0, i + 1)])}' does not exist (read through \`${rootName}').`);
    }
    v = (v as Record<string, unknown>)[path[i]!];
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Entry points

export interface EvalModulesOptions {
  modules: ModuleInput[];
  prefix?: string[];
  specialArgs?: Record<string, unknown>;
  /** Where relative module paths are resolved from (default: the working directory). */
  baseDir?: string;
  /** Report undeclared options (default true). */
  check?: boolean;
  /** Runs after declarations are known, before definitions are checked (JSON Schema validation). */
  beforeCheck?: (ev: Evaluation) => void | Promise<void>;
  load?: ModuleLoader;
}

/** Evaluates modules, loading files as needed (YAML, JSON, TypeScript, JavaScript). */
export async function evalModules(opts: EvalModulesOptions): Promise<Evaluation> {
  const ev = new Evaluation(opts.prefix ?? [], opts.specialArgs ?? {});
  const batches = opts.load ? undefined : new (await import('../loader.js')).ModuleBatches();
  const load = opts.load ?? batches!.load;
  ev.onImports = batches?.expect;
  const gen = ev.collect(opts.modules, { key: '<root>', loc: { file: '<command line>' }, dir: opts.baseDir ?? process.cwd() });
  let step = gen.next();
  while (!step.done) step = gen.next(await load(step.value.load, step.value.loc));
  ev.finish(step.value);
  await opts.beforeCheck?.(ev);
  if (opts.check ?? true) ev.checkDefinitions();
  return ev;
}

/** Evaluates modules that are all in memory (no files to load): submodules, tests. */
export function evalModulesSync(opts: Omit<EvalModulesOptions, 'load' | 'beforeCheck'>, prefixShown = showOption(opts.prefix ?? [])): Evaluation {
  const ev = new Evaluation(opts.prefix ?? [], opts.specialArgs ?? {});
  const gen = ev.collect(opts.modules, { key: `<${prefixShown || 'root'}>`, loc: { file: '<inline>' }, dir: opts.baseDir ?? process.cwd() });
  let step = gen.next();
  while (!step.done) step = gen.next(loadModuleFileSync(step.value.load, step.value.loc));
  ev.finish(step.value);
  if (opts.check ?? true) ev.checkDefinitions();
  return ev;
}

/** A submodule value: a nested evaluation of the type's modules plus each definition. */
export function evalSubmodule(loc: string[], modules: ModuleInput[], defs: FinalDefinition[], specialArgs: Record<string, unknown>, shorthand: boolean): Record<string, unknown> {
  const shown = showOption(loc);
  const inputs: ModuleInput[] = [
    ...modules,
    ...defs.map((d, i) => {
      const v = force(d.value);
      // A path is a module file, relative to the file that defined it.
      if (isModulePath(v)) return resolveModulePath(v, isAbsolute(d.loc.file) ? dirname(d.loc.file) : process.cwd());
      return new SourcedModule(d.value, d.loc, `${shown}#${i + 1}`, shorthand && typeof v !== 'function');
    }),
  ];
  const ev = evalModulesSync({ modules: inputs, prefix: loc, specialArgs: { ...specialArgs, name: loc[loc.length - 1] ?? '' } }, shown);
  ev.definedAt = defs.map((d) => d.loc);
  return ev.config;
}

/** Declarations of a submodule type, for documentation and schemas (`name` is `<name>`). */
export function submoduleDeclarations(modules: ModuleInput[], specialArgs: Record<string, unknown>): Declarations {
  const ev = new Evaluation(['<name>'], { ...specialArgs, name: '<name>' });
  const gen = ev.collect(modules, { key: '<submodule>', loc: { file: '<inline>' }, dir: process.cwd() });
  let step = gen.next();
  while (!step.done) step = gen.next(loadModuleFileSync(step.value.load, step.value.loc));
  ev.finish(step.value);
  return ev.decls;
}

// The submodule type (types.ts) evaluates its values with these; it cannot import this file,
// which checks and merges definitions with types.
setSubmoduleEvaluator({ evalSubmodule, submoduleDeclarations });
