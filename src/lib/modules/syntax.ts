import { entryLocation, formatLocation, keyLocation, setEntryLocation, type SourceLocation } from '../location.js';
import { force, isPlainObject, lazyEntry, OptionError } from '../merge.js';
import type { lib } from '../lib.js';
import type { pkgs } from '../package.js';
import { If, Merge, Override } from '../properties.js';
import { showValue } from '../show.js';
import { isType, type OptionType } from '../types.js';

// Module syntax: what a module may be, and its normal form (NixOS's unifyModuleSyntax).

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

/** A module file collection needs loaded, and where it was named. */
export interface LoadRequest {
  load: string;
  loc: SourceLocation;
}

/** A loaded file's module value. */
export type Loaded = unknown;

/** Loads a module file; the evaluator is synchronous, so files are loaded between collection steps. */
export type ModuleLoader = (path: string, requestedAt: SourceLocation) => Promise<Loaded>;

/** A module's value in the full form (`imports`, `options`, `config`, …); a config-only value is all `config`. */
export function normalizeModule(value: unknown, key: string, loc: SourceLocation, configOnly: boolean, yaml: boolean): CollectedModule {
  // All the fields, so that every module has one shape.
  const base: CollectedModule = { key, loc, imports: [], disabledModules: [], configLoc: loc, yaml, options: undefined, config: undefined, freeformType: undefined, meta: undefined, rerun: undefined, laterDefaults: undefined };
  if (value === null || value === undefined) return base;
  // A module that is a condition or a priority (`lib.mkIf(cond, {…})`, `lib.mkForce({…})`) is all
  // config, as NixOS loads it.
  if (configOnly || value instanceof If || value instanceof Override) {
    base.config = value;
    return base;
  }
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
  const mod = base;
  mod.imports = imports;
  mod.disabledModules = disabledModules;
  mod.freeformType = freeformType as OptionType | undefined;
  mod.meta = get('meta');
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
