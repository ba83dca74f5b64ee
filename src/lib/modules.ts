import { dirname, isAbsolute, resolve } from 'node:path';
import { CairnError } from '../errors.js';
import { userCodeError } from './usercode.js';
import { projectRoot } from '../paths.js';
import { lib } from './lib.js';
import { entryLocation, formatLocation, keyLocation, lazyLocation, setEntryLocation, type SourceLocation } from './location.js';
import {
  checkAndMerge,
  defineLazy,
  force,
  isPlainObject,
  lazyEntry,
  OptionError,
  prepareDefinitions,
  type Definition,
  type FinalDefinition,
  type MergeContext,
  type PreparedDefinitions,
} from './merge.js';
import { isOption, Option, type OptionDeclaration } from './options.js';
import { pkgs } from './package.js';
import { If, Merge, Order, Override, PRIORITY, Thunk } from './properties.js';
import { makeRef, type RefHost } from './refs.js';
import { closest, showDefs, showOption, showValue } from './show.js';
import { isType, type JsonSchema, type OptionType } from './types.js';

/** A module: a file path, an object, a function of the module arguments, or a located value. */
export type ModuleInput = string | object | ModuleFunction | SourcedModule;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ModuleFunction = (args: ModuleArgs) => any;

export interface ModuleArgs {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  config: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  options: any;
  lib: typeof lib;
  pkgs: typeof pkgs;
  /** In a submodule: the attribute name (`alice` in users.users.alice). */
  name: string;
  [extra: string]: unknown;
}

/** A module value with where it came from (a loaded file, a submodule definition). */
export class SourcedModule {
  constructor(
    readonly value: unknown,
    readonly loc: SourceLocation,
    readonly key: string,
    /** Whether a plain object is only config (submodule definitions), never `options`/`imports`. */
    readonly configOnly = false,
    readonly baseDir?: string,
    /** The module came from YAML and is validated against the JSON Schema before evaluation. */
    readonly yaml = false,
  ) {}
}

/** One collected module, normalised to NixOS's full form. */
export interface CollectedModule {
  key: string;
  loc: SourceLocation;
  imports: CollectedModule[];
  /** Paths, or the keys of `{ key }` entries. */
  disabledModules: (string | { key: string })[];
  options?: unknown;
  config?: unknown;
  configLoc: SourceLocation;
  freeformType?: OptionType;
  meta?: unknown;
  yaml: boolean;
}

const MODULE_KEYS = new Set(['imports', 'disabledModules', 'options', 'config', 'freeformType', 'meta', 'key', '_file']);
const MODULE_EXTENSIONS = /\.(ts|mts|cts|js|mjs|cjs|yaml|yml|json)$/;

/** Modules shipped with cairn; `disabledModules: [services/openssh]` names them relative to this folder. */
export const modulesPath = resolve(projectRoot, 'modules');

const normKey = (k: string): string => k.replace(MODULE_EXTENSIONS, '');

// ---------------------------------------------------------------------------------------------
// Declarations

/** A set of options (`services`, `services.openssh`). */
export class NamespaceNode {
  readonly children = new Map<string, NamespaceNode | OptionNode>();
  constructor(readonly path: string[]) {}
}

/** One option with its merged declaration. */
export class OptionNode {
  decl: OptionDeclaration;
  /** Where it was declared (every declaration when several merge). */
  readonly declarations: SourceLocation[] = [];
  /** The declaration that gave the default, for the default's definition location. */
  defaultLoc?: SourceLocation;
  constructor(
    readonly path: string[],
    readonly option: Option,
  ) {
    // Kept as written: a default may be a getter reading config, evaluated only when needed.
    this.decl = option.decl;
  }
  get type(): OptionType {
    return this.decl.type ?? lib.types.anything;
  }
}

/** All option declarations of one evaluation (the whole system, or one submodule). */
export class Declarations {
  readonly root = new NamespaceNode([]);
  readonly aliases: OptionNode[] = [];
  readonly removed: OptionNode[] = [];
  freeformType?: OptionType;

  constructor(readonly prefix: string[]) {}

