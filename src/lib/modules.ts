import { dirname, isAbsolute, resolve } from 'node:path';
import { CairnError } from '../errors.js';
import { userCodeError } from './usercode.js';
import { loadModuleFileSync } from './loader.js';
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
import { isRef, makeRef, refPath, withOtherStandIns, withStandIns, type RefHost } from './refs.js';
import { didYouMean, nearest, nixTypeOf, showDefs, showOption, showValue } from './show.js';
import { emptyValueOf, extendSubmodule, isType, type JsonSchema, type OptionType } from './types.js';

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
  /**
   * The module's function, when it read config or options while collected: its definitions (and
   * its options' defaults) come from running it again with option values.
   */
  rerun?: ModuleFunction;
  /** Options whose default its first run computed from config (with stand-ins): taken from the second run. */
  laterDefaults?: Set<string>;
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
  /** The declarations that made it, kept for a submodule option declared here later. */
  readonly raw: { value: unknown; loc: SourceLocation }[] = [];
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

  /** `laterDefault` gives an option's default from the module's second run (the module read config). */
  add(mod: CollectedModule, laterDefault?: (path: string[]) => { value: unknown } | undefined): void {
    if (mod.freeformType) {
      if (this.freeformType) {
        const merged = this.freeformType.typeMerge(mod.freeformType);
        if (!merged) throw new OptionError(`The freeformType of \`${formatLocation(mod.loc)}' conflicts with one declared before.`);
        this.freeformType = merged;
      } else this.freeformType = mod.freeformType;
    }
    if (mod.options !== undefined) this.declare(this.root, mod.options, mod.loc, laterDefault && mod.laterDefaults?.size ? { get: laterDefault, paths: mod.laterDefaults } : undefined);
  }

  private declare(ns: NamespaceNode, value: unknown, loc: SourceLocation, later?: { get: (path: string[]) => { value: unknown } | undefined; paths: Set<string> }): void {
    const v = force(value);
    if (v === null || v === undefined) return;
    if (!isPlainObject(v)) {
      throw new OptionError(`Expected a set of option declarations at \`${showOption([...this.prefix, ...ns.path]) || '<root>'}' in \`${formatLocation(loc)}', got ${showValue(v)}.`);
    }
    for (const name of Object.keys(v)) {
      const path = [...ns.path, name];
      let child = force(v[name]);
      const where = entryLocation(v, name) ?? loc;
      if (later && isOption(child) && later.paths.has(path.join('\0'))) child = withLaterDefault(child, () => later.get(path));
      const existing = ns.children.get(name);
      if (isOption(child)) {
        const declLoc = declarationSite(child, where);
        let opt = child;
        if (existing instanceof NamespaceNode) {
          // Options declared below a submodule option by other modules are options of the
          // submodule, as NixOS merges them; other types cannot hold them.
          const type = child.decl.type && extendSubmodule(child.decl.type, existing.raw.map((r) => this.nestedModule(path, r.value, r.loc)));
          if (!type) throw this.parentError(path, child.decl.type, declLoc, existing.raw);
          opt = new Option(withType(child.decl, type), child.site, child.special);
          ns.children.delete(name);
        }
        const current = ns.children.get(name);
        if (current instanceof OptionNode) this.mergeDecl(current, opt, declLoc);
        else {
          const node = new OptionNode(path, opt);
          node.declarations.push(declLoc);
          // The options declared below it are declared with it, as NixOS lists them.
          if (opt !== child) node.declarations.push(...(existing as NamespaceNode).raw.map((r) => r.loc));
          if (hasField(child.decl, 'default')) node.defaultLoc = declLoc;
          ns.children.set(name, node);
          if (child.special.alias) this.aliases.push(node);
          if (child.special.removed) this.removed.push(node);
        }
      } else if (isType(child)) {
        throw new OptionError(`In module ${formatLocation(where)}: expected an option declaration at option path \`${this.show(path)}' but got an attribute set with type option-type: a bare type; wrap it: \`lib.mkOption({ type: … })\`.`);
      } else {
        if (existing instanceof OptionNode) {
          const type = existing.decl.type && extendSubmodule(existing.decl.type, [this.nestedModule(path, child, where)]);
          if (!type) throw this.parentError(path, existing.decl.type, existing.declarations[0]!, [{ value: child, loc: where }]);
          existing.decl = withType(existing.decl, type);
          existing.declarations.push(where);
          continue;
        }
        let node = existing;
        if (!node) ns.children.set(name, (node = new NamespaceNode(path)));
        node.raw.push({ value: child, loc: where });
        this.declare(node, child, where, later);
      }
    }
  }

  /** Options declared below the submodule option at `path`, as a module of the submodule. */
  private nestedModule(path: string[], options: unknown, loc: SourceLocation): SourcedModule {
    return new SourcedModule({ options }, loc, `<options below ${this.show(path)} #${++nestedCount}>`);
  }

  /** NixOS's message for options declared below an option whose type cannot hold them. */
  private parentError(path: string[], type: OptionType | undefined, declLoc: SourceLocation, nested: { value: unknown; loc: SourceLocation }[]): OptionError {
    return new OptionError(
      `The option \`${this.show(path)}' in module \`${formatLocation(declLoc)}' would be a parent of the following options, but its type \`${type?.description ?? '<no description>'}' does not support nested options.\n` +
        nested
          .flatMap(({ value, loc }) => Object.keys(force(value) as object).map((k) => `- option(s) with prefix \`${this.show([...path, k])}' in module \`${formatLocation(loc)}'`))
          .sort()
          .join('\n'),
    );
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

/**
 * An option whose default a module computed from config (`default: \`${config.networking.hostName}.local\``):
 * the default is read from the module's second run, where config has values.
 */
function withLaterDefault(opt: Option, later: () => { value: unknown } | undefined): Option {
  const d = Object.getOwnPropertyDescriptor(opt.decl, 'default');
  if (!d || d.get || d.value === undefined) return opt;
  const decl = Object.defineProperties({}, Object.getOwnPropertyDescriptors(opt.decl)) as OptionDeclaration;
  Object.defineProperty(decl, 'default', { enumerable: true, configurable: true, get: () => (later() ?? { value: d.value }).value });
  return new Option(decl, opt.site, opt.special);
}

/**
 * The options whose default differs between two first runs with different stand-ins for config
 * values: those computed from config.
 */
function configDependentDefaults(a: unknown, b: unknown, path: string[], out: Set<string>): void {
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
function sameValue(a: unknown, b: unknown, depth = 0): boolean {
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

let nestedCount = 0;

/** A declaration with another type, its other fields' descriptors kept (getter defaults stay lazy). */
function withType(decl: OptionDeclaration, type: OptionType): OptionDeclaration {
  const d = Object.defineProperties({}, Object.getOwnPropertyDescriptors(decl)) as OptionDeclaration;
  Object.defineProperty(d, 'type', { value: type, enumerable: true, configurable: true });
  return d;
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

/** A module's second run: its function called again with option values. */
interface SecondRun {
  module: CollectedModule;
  /** The option whose definitions asked for it, for the chain of a cycle. */
  requester?: OptionState;
  done: boolean;
  config?: unknown;
  configLoc?: SourceLocation;
  options?: unknown;
  /** Values its body needed that could not be computed yet (a cycle, so far) got stand-ins: those cycles. */
  partial?: OptionError[];
}

/**
 * The second run whose function body is running now. Its direct reads of an option that cannot be
 * computed yet (a cycle through an option being computed) give a reference; computing with one
 * there gives a stand-in. Only a value that is really needed in a cycle is an error.
 */
let bodyOf: SecondRun | undefined;

/**
 * "infinite recursion" errors: an option needed its own value. (A set, not a subclass: in an import
 * cycle this file can load before OptionError is defined.)
 */
const recursions = new WeakSet<object>();
const isRecursion = (err: unknown): err is OptionError => typeof err === 'object' && err !== null && recursions.has(err);
function recursionError(message: string): OptionError {
  const err = new OptionError(message);
  recursions.add(err);
  return err;
}

/** What a partial run reads for a value that cannot be computed yet: a reference computing as a stand-in. */
const standIns: RefHost = { ready: false, lookup: () => undefined, describe: () => ({ root: 'config' }) };

/** Which module gave a definition, for those of modules that run twice. */
const definedBy = new WeakMap<Definition, CollectedModule>();

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
  /** Reads through references while collecting: all, and those computing with a stand-in. */
  private reads = 0;
  private stubs = 0;
  private readonly secondRuns = new Map<CollectedModule, SecondRun>();
  /** Modules whose second run is under way, and how many times over. */
  private readonly running = new Map<CollectedModule, number>();
  /** The objects of config's sets of options, and their views for second runs. */
  private readonly configSets = new WeakSet<object>();
  private readonly views = new WeakMap<object, Record<string, unknown>>();
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
      touched: (stub) => this.touched(stub),
    };
    const self = this;
    this.lateOptions = makeRef(optionsHost, []);
  }

  // RefHost
  lookup(path: string[]): unknown {
    // Resolving a reference needs the value: a cycle is an error here, even in a second run's body.
    const body = bodyOf;
    bodyOf = undefined;
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
      bodyOf = body;
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
        value = force(fn(this.moduleArgs()));
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
    this.onImports?.(imports.filter((p): p is string => typeof p === 'string').map((p) => resolveModulePath(p, dir)));
    for (let i = 0; i < imports.length; i++) {
      const imp = imports[i];
      const at = entryLocation(imports, String(i)) ?? loc;
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
    mod.disabledModules = mod.disabledModules.map((d) => (typeof d !== 'string' ? d.key : d.startsWith('.') || isAbsolute(d) ? resolve(dir, d) : resolve(modulesPath, d)));
    return mod;
  }

  /** Which option defaults a module's first run computed from config: those another first run gives differently. */
  private dependentDefaults(fn: ModuleFunction, value: unknown): Set<string> {
    const out = new Set<string>();
    const optionsOf = (v: unknown): unknown => (isPlainObject(v) ? force(lazyEntry(v, 'options')) : undefined);
    if (optionsOf(value) === undefined) return out;
    let other: unknown;
    try {
      other = force(withOtherStandIns(() => fn(this.moduleArgs())));
    } catch {
      // The other stand-ins made it fail: every computed default depends on them.
    }
    configDependentDefaults(optionsOf(value), optionsOf(other), [], out);
    return out;
  }

  moduleArgs(): ModuleArgs {
    // specialArgs come last: they may replace any argument, `lib` too, as in NixOS.
    return { name: '', config: this.lateConfig, options: this.lateOptions, lib, pkgs, ...this.specialArgs };
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
    for (const m of this.modules) this.decls.add(m, m.rerun && ((path) => this.laterDefault(m, path)));
    this.ready = true;
  }

  private runAgain(run: SecondRun): SecondRun {
    const mod = run.module;
    const body = bodyOf;
    bodyOf = run;
    let value: unknown;
    try {
      value = force(mod.rerun!({ ...this.specialArgs, name: (this.specialArgs.name as string) ?? '', config: this.strictView(this.config, []), options: this.options, lib, pkgs }));
    } catch (err) {
      throw userCodeError(err, () => `while computing the definitions of the module \`${formatLocation(mod.loc)}'`);
    } finally {
      bodyOf = body;
    }
    const again = normalizeModule(value, mod.key, mod.loc, false, mod.yaml);
    run.config = again.config;
    run.configLoc = again.configLoc;
    run.options = again.options;
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
    const done = this.secondRuns.get(mod);
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
      const a: SecondRun = { module: mod, requester, done: false, partial: [] };
      withStandIns(0, () => this.runAgain(a));
      // Nothing needed a stand-in: this is the module's second run, kept for the evaluation.
      if (a.partial!.length === 0) {
        this.secondRuns.set(mod, a);
        return extract(a);
      }
      const first = extract(a);
      const b: SecondRun = { module: mod, requester, done: false, partial: [] };
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
    let view = this.views.get(obj);
    if (view) return view;
    const sets = this.configSets;
    const self = this;
    view = new Proxy(obj, {
      get(t, key, receiver) {
        // A reference, which fails when resolved: `mkIf(() => 'x' in config, config.x)` stays lazy.
        if (typeof key === 'string' && !(key in t) && key !== 'then' && key !== 'toJSON') return makeRef(self, [...path, key]);
        const v = Reflect.get(t, key, receiver);
        return typeof key === 'string' && sets.has(v as object) ? self.strictView(v as Record<string, unknown>, [...path, key]) : v;
      },
    });
    this.views.set(obj, view);
    return view;
  }

  /** An option's default as the module's second run declares it. */
  private laterDefault(mod: CollectedModule, path: string[]): { value: unknown } | undefined {
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
  private fromSecondRuns(defs: Definition[], path: string[]): Definition[] {
    if (!defs.some((d) => definedBy.has(d))) return defs;
    const out: Definition[] = [];
    const done = new Set<CollectedModule>();
    for (const d of defs) {
      const mod = definedBy.get(d);
      if (!mod) out.push(d);
      else if (!done.has(mod)) {
        done.add(mod);
        out.push(
          ...this.fromSecondRun(
            mod,
            (run) => (run.config === undefined ? [] : this.pushDown([{ loc: run.configLoc!, value: run.config }], path)),
            (a, b) => a.length === b.length && a.every((d, i) => sameValue(d.value, b[i]!.value)),
          ),
        );
      }
    }
    return out;
  }

  /**
   * An undeclared definition of a module that runs twice, for the freeformType: its second run's
   * definitions at `path`, run when the value is needed (config is being built now).
   */
  private laterDefinition(def: Definition, path: string[]): Definition {
    if (!definedBy.has(def)) return def;
    return { loc: def.loc, value: new Thunk(() => new Merge(this.fromSecondRuns([def], path).map((d) => d.value))) };
  }

  /** The definitions at `path` within definitions of the whole config (NixOS's pushDownProperties, one path). */
  private pushDown(defs: Definition[], path: string[]): Definition[] {
    let at = defs;
    for (let i = 0; i < path.length; i++) {
      const key = path[i]!;
      const next: Definition[] = [];
      for (const def of at) {
        for (const { obj, wraps, loc } of expandSet(def.value, [], def.loc, (v, l) => this.notASet(path.slice(0, i), v, l))) {
          if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
          let value = lazyEntry(obj, key);
          for (let j = wraps.length - 1; j >= 0; j--) value = wraps[j]!(value);
          next.push({ loc: entryLocation(obj, key) ?? keyLocation(loc, key), value });
        }
      }
      at = next;
    }
    return at;
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
    const k = path.join('\0');
    let ns = this.namespaces.get(k);
    if (ns) return ns;
    if (path.length === 0) {
      ns = new NamespaceEval(
        this,
        this.decls.root,
        this.modules
          .filter((m) => m.config !== undefined)
          .map((m) => {
            const d = { loc: m.configLoc, value: m.config };
            if (m.rerun) definedBy.set(d, m);
            return d;
          }),
      );
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
    const own = this.fromSecondRuns(parent.split().matched.get(path[path.length - 1]!) ?? [], path);
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
      const defs: FinalDefinition[] = this.unmatched().map(({ path, def }) => ({ loc: def.loc, value: nest(path, this.laterDefinition(def, path)), priority: PRIORITY.plain, order: 1000 }));
      free = defs.length ? (this.decls.freeformType.merge(this.prefix, defs, this) as Record<string, unknown>) : {};
    }
    const root = this.configObject(this.decls.root, free);
    Object.defineProperty(root, EVALUATION, { value: this, enumerable: false });
    return root;
  }

  private configObject(ns: NamespaceNode, free: Record<string, unknown> | undefined): Record<string, unknown> {
    const obj: Record<string, unknown> = {};
    this.configSets.add(obj);
    for (const [name, child] of ns.children) {
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
            const v = (state ??= this.option(child.path)).value;
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
  // A getter is never run for a hint: its value may throw, or need config.
  if (value instanceof Thunk) return false;
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
      const from = definedBy.get(def);
      for (const { obj, wraps, loc } of expandSet(def.value, [], def.loc, (v, l) => this.ev.notASet(this.node.path, v, l))) {
        for (const key of Object.keys(obj)) {
          let value = lazyEntry(obj, key);
          for (let i = wraps.length - 1; i >= 0; i--) value = wraps[i]!(value);
          const d: Definition = { loc: entryLocation(obj, key) ?? keyLocation(loc, key), value };
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
  /** The files of those definitions, each once (NixOS's `files`). */
  files: string[];
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
    // Read directly by a second run's body: an option being computed, or one needing this very
    // run, is read again when it is needed (a reference), as a lazy language would.
    const body = bodyOf;
    if (this.status === 1) {
      if (body) return makeRef(this.ev, this.node.path);
      throw this.recursion();
    }
    if (!body) return this.compute();
    bodyOf = undefined;
    try {
      return this.compute();
    } catch (err) {
      if (isRecursion(err)) return makeRef(this.ev, this.node.path);
      throw err;
    } finally {
      bodyOf = body;
    }
  }

  private compute(): unknown {
    this.status = 1;
    evaluating.push(this);
    try {
      const { defs } = this.prepared;
      // Without definitions, a type with an empty value ([] for lists, {} for sets, null for
      // nullOr, a submodule's defaults) gives it, as NixOS's evalOptionValue does.
      const empty = defs.length === 0 ? emptyValueOf(this.node.type, this.loc, this.ev) : undefined;
      if (defs.length === 0 && !empty) {
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
        v = empty ? empty.value : checkAndMerge(this.loc, this.node.type, defs, this.ev);
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
  recursion(): OptionError {
    const start = evaluating.indexOf(this);
    // An option is on the stack twice in a row (merging, then discharging its definitions): show
    // it once, then close the cycle with this option even when it needed itself (`a' → `a').
    const chain = evaluating.slice(start).map((s) => `\`${showOption(s.loc)}'`);
    const unique = chain.filter((c, i) => i === 0 || c !== chain[i - 1]);
    unique.push(`\`${showOption(this.loc)}'`);
    return recursionError(`infinite recursion encountered: ${unique.join(' → ')}\nEach of these options needs the value of the next to be computed.`);
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
      get files() {
        return [...new Set(self.definitions.map((d) => d.loc.file))];
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
    if (isPlainObject(x)) {
      throw new OptionError(
        `Module \`${formatLocation(loc)}' contains a disabledModules item that is an attribute set, presumably a module, that does not have a \`key' attribute. ` +
          "This means that the module system doesn't have any means to identify the module that should be disabled. Use a module path (relative to the file, or to cairn's modules folder) or an object with a `key'.",
      );
    }
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
    // TypeScript keeps no positions: definitions are found in the text below `config:`, not
    // at the first entry of that name in the file (often the option's declaration).
    mod.configLoc = entryLocation(value, 'config') ?? keyLocation(loc, 'config');
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

/**
 * A string naming a module file, as a submodule definition: absolute, or `./…`, `../…`, with the
 * name of a kind of module cairn reads. (Only such names: `either str (submodule …)` must not take
 * a command such as `/usr/bin/id` for a module to import.)
 */
export function isModulePath(v: unknown): v is string {
  return typeof v === 'string' && (isAbsolute(v) || v.startsWith('./') || v.startsWith('../')) && MODULE_FILE.test(v);
}

const MODULE_FILE = /^[^\0-\x1f\x7f]*\.(ya?ml|json|[cm]?ts|tsx|[cm]?js)$/;

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
  let step = gen.next();
  while (!step.done) step = gen.next(loadModuleFileSync(step.value.load, step.value.loc));
  ev.finish(step.value);
  if (opts.check ?? true) ev.checkDefinitions();
  return ev;
}

/** A submodule value: a nested evaluation of the type's modules plus each definition. */
export function evalSubmodule(loc: string[], modules: ModuleInput[], defs: FinalDefinition[], specialArgs: Record<string, unknown>, shorthand: boolean): Record<string, unknown> {
  const inputs: ModuleInput[] = [
    ...modules,
    ...defs.map((d, i) => {
      const v = force(d.value);
      // A path is a module file, relative to the file that defined it.
      if (isModulePath(v)) return resolveModulePath(v, isAbsolute(d.loc.file) ? dirname(d.loc.file) : process.cwd());
      return new SourcedModule(d.value, d.loc, `${showOption(loc)}#${i + 1}`, shorthand && typeof v !== 'function');
    }),
  ];
  const ev = evalModulesSync({ modules: inputs, prefix: loc, specialArgs: { ...specialArgs, name: loc[loc.length - 1] ?? '' } });
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

export { Thunk };
