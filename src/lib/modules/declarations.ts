import { entryLocations, formatLocation, lazyLocation, type SourceLocation } from '../location.js';
import { force, isPlainObject, OptionError } from '../merge.js';
import { isOption, Option, type OptionDeclaration } from '../options.js';
import { showOption, showValue } from '../show.js';
import { extendSubmodule, isType, types, type JsonSchema, type OptionType } from '../types.js';
import type { NamespaceEval } from './definitions.js';
import type { OptionState } from './option-values.js';
import { SourcedModule, type CollectedModule } from './syntax.js';

// Declarations: the tree of options that modules declare (NixOS's `options`), merged per option.

/** A set of options (`services`, `services.openssh`). */
export class NamespaceNode {
  readonly children = new Map<string, NamespaceNode | OptionNode>();
  /** The declarations that made it, kept for a submodule option declared here later. */
  readonly raw: { value: unknown; loc: SourceLocation }[] = [];
  /** Its definitions, split when first needed (by the evaluation these declarations are of). */
  evaluated?: NamespaceEval = undefined;
  constructor(
    readonly path: string[],
    /** The set of options it is in (none for the root). */
    readonly parent?: NamespaceNode,
  ) {}
}

/** One option with its merged declaration. */
export class OptionNode {
  decl: OptionDeclaration;
  /** Where it was declared (every declaration when several merge). */
  readonly declarations: SourceLocation[];
  /** The declaration that gave the default when it is not the first, for the default's definition location. */
  defaultLoc?: SourceLocation = undefined;
  /** Its value, computed when first needed (by the evaluation these declarations are of). */
  state?: OptionState = undefined;
  constructor(
    readonly path: string[],
    readonly option: Option,
    /** The set of options it is in. */
    readonly parent: NamespaceNode,
    declaredAt: SourceLocation,
  ) {
    // Kept as written: a default may be a getter reading config, evaluated only when needed.
    this.decl = option.decl;
    // A literal, not a push: an array pushed to keeps room for more (most options have one).
    this.declarations = [declaredAt];
  }
  get type(): OptionType {
    return this.decl.type ?? types.anything;
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
    const positions = entryLocations(v);
    for (const name of Object.keys(v)) {
      // Of its length, where a spread leaves room to grow: configurations declare thousands.
      const path = ns.path.concat(name);
      let child = force(v[name]);
      const where = positions?.get(name) ?? loc;
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
          const node = new OptionNode(path, opt, ns, declLoc);
          // The options declared below it are declared with it, as NixOS lists them.
          if (opt !== child) node.declarations.push(...(existing as NamespaceNode).raw.map((r) => r.loc));
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
        if (!node) ns.children.set(name, (node = new NamespaceNode(path, ns)));
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
  fold<T>(f: { option(node: OptionNode): T; namespace(children: [string, T][], top: boolean): T }, from: NamespaceNode = this.root): T {
    const walk = (ns: NamespaceNode): T =>
      f.namespace(
        [...ns.children].map(([name, child]): [string, T] => [name, child instanceof NamespaceNode ? walk(child) : f.option(child)]),
        ns === this.root,
      );
    return walk(from);
  }

  /** The JSON Schema of a config for these declarations (what YAML configs are checked against). */
  jsonSchema(from: NamespaceNode = this.root): JsonSchema {
    return this.fold<JsonSchema>({ option: (child) => this.optionSchema(child), namespace: (children, top) => this.namespaceSchema(children, top) }, from);
  }

  /**
   * The JSON Schema that checks `data`: jsonSchema() with only the parts the data reaches (each
   * set of options keeps the properties the data has, see pruneSchema), made without the rest of
   * the tree, most of which a configuration never touches.
   */
  jsonSchemaFor(data: unknown): JsonSchema {
    const walk = (ns: NamespaceNode, d: unknown): JsonSchema => {
      if (!isPlainObject(d)) return this.jsonSchema(ns);
      const kept: [string, JsonSchema][] = [];
      for (const k of Object.keys(d)) {
        const child = ns.children.get(k);
        if (child) kept.push([k, child instanceof NamespaceNode ? walk(child, d[k]) : pruneSchema(this.optionSchema(child), d[k])]);
      }
      return this.namespaceSchema(kept, ns === this.root);
    };
    return walk(this.root, data);
  }

  private optionSchema(child: OptionNode): JsonSchema {
    const s = child.option.special.alias || child.option.special.removed ? {} : { ...child.type.jsonSchema() };
    if (child.decl.description) s.description = child.decl.description;
    const d = Object.getOwnPropertyDescriptor(child.decl, 'default');
    if (d && !d.get && d.value !== undefined && isJsonable(d.value)) s.default = d.value;
    return s;
  }

  private namespaceSchema(children: [string, JsonSchema][], top: boolean): JsonSchema {
    return {
      type: ['object', 'null'],
      properties: Object.fromEntries(children),
      additionalProperties: top && this.freeformType ? freeformEntrySchema(this.freeformType) : false,
    };
  }
}

/**
 * Keeps only the parts of a schema that the data reaches. With `additionalProperties` checked,
 * properties the data doesn't have cannot fail, so the result validates exactly the same; it is
 * much smaller to compile than the schema of every option.
 */
export function pruneSchema(schema: JsonSchema, data: unknown): JsonSchema {
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  if (!props || !isPlainObject(data)) return schema;
  const kept: Record<string, JsonSchema> = {};
  for (const k of Object.keys(data)) if (Object.prototype.hasOwnProperty.call(props, k)) kept[k] = pruneSchema(props[k]!, data[k]);
  const extra = schema.additionalProperties;
  return { ...schema, properties: kept, ...(typeof extra === 'object' && extra !== null ? { additionalProperties: extra } : {}) };
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
  return lazyLocation(siteOrEntry, opt, fallback);
}

const siteOrEntry = (opt: Option, fallback: SourceLocation): SourceLocation => opt.location ?? fallback;

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

/** Numbers the modules made of options declared below a submodule option: each needs its own key. */
let nestedCount = 0;

/** A declaration with another type, its other fields' descriptors kept (getter defaults stay lazy). */
function withType(decl: OptionDeclaration, type: OptionType): OptionDeclaration {
  const d = Object.defineProperties({}, Object.getOwnPropertyDescriptors(decl)) as OptionDeclaration;
  Object.defineProperty(d, 'type', { value: type, enumerable: true, configurable: true });
  return d;
}

/** Whether a declaration sets a field, without running a getter (lazy defaults). */
export function hasField(decl: object, k: string): boolean {
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