  add(mod: CollectedModule): void {
    if (mod.freeformType) {
      if (this.freeformType) {
        const merged = this.freeformType.typeMerge(mod.freeformType);
        if (!merged) throw new OptionError(`The freeformType of \`${formatLocation(mod.loc)}' conflicts with one declared before.`);
        this.freeformType = merged;
      } else this.freeformType = mod.freeformType;
    }
    if (mod.options !== undefined) this.declare(this.root, mod.options, mod.loc);
  }

  private declare(ns: NamespaceNode, value: unknown, loc: SourceLocation): void {
    const v = force(value);
    if (v === null || v === undefined) return;
    if (!isPlainObject(v)) {
      throw new OptionError(`Expected a set of option declarations at \`${showOption([...this.prefix, ...ns.path]) || '<root>'}' in \`${formatLocation(loc)}', got ${showValue(v)}.`);
    }
    for (const name of Object.keys(v)) {
      const path = [...ns.path, name];
      const child = force(v[name]);
      const where = entryLocation(v, name) ?? loc;
      const existing = ns.children.get(name);
      if (isOption(child)) {
        const declLoc = declarationSite(child, where);
        if (existing instanceof NamespaceNode) {
          throw new OptionError(`The option \`${this.show(path)}' declared in \`${formatLocation(declLoc)}' is also the parent of other options; its type \`${child.decl.type?.description ?? 'unspecified'}' does not support nested options.`);
        }
        if (existing) this.mergeDecl(existing, child, declLoc);
        else {
          const node = new OptionNode(path, child);
          node.declarations.push(declLoc);
          if (hasField(child.decl, 'default')) node.defaultLoc = declLoc;
          ns.children.set(name, node);
          if (child.special.alias) this.aliases.push(node);
          if (child.special.removed) this.removed.push(node);
        }
      } else if (isType(child)) {
        throw new OptionError(`The option \`${this.show(path)}' in \`${formatLocation(where)}' is declared with a bare type; wrap it: \`lib.mkOption({ type: … })\`.`);
      } else {
        if (existing instanceof OptionNode) {
          throw new OptionError(`The option \`${this.show(path)}' declared in \`${formatLocation(existing.declarations[0]!)}' is also the parent of options declared in \`${formatLocation(where)}'; its type \`${existing.type.description}' does not support nested options.`);
        }
        let node = existing;
        if (!node) ns.children.set(name, (node = new NamespaceNode(path)));
        this.declare(node, child, where);
      }
    }
  }

  /** Two declarations of one option merge when they don't both set the same field (NixOS mergeOptionDecls). */
  private mergeDecl(node: OptionNode, opt: Option, loc: SourceLocation): void {
    const a = node.decl;
    const b = opt.decl;
    const both = (k: keyof OptionDeclaration): boolean => hasField(a, k) && hasField(b, k);
    let type = a.type;
    if (a.type && b.type) {
      const merged = a.type.typeMerge(b.type);
      if (!merged) type = undefined;
      else type = merged;
    }
    if (both('default') || both('example') || both('description') || both('apply') || (a.type && b.type && !type) || node.option.special.alias || opt.special.alias) {
      throw new OptionError(`The option \`${this.show(node.path)}' in \`${formatLocation(loc)}' is already declared in ${node.declarations.map((d) => `\`${formatLocation(d)}'`).join(', ')}.`);
    }
    // Copy property descriptors, not values, so getter defaults stay lazy.
    const mergedDecl = Object.defineProperties({}, Object.getOwnPropertyDescriptors(a)) as OptionDeclaration;
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(b))) if (d.get || d.value !== undefined) Object.defineProperty(mergedDecl, k, d);
    Object.defineProperty(mergedDecl, 'type', { value: type ?? a.type ?? b.type, enumerable: true });
    if (hasField(b, 'default')) node.defaultLoc = loc;
    node.decl = mergedDecl;
    node.declarations.push(loc);
  }

  show(path: string[]): string {
    return showOption([...this.prefix, ...path]);
  }

  /** Every option below a namespace, depth first, in declaration order. */
  *options(ns: NamespaceNode = this.root): Generator<OptionNode> {
    for (const child of ns.children.values()) {
      if (child instanceof OptionNode) yield child;
      else yield* this.options(child);
    }
  }

  lookup(path: readonly string[]): NamespaceNode | OptionNode | undefined {
    let node: NamespaceNode | OptionNode | undefined = this.root;
    for (const p of path) {
      if (!(node instanceof NamespaceNode)) return undefined;
      node = node.children.get(p);
    }
    return node;
  }

  /**
   * The option tree folded bottom up: `option` for each option, `namespace` for each set of
   * options from its children's results (`top` at the root, where a freeformType applies). The
   * JSON Schema and the TypeScript declarations of a configuration are both this walk.
   */
  fold<T>(f: { option(node: OptionNode): T; namespace(children: [string, T][], top: boolean): T }): T {
    const walk = (ns: NamespaceNode, top: boolean): T =>
      f.namespace(
        [...ns.children].map(([name, child]): [string, T] => [name, child instanceof NamespaceNode ? walk(child, false) : f.option(child)]),
        top,
      );
    return walk(this.root, true);
  }

  /** The JSON Schema of a config for these declarations (what YAML configs are checked against). */
  jsonSchema(): JsonSchema {
    return this.fold<JsonSchema>({
      option: (child) => {
        const s = child.option.special.alias || child.option.special.removed ? {} : { ...child.type.jsonSchema() };
        if (child.decl.description) s.description = child.decl.description;
        const d = Object.getOwnPropertyDescriptor(child.decl, 'default');
        if (d && !d.get && d.value !== undefined && isJsonable(d.value)) s.default = d.value;
        return s;
      },
      namespace: (children, top) => ({
        type: ['object', 'null'],
        properties: Object.fromEntries(children),
        additionalProperties: top && this.freeformType ? freeformEntrySchema(this.freeformType) : false,
      }),
    });
  }
}

/**
 * What an undeclared key may hold under a freeformType. The type is that of all undeclared
 * definitions together (NixOS's `freeformType = attrsOf t`), so one key holds a `t`; other
 * freeform types are checked when they merge.
 */
function freeformEntrySchema(type: OptionType): JsonSchema {
  const elem = type.name === 'attrsOf' || type.name === 'lazyAttrsOf' ? type.nestedTypes.elemType : undefined;
  return elem ? elem.jsonSchema() : {};
}

/**
 * Where an option was declared: the mkOption call when its stack frame is known, else the entry
 * in the module. Resolved only when a message or `cairn option` shows it (stack frames and source
 * maps are not free, and most declarations are never shown).
 */
function declarationSite(opt: Option, fallback: SourceLocation): SourceLocation {
  return lazyLocation(() => opt.location ?? fallback);
}

/** Whether a declaration sets a field, without running a getter (lazy defaults). */
function hasField(decl: object, k: string): boolean {
  const d = Object.getOwnPropertyDescriptor(decl, k);
  return d !== undefined && (d.get !== undefined || d.value !== undefined);
}

function isJsonable(v: unknown): boolean {
  try {
    return JSON.stringify(v) !== undefined && typeof v !== 'function';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Collection

interface LoadRequest {
  load: string;
  loc: SourceLocation;
}

type Loaded = unknown;

/** Loads a module file; the evaluator is synchronous, so files are loaded between collection steps. */
export type ModuleLoader = (path: string, requestedAt: SourceLocation) => Promise<Loaded>;

/** Marks the config object of an evaluation (also submodule values), for `cairn option`. */
export const EVALUATION = Symbol('cairn.evaluation');

/** The evaluation a config object (or submodule value) came from. */
export function evaluationOf(value: unknown): Evaluation | undefined {
  return typeof value === 'object' && value !== null ? ((value as Record<symbol, Evaluation | undefined>)[EVALUATION] ?? undefined) : undefined;
}

/** The stack of options being evaluated, for "infinite recursion" messages naming the chain. */
const evaluating: OptionState[] = [];

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
  private readonly namespaces = new Map<string, NamespaceEval>();
  private readonly optionStates = new Map<string, OptionState>();
  private configValue?: Record<string, unknown>;
  private buildingConfig = false;
  private optionsValue?: Record<string, unknown>;
  readonly lateConfig: Record<string, unknown>;
  readonly lateOptions: Record<string, unknown>;
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
    this.lateConfig = makeRef(this, []);
    const optionsHost: RefHost = {
      get ready() {
        return self.ready;
      },
      lookup: (path) => lookupPath(this.options, path, 'options'),
      describe: () => ({ root: 'options', module: this.loading && formatLocation(this.loading) }),
    };
    const self = this;
    this.lateOptions = makeRef(optionsHost, []);
  }

  // RefHost
  lookup(path: string[]): unknown {
    return lookupPath(this.config, path, 'config', this.prefix);
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
    if (typeof value === 'function') {
      const previous = this.loading;
      this.loading = loc;
      try {
        value = force((value as ModuleFunction)(this.moduleArgs()));
      } catch (err) {
        throw userCodeError(err, () => `while loading the module \`${formatLocation(loc)}'`);
      } finally {
        this.loading = previous;
      }
    }
    // A module's own `key` names it, as in NixOS: modules with one key count once, and
    // `disabledModules: [{ key }]` leaves them out. (In config-only definitions, `key` is config.)
    // A number (`key = 123`) names a module as its string does (NixOS's toString).
    if (!configOnly && isPlainObject(value) && (typeof value.key === 'string' || typeof value.key === 'number')) {
      key = String(value.key);
      const again = this.collected.get(key);
      if (again) return again;
    }
    const mod = normalizeModule(value, key, loc, configOnly, yaml);
    this.collected.set(key, mod);
    const imports = force(mod.imports) as unknown[];
    mod.imports = [];
    this.onImports?.(imports.filter((p): p is string => typeof p === 'string').map((p) => resolveModulePath(p, dir)));
    for (let i = 0; i < imports.length; i++) {
      const imp = imports[i];
      const at = entryLocation(imports, String(i)) ?? loc;
      const child = yield* this.collectOne(imp as ModuleInput, { key, loc: at, dir }, i);
      if (child) mod.imports.push(child);
    }
    mod.disabledModules = mod.disabledModules.map((d) => (typeof d !== 'string' ? d.key : d.startsWith('.') || isAbsolute(d) ? resolve(dir, d) : resolve(modulesPath, d)));
    return mod;
  }

  moduleArgs(): ModuleArgs {
    return { ...this.specialArgs, name: (this.specialArgs.name as string) ?? '', config: this.lateConfig, options: this.lateOptions, lib, pkgs };
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
      if (disabled.has(normKey(m.key)) || seen.has(m.key)) return;
      seen.add(m.key);
      this.modules.push(m);
      m.imports.forEach(visit);
    };
    roots.forEach(visit);
    for (const m of this.modules) this.decls.add(m);
    this.ready = true;
  }

  // -------------------------------------------------------------------------------------------
  // Definitions, pushed down the declaration tree as NixOS's pushDownProperties does

  namespace(path: string[]): NamespaceEval {
    const k = path.join('\0');
    let ns = this.namespaces.get(k);
    if (ns) return ns;
    if (path.length === 0) {
      ns = new NamespaceEval(this, this.decls.root, this.modules.filter((m) => m.config !== undefined).map((m) => ({ loc: m.configLoc, value: m.config })));
    } else {
      const parent = this.namespace(path.slice(0, -1));
      const node = this.decls.lookup(path) as NamespaceNode;
      ns = new NamespaceEval(this, node, parent.split().matched.get(path[path.length - 1]!) ?? []);
    }
    this.namespaces.set(k, ns);
    return ns;
  }

  /** The definitions of an option (or a namespace) at `path`, relative to this evaluation. */
  definitionsAt(path: string[]): Definition[] {
    const parent = this.namespace(path.slice(0, -1));
    const own = parent.split().matched.get(path[path.length - 1]!) ?? [];
    const aliased = this.decls.aliases.filter((a) => a.option.special.alias!.to.join('\0') === path.join('\0'));
    // Renamed options warn through config.warnings, as NixOS's doRename defines it.
    const warned = path.length === 1 && path[0] === 'warnings' ? this.renameWarningDefinitions() : [];
    if (aliased.length === 0 && warned.length === 0) return own;
    return [...own, ...aliased.flatMap((a) => this.definitionsAt(a.path)), ...warned];
  }

  option(path: string[]): OptionState {
    const k = path.join('\0');
    let s = this.optionStates.get(k);
    if (!s) {
      const node = this.decls.lookup(path);
      if (!(node instanceof OptionNode)) throw new Error(`internal: no option at ${path.join('.')}`);
      this.optionStates.set(k, (s = new OptionState(this, node)));
    }
    return s;
  }

  /** Definitions that match no declared option: for freeformType, or an error. */
  unmatched(): { path: string[]; def: Definition }[] {
    const out: { path: string[]; def: Definition }[] = [];
    const walk = (node: NamespaceNode): void => {
      const ns = this.namespace(node.path);
      if (ns.defs.length === 0) return;
      const { matched, unmatched } = ns.split();
      out.push(...unmatched);
      for (const [name, child] of node.children) if (child instanceof NamespaceNode && matched.has(name)) walk(child);
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
      const near = closest(path[path.length - 1]!, parent.children.keys());
      if (near) hint = `\nDid you mean \`${showOption([...this.prefix, ...path.slice(0, -1), near])}'?`;
    }
    const more = bad.length > 1 ? `\n(and ${bad.length - 1} more undeclared option${bad.length > 2 ? 's' : ''}: ${bad.slice(1, 4).map((b) => `\`${showOption([...this.prefix, ...b.path])}'`).join(', ')}${bad.length > 4 ? ', …' : ''})` : '';
    if (holdsOption(def.value)) hint += "\n\nIt seems as if you're trying to declare an option by placing it into `config' rather than `options'!";
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
      const defs: FinalDefinition[] = this.unmatched().map(({ path, def }) => ({ loc: def.loc, value: nest(path, def), priority: PRIORITY.plain, order: 1000 }));
      free = defs.length ? (this.decls.freeformType.merge(this.prefix, defs, this) as Record<string, unknown>) : {};
    }
    const root = this.configObject(this.decls.root, free);
    Object.defineProperty(root, EVALUATION, { value: this, enumerable: false });
    return root;
  }

  private configObject(ns: NamespaceNode, free: Record<string, unknown> | undefined): Record<string, unknown> {
    const obj: Record<string, unknown> = {};
    for (const [name, child] of ns.children) {
      if (child instanceof OptionNode) {
        defineLazy(obj, name, () => this.option(child.path).value);
      } else {
        defineLazy(obj, name, () => this.configObject(child, free && isPlainObject(free[name]) ? (free[name] as Record<string, unknown>) : undefined));
      }
    }
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
      defineLazy(obj, name, () => (child instanceof OptionNode ? this.option(child.path).info : this.buildOptions(child, p)));
    }
    return obj;
  }
}

/** Whether an undeclared definition is, or holds, an mkOption (read without running getters). */
function holdsOption(value: unknown, depth = 0): boolean {
  const v = force(value);
  if (isOption(v)) return true;
  if (depth > 8 || !isPlainObject(v)) return false;
  return Object.values(Object.getOwnPropertyDescriptors(v)).some((d) => !d.get && holdsOption(d.value, depth + 1));
}

function nest(path: string[], def: Definition): unknown {
  let v: unknown = def.value;
  for (let i = path.length - 1; i >= 0; i--) {
    const o = { [path[i]!]: v };
    setEntryLocation(o, path[i]!, def.loc);
    v = o;
  }
  return v;
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

/** Definitions arriving at one namespace, split among its children. */
class NamespaceEval {
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
      for (const { obj, wraps, loc } of this.expand(def.value, [], def.loc)) {
        for (const key of Object.keys(obj)) {
          let value = lazyEntry(obj, key);
          for (let i = wraps.length - 1; i >= 0; i--) value = wraps[i]!(value);
          const d: Definition = { loc: entryLocation(obj, key) ?? keyLocation(loc, key), value };
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

  /** Flattens mkMerge and pushes mkIf/mkOverride into the attributes of a namespace's definition. */
  private *expand(value: unknown, wraps: ((v: unknown) => unknown)[], loc: SourceLocation): Generator<{ obj: Record<string, unknown>; wraps: ((v: unknown) => unknown)[]; loc: SourceLocation }> {
    const v = force(value);
    if (v instanceof Merge) {
      for (const c of v.contents) yield* this.expand(c, wraps, loc);
    } else if (v instanceof If) {
      yield* this.expand(v.content, [...wraps, (x) => new If(v.condition, x, v.site)], loc);
    } else if (v instanceof Override) {
      yield* this.expand(v.content, [...wraps, (x) => new Override(v.priority, x, v.site)], loc);
    } else if (v instanceof Order) {
      yield* this.expand(v.content, wraps, loc);
    } else if (v === null || v === undefined) {
      // An empty YAML mapping (`services:` with everything below commented out) defines nothing.
    } else if (isPlainObject(v)) {
      yield { obj: v, wraps, loc };
    } else {
      const name = this.ev.decls.show(this.node.path);
      throw new OptionError(`\`${name}' is a set of options, not an option, but it is defined as a value:${showDefs([{ loc, value: v }])}\nOptions below it: ${[...this.node.children.keys()].slice(0, 8).join(', ')}${this.node.children.size > 8 ? ', …' : ''}`);
    }
  }
}

/** What documentation shows of an option's declaration. */
export interface OptionDocFields {
  path: string;
  description?: string;
  default?: unknown;
  defaultText?: string;
  example?: unknown;
  readOnly: boolean;
  declarations: SourceLocation[];
}

/** What `options.x.y` gives modules and `cairn option` shows. */
export interface OptionInfo extends OptionDocFields {
  type: OptionType;
  isDefined: boolean;
  /** Definitions at the winning priority, in order, without the default. */
  definitions: { loc: SourceLocation; value: unknown }[];
  highestPrio: number;
  value: unknown;
}

/** One option's evaluation: its definitions, merged on first read. */
export class OptionState {
  private status: 0 | 1 | 2 = 0;
  /** Discharging the definitions (evaluating mkIf conditions) is under way. */
  private preparing = false;
  private result: unknown;
  private preparedDefs?: PreparedDefinitions;
  constructor(
    readonly ev: Evaluation,
    readonly node: OptionNode,
  ) {}

  get loc(): string[] {
    return [...this.ev.prefix, ...this.node.path];
  }

  get prepared(): PreparedDefinitions {
    if (this.preparedDefs) return this.preparedDefs;
    const defs = this.ev.definitionsAt(this.node.path);
    const decl = this.node.decl;
    // The default goes first, as in NixOS: definitions at mkOptionDefault priority (lists, lines)
    // merge after it.
    const all = hasField(decl, 'default')
      ? [{ loc: this.node.defaultLoc ?? this.node.declarations[0]!, value: new Override(PRIORITY.optionDefault, new Thunk(() => decl.default)) }, ...defs]
      : defs;
    if (this.preparing) throw this.recursion();
    this.preparing = true;
    evaluating.push(this);
    try {
      return (this.preparedDefs = prepareDefinitions(all));
    } catch (err) {
      throw userCodeError(err, () => `while evaluating the option \`${showOption(this.loc)}'`);
    } finally {
      evaluating.pop();
      this.preparing = false;
    }
  }

  get isDefined(): boolean {
    return this.prepared.defs.length > 0;
  }

  get value(): unknown {
    if (this.status === 2) return this.result;
    const alias = this.node.option.special.alias;
    if (alias) return this.ev.lookup(alias.to);
    if (this.status === 1) throw this.recursion();
    this.status = 1;
    evaluating.push(this);
    try {
      const { defs } = this.prepared;
      if (defs.length === 0) {
        throw new OptionError(`The option \`${showOption(this.loc)}' was accessed but has no value defined. Try setting the option.`);
      }
      if (this.node.decl.readOnly) {
        // As NixOS counts them: the default is a definition, and so is every definition at any priority.
        const raw = this.ev.definitionsAt(this.node.path);
        const count = raw.length + (hasField(this.node.decl, 'default') ? 1 : 0);
        if (count > 1) {
          const shown = hasField(this.node.decl, 'default') ? [{ loc: this.node.defaultLoc ?? this.node.declarations[0]!, value: this.node.decl.default }, ...raw] : raw;
          throw new OptionError(`The option \`${showOption(this.loc)}' is read-only, but it's set multiple times. Definition values:${showDefs(shown)}`);
        }
      }
      let v: unknown;
      try {
        v = checkAndMerge(this.loc, this.node.type, defs, this.ev);
      } catch (err) {
        // A default made from the submodule's name (users.users.<name>.name) is wrong because of
        // where that name was written: show that place, not only cairn's module.
        const within = this.ev.definedAt;
        if (err instanceof OptionError && within?.length && defs.some((d) => d.priority === PRIORITY.optionDefault)) {
          throw new OptionError(`${err.message}\nThe default follows \`${showOption(this.ev.prefix)}', defined:${showDefs(within.map((loc) => ({ loc, value: undefined })), false)}`);
        }
        throw err;
      }
      if (this.node.decl.apply) v = this.node.decl.apply(v);
      this.result = v;
      this.status = 2;
      return v;
    } catch (err) {
      throw userCodeError(err, () => `while evaluating the option \`${showOption(this.loc)}'`);
    } finally {
      evaluating.pop();
      if (this.status === 1) this.status = 0;
    }
  }

  /** An option needed its own value: name the chain of options involved. */
  private recursion(): OptionError {
    const start = evaluating.indexOf(this);
    // An option is on the stack twice in a row (merging, then discharging its definitions): show
    // it once, then close the cycle with this option even when it needed itself (`a' → `a').
    const chain = evaluating.slice(start).map((s) => `\`${showOption(s.loc)}'`);
    const unique = chain.filter((c, i) => i === 0 || c !== chain[i - 1]);
    unique.push(`\`${showOption(this.loc)}'`);
    return new OptionError(`infinite recursion encountered: ${unique.join(' → ')}\nEach of these options needs the value of the next to be computed.`);
  }

  get info(): OptionInfo {
    const self = this;
    const d = this.node.decl;
    return {
      path: showOption(this.loc),
      type: this.node.type,
      description: d.description,
      get default() {
        return d.default;
      },
      defaultText: d.defaultText,
      example: d.example,
      readOnly: d.readOnly ?? false,
      declarations: this.node.declarations,
      get isDefined() {
        return self.isDefined;
      },
      get definitions() {
        return self.definitions;
      },
      get highestPrio() {
        return self.prepared.highestPrio;
      },
      get value() {
        return self.value;
      },
    };
  }

  /** Definitions that won, without the declared default. */
  get definitions(): { loc: SourceLocation; value: unknown }[] {
    return this.prepared.highestPrio === PRIORITY.optionDefault ? [] : this.prepared.defs.map((x) => ({ loc: x.loc, value: x.value }));
  }
}

// ---------------------------------------------------------------------------------------------
// Module syntax

function normalizeModule(value: unknown, key: string, loc: SourceLocation, configOnly: boolean, yaml: boolean): CollectedModule {
  const base: CollectedModule = { key, loc, imports: [], disabledModules: [], configLoc: loc, yaml };
  if (value === null || value === undefined) return base;
  if (configOnly) return { ...base, config: value };
  // A module that is a condition or a priority (`lib.mkIf(cond, {…})`, `lib.mkForce({…})`) is all
  // config, as NixOS loads it.
  if (value instanceof If || value instanceof Override) return { ...base, config: value };
  if (!isPlainObject(value)) {
    throw new OptionError(`The module \`${formatLocation(loc)}' is not an object or a function of the module arguments; it is ${showValue(value)}.`);
  }
  const get = (k: string): unknown => force(lazyEntry(value, k));
  const imports = get('imports') ?? [];
  if (!Array.isArray(imports)) throw new OptionError(`\`imports' in \`${formatLocation(entryLocation(value, 'imports') ?? loc)}' must be a list of modules.`);
  const disabled = get('disabledModules') ?? [];
  if (!Array.isArray(disabled)) throw new OptionError(`\`disabledModules' in \`${formatLocation(entryLocation(value, 'disabledModules') ?? loc)}' must be a list.`);
  const disabledModules = disabled.map((d) => {
    const x = force(d);
    if (typeof x === 'string') return x;
    if (typeof x === 'number') return { key: String(x) };
    if (isPlainObject(x) && (typeof x.key === 'string' || typeof x.key === 'number')) return { key: String(x.key) };
    throw new OptionError(`\`disabledModules' in \`${formatLocation(loc)}' holds ${showValue(x)}; use module paths (relative to the file, or to cairn's modules folder) or { key }.`);
  });
  const freeformType = get('freeformType');
  if (freeformType !== undefined && !isType(freeformType)) throw new OptionError(`\`freeformType' in \`${formatLocation(loc)}' must be an option type.`);
  const mod: CollectedModule = { ...base, imports, disabledModules, freeformType: freeformType as OptionType | undefined, meta: get('meta') };
  if ('config' in value || 'options' in value) {
    const extra = Object.keys(value).filter((k) => !MODULE_KEYS.has(k));
    if (extra.length) {
      throw new OptionError(
        `Module \`${formatLocation(loc)}' has an unsupported attribute \`${extra[0]}'. This is caused by introducing a top-level \`config' or \`options' attribute. ` +
          `Add configuration attributes immediately on the top level instead, or move all of them (namely: ${extra.join(', ')}) into the explicit \`config' attribute.`,
      );
    }
    mod.options = lazyEntry(value, 'options');
    mod.config = withMeta(value, lazyEntry(value, 'config'));
    mod.configLoc = entryLocation(value, 'config') ?? loc;
    return mod;
  }
  // Shorthand: everything but the module keys is config. Getters stay lazy; positions stay attached.
  const config: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    if (MODULE_KEYS.has(k)) continue;
    Object.defineProperty(config, k, Object.getOwnPropertyDescriptor(value, k)!);
    const at = entryLocation(value, k);
    if (at) setEntryLocation(config, k, at);
  }
  mod.config = withMeta(value, config);
  return mod;
}

/** A module's `meta` is a definition of the option `meta`, as NixOS's unifyModuleSyntax makes it. */
function withMeta(module: Record<string, unknown>, config: unknown): unknown {
  if (!('meta' in module)) return config;
  const meta: Record<string, unknown> = {};
  Object.defineProperty(meta, 'meta', { ...Object.getOwnPropertyDescriptor(module, 'meta')!, enumerable: true });
  const at = entryLocation(module, 'meta');
  if (at) setEntryLocation(meta, 'meta', at);
  return new Merge([config, meta]);
}

function resolveModulePath(p: string, dir: string): string {
  return isAbsolute(p) ? p : resolve(dir, p);
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
  const batches = opts.load ? undefined : new (await import('./loader.js')).ModuleBatches();
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
export function evalModulesSync(opts: Omit<EvalModulesOptions, 'load' | 'beforeCheck'>): Evaluation {
  const ev = new Evaluation(opts.prefix ?? [], opts.specialArgs ?? {});
  const gen = ev.collect(opts.modules, { key: `<${showOption(opts.prefix ?? []) || 'root'}>`, loc: { file: '<inline>' }, dir: opts.baseDir ?? process.cwd() });
  const step = gen.next();
  if (!step.done) throw new CairnError(`A submodule cannot import the file \`${step.value.load}' (${formatLocation(step.value.loc)}); import files from top-level modules.`);
  ev.finish(step.value);
  if (opts.check ?? true) ev.checkDefinitions();
  return ev;
}

/** A submodule value: a nested evaluation of the type's modules plus each definition. */
export function evalSubmodule(loc: string[], modules: ModuleInput[], defs: FinalDefinition[], specialArgs: Record<string, unknown>, shorthand: boolean): Record<string, unknown> {
  const inputs: ModuleInput[] = [
    ...modules,
    ...defs.map((d, i) => new SourcedModule(d.value, d.loc, `${showOption(loc)}#${i + 1}`, shorthand && typeof force(d.value) !== 'function')),
  ];
  const ev = evalModulesSync({ modules: inputs, prefix: loc, specialArgs: { ...specialArgs, name: loc[loc.length - 1] ?? '' } });
  ev.definedAt = defs.map((d) => d.loc);
  return ev.config;
}

/** Declarations of a submodule type, for documentation and schemas (`name` is `<name>`). */
export function submoduleDeclarations(modules: ModuleInput[], specialArgs: Record<string, unknown>): Declarations {
  const ev = new Evaluation(['<name>'], { ...specialArgs, name: '<name>' });
  const gen = ev.collect(modules, { key: '<submodule>', loc: { file: '<inline>' }, dir: process.cwd() });
  const step = gen.next();
  if (!step.done) throw new CairnError('A submodule type cannot import files.');
  ev.finish(step.value);
  return ev.decls;
}

export { Thunk };
