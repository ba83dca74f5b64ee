import { dirname, isAbsolute, resolve } from 'node:path';
import { CallSite, entryLocation, entryLocations, keyLocation, type SourceLocation } from './location.js';
import {
  defineLazy,
  force,
  isPlainObject,
  lazyEntry,
  mergeDefinitions,
  mergeEqualOption,
  mergeUniqueOption,
  OptionError,
  type Definition,
  type FinalDefinition,
  type MergeContext,
} from './merge.js';
import type { Declarations } from './modules/declarations.js';
import { isModulePath } from './modules/paths.js';
import type { ModuleInput } from './modules/syntax.js';
import { Package, pkg } from './package.js';
import { showDefs, showOption } from './show.js';

export type JsonSchema = Record<string, unknown>;

/**
 * An option type: how definitions are checked and merged, as in nixpkgs' lib/types.nix.
 * `check` looks only at the top of a value; nested values are checked as they are merged.
 */
export interface OptionType {
  readonly name: string;
  readonly description: string;
  /**
   * NixOS's descriptionClass: how the description reads inside another's (`list of (a or b)`):
   * a noun, a conjunction (`a or b`), a composite (`list of a`), or a clause (`…, meaning >0`).
   */
  readonly descriptionClass?: DescriptionClass;
  check(value: unknown): boolean;
  merge(loc: string[], defs: FinalDefinition[], ctx: MergeContext): unknown;
  /** The type two declarations of one option merge to, or null when they cannot be merged. */
  typeMerge(other: OptionType): OptionType | null;
  /** Types this one is built from (listOf's element type, …). */
  readonly nestedTypes: Readonly<Record<string, OptionType>>;
  /**
   * How a value holds values of its element type (`nestedTypes.elemType`), for walking an option
   * path into it: each under a name (attrsOf: `<name>`), at a position (listOf: `*`), or the value
   * itself (nullOr, unique: ''). Undefined for other types.
   */
  readonly elemSegment?: ElemSegment;
  /**
   * The options declared inside this type's values, as nixpkgs' getSubOptions: a submodule's own,
   * or through elemSegment those of the element type; undefined when there are none. `prefix` is
   * the option's path.
   */
  getSubOptions(prefix?: readonly string[]): SubOptions | undefined;
  jsonSchema(): JsonSchema;
  /** Identity of a parameter (enum values, a regex, a separator), compared when merging declarations. */
  readonly payload?: unknown;
  /** NixOS's emptyValue: what a lazyAttrsOf entry whose definitions were all removed holds. */
  readonly emptyValue?: { value: unknown };
  /** A value refused by this type may be a secret (an inline key): its error names where it was defined, never the value. */
  readonly secret?: boolean;
  /** The empty value at an option path, where it depends on it (a submodule's is an evaluation there). */
  emptyValueAt?(loc: string[], ctx: MergeContext): { value: unknown } | undefined;
}

/** What an option (or lazyAttrsOf entry) at `loc` of type `t` holds without definitions, if anything. */
export function emptyValueOf(t: OptionType, loc: string[], ctx: MergeContext): { value: unknown } | undefined {
  return t.emptyValueAt ? t.emptyValueAt(loc, ctx) : t.emptyValue;
}

export function isType(v: unknown): v is OptionType {
  return typeof v === 'object' && v !== null && (v as { [TYPE]?: boolean })[TYPE] === true;
}

const TYPE = Symbol('cairn.optionType');

export type DescriptionClass = 'noun' | 'conjunction' | 'composite' | 'nonRestrictiveClause';

export type ElemSegment = '<name>' | '*' | '';

/** Options declared inside a type's values (for documentation, schemas and `cairn option`). */
export interface SubOptions {
  /** Where they are: the option's path, then `<name>` or `*` for each attrsOf or listOf passed through. */
  readonly prefix: string[];
  /** Their declarations, evaluated on first read (a submodule's modules run for them). */
  readonly declarations: Declarations;
}

/** A nested type's description, in parentheses unless its class reads well unbracketed there. */
function phrase(t: OptionType, ...bare: DescriptionClass[]): string {
  return t.descriptionClass && bare.includes(t.descriptionClass) ? t.description : `(${t.description})`;
}

interface TypeSpec {
  name: string;
  description: string;
  descriptionClass?: DescriptionClass;
  check: (v: unknown) => boolean;
  merge: (loc: string[], defs: FinalDefinition[], ctx: MergeContext) => unknown;
  jsonSchema: () => JsonSchema;
  nestedTypes?: Record<string, OptionType>;
  payload?: unknown;
  /** Builds the same kind of type from merged nested types (wrappers like listOf). */
  rebuild?: (nested: Record<string, OptionType>) => OptionType;
  typeMerge?: (other: OptionType) => OptionType | null;
  elemSegment?: ElemSegment;
  /** The declarations of the type's own options (a submodule's). */
  subOptions?: () => Declarations;
  emptyValue?: { value: unknown };
  secret?: boolean;
}

/** Builds a type value; the default declaration merge follows NixOS's defaultTypeMerge. */
export function mkOptionType(spec: TypeSpec): OptionType {
  const nestedTypes = spec.nestedTypes ?? {};
  const t: Typed & { [TYPE]: true } = {
    [TYPE]: true,
    // Fields of the types made of this one and of a submodule's options, in every type so that
    // all have one shape.
    [DERIVED]: undefined,
    [SUBMODULE]: undefined,
    name: spec.name,
    description: spec.description,
    descriptionClass: spec.descriptionClass,
    check: spec.check,
    merge: spec.merge,
    nestedTypes,
    payload: spec.payload,
    jsonSchema: spec.jsonSchema,
    elemSegment: spec.elemSegment,
    getSubOptions(prefix = []) {
      if (spec.subOptions) {
        const declarations = spec.subOptions;
        return {
          prefix: [...prefix],
          get declarations() {
            return declarations();
          },
        };
      }
      const elem = nestedTypes.elemType;
      if (spec.elemSegment === undefined || !elem) return undefined;
      return elem.getSubOptions(spec.elemSegment ? [...prefix, spec.elemSegment] : prefix);
    },
    emptyValue: spec.emptyValue,
    secret: spec.secret,
    typeMerge(other: OptionType): OptionType | null {
      if (spec.typeMerge) return spec.typeMerge(other);
      if (other === t) return t;
      if (other.name !== spec.name) return null;
      if (JSON.stringify(other.payload) !== JSON.stringify(spec.payload)) return null;
      const keys = Object.keys(nestedTypes);
      if (keys.length === 0) return t;
      const merged: Record<string, OptionType> = {};
      for (const k of keys) {
        const a = nestedTypes[k]!;
        const b = other.nestedTypes[k];
        const m = b ? a.typeMerge(b) : null;
        if (!m) return null;
        merged[k] = m;
      }
      return spec.rebuild ? spec.rebuild(merged) : null;
    },
  };
  return t;
}

function simple(name: string, description: string, check: (v: unknown) => boolean, jsonSchema: JsonSchema, payload?: unknown): OptionType {
  return mkOptionType({ name, description, descriptionClass: 'noun', check, merge: mergeEqualOption, jsonSchema: () => ({ ...jsonSchema }), payload });
}

/** A type whose description ends in a clause (`…, meaning >0`): bracketed inside others. */
function clause(t: OptionType): OptionType {
  return Object.assign(t, { descriptionClass: 'nonRestrictiveClause' as const });
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

function between(lo: number, hi: number, name = 'intBetween', description?: string): OptionType {
  return simple(
    name,
    description ?? `integer between ${lo} and ${hi} (both inclusive)`,
    (v) => isInt(v) && v >= lo && v <= hi,
    { type: 'integer', minimum: lo, maximum: hi },
    [lo, hi],
  );
}

function unsignedBits(bits: number): OptionType {
  const hi = 2 ** bits - 1;
  return between(0, hi, `unsignedInt${bits}`, `${bits} bit unsigned integer; between 0 and ${hi} (both inclusive)`);
}

function separatedString(sep: string, name = 'separatedString', description?: string): OptionType {
  return mkOptionType({
    name,
    description: description ?? (sep === '' ? 'concatenated string' : `strings concatenated with ${JSON.stringify(sep)}`),
    descriptionClass: 'noun',
    check: isStr,
    merge: (_loc, defs) => defs.map((d) => d.value as string).join(sep),
    jsonSchema: () => ({ type: 'string' }),
    payload: sep,
  });
}

/** A definition value that can hold properties (mkIf…) in its entries: push them to per-entry definitions. */
function entryDefinitions(defs: readonly FinalDefinition[]): Map<string, Definition[]> {
  const perKey = new Map<string, Definition[]>();
  for (const def of defs) {
    const obj = def.value as Record<string, unknown>;
    const positions = entryLocations(obj);
    for (const k of Object.keys(obj)) {
      let list = perKey.get(k);
      if (!list) perKey.set(k, (list = []));
      list.push({ loc: positions?.get(k) ?? keyLocation(def.loc, k), value: lazyEntry(obj, k) });
    }
  }
  return perKey;
}

/**
 * One type of a kind for each element type: modules make `listOf(types.str)` in every run (and a
 * submodule's in each value's), and a type is a dozen closures. Types are not changed once made.
 */
function sameFor(kind: Exclude<keyof DerivedTypes, 'of'>, elem: OptionType, make: (elem: OptionType) => OptionType): OptionType {
  // Kept on the element type, not in a WeakMap: most element types are made in a module's run
  // (a submodule) and used once, and weak maps of thousands of keys cost the collector.
  let made = (elem as Typed)[DERIVED];
  // A copy of a type (`{ ...types.str, emptyValue }`) has the field too, but is another type.
  if (made?.of !== elem) (elem as Typed)[DERIVED] = made = { of: elem };
  return (made[kind] ??= make(elem));
}

/** The types made of a type by listOf & co. (see sameFor). */
interface DerivedTypes {
  of: OptionType;
  listOf?: OptionType;
  attrsOf?: OptionType;
  lazyAttrsOf?: OptionType;
  nullOr?: OptionType;
}
const DERIVED = Symbol('cairn.derivedTypes');
const SUBMODULE = Symbol('cairn.submoduleOptions');
/** A type's own fields for this file. */
interface Typed extends OptionType {
  [DERIVED]?: DerivedTypes;
  [SUBMODULE]?: { of: OptionType; opts: SubmoduleOptions };
}

function attrsOfImpl(elem: OptionType, lazy: boolean): OptionType {
  const name = lazy ? 'lazyAttrsOf' : 'attrsOf';
  const self: OptionType = mkOptionType({
    name,
    emptyValue: { value: {} },
    // A second declaration that checks its names (attrsNamed) keeps the check.
    typeMerge: (other) => {
      if (other.name !== name) return null;
      const e = elem.typeMerge(other.nestedTypes.elemType!);
      if (!e) return null;
      const names = namesOf.get(other);
      return names ? attrsNamed(names, e, lazy) : attrsOfImpl(e, lazy);
    },
    description: `${lazy ? 'lazy ' : ''}attribute set of ${phrase(elem, 'noun', 'composite')}`,
    descriptionClass: 'composite',
    check: isPlainObject,
    nestedTypes: { elemType: elem },
    elemSegment: '<name>',
    rebuild: (n) => attrsOfImpl(n.elemType!, lazy),
    jsonSchema: () => ({ type: 'object', additionalProperties: elem.jsonSchema() }),
    merge(loc, defs, ctx) {
      const result: Record<string, unknown> = {};
      entryDefinitions(defs).forEach((kdefs, k) => {
        const kloc = [...loc, k];
        if (lazy) {
          defineLazy(result, k, () => {
            const r = mergeDefinitions(kloc, elem, kdefs, ctx);
            const empty = r.isDefined ? undefined : emptyValueOf(elem, kloc, ctx);
            if (empty) return empty.value;
            if (!r.isDefined) throw new OptionError(`The option \`${showOption(kloc)}' was accessed but has no value defined. Try setting the option.`);
            return r.value();
          });
        } else {
          const r = mergeDefinitions(kloc, elem, kdefs, ctx);
          if (r.isDefined) defineLazy(result, k, r.value);
        }
      });
      return result;
    },
  });
  return self;
}

function listOf(elem: OptionType): OptionType {
  return mkOptionType({
    name: 'listOf',
    emptyValue: { value: [] },
    description: `list of ${phrase(elem, 'noun', 'composite')}`,
    descriptionClass: 'composite',
    check: Array.isArray,
    nestedTypes: { elemType: elem },
    elemSegment: '*',
    rebuild: (n) => listOf(n.elemType!),
    jsonSchema: () => ({ type: 'array', items: elem.jsonSchema() }),
    merge(loc, defs, ctx) {
      const out: unknown[] = [];
      // An element of a type whose definitions must all be equal (str, int, enum, …) written as a
      // plain value merges to itself: no definition is made for it (lists are long, and many).
      const plain = elem.merge === mergeEqualOption;
      defs.forEach((def, n) => {
        const arr = def.value as unknown[];
        for (let m = 0; m < arr.length; m++) {
          if (plain) {
            const d = Object.getOwnPropertyDescriptor(arr, m);
            const v = d?.value;
            if (d && !d.get && v !== undefined && v !== null && typeof v !== 'object' && typeof v !== 'function' && elem.check(v)) {
              out.push(v);
              continue;
            }
          }
          const r = mergeDefinitions(
            [...loc, `[definition ${n + 1}-entry ${m + 1}]`],
            elem,
            [{ loc: entryLocation(arr, String(m)) ?? def.loc, value: lazyEntry(arr, String(m)) }],
            ctx,
          );
          if (r.isDefined) out.push(r.value());
        }
      });
      return out;
    },
  });
}

function nullOr(elem: OptionType): OptionType {
  return mkOptionType({
    name: 'nullOr',
    emptyValue: { value: null },
    description: `null or ${phrase(elem, 'noun', 'conjunction')}`,
    descriptionClass: 'conjunction',
    check: (v) => v === null || elem.check(v),
    nestedTypes: { elemType: elem },
    elemSegment: '',
    rebuild: (n) => nullOr(n.elemType!),
    jsonSchema: () => ({ anyOf: [{ type: 'null' }, elem.jsonSchema()] }),
    merge(loc, defs, ctx) {
      const nulls = defs.filter((d) => d.value === null);
      if (nulls.length === defs.length) return null;
      if (nulls.length > 0) {
        throw new OptionError(`The option \`${showOption(loc)}' is defined both null and not null:${showDefs(defs)}`);
      }
      return elem.merge(loc, defs, ctx);
    },
  });
}

function either(a: OptionType, b: OptionType): OptionType {
  return mkOptionType({
    name: 'either',
    description:
      a.descriptionClass === 'nonRestrictiveClause'
        ? `${a.description}, or ${phrase(b, 'noun', 'conjunction')}`
        : `${phrase(a, 'noun', 'conjunction')} or ${phrase(b, 'noun', 'conjunction', 'composite')}`,
    descriptionClass: 'conjunction',
    check: (v) => a.check(v) || b.check(v),
    nestedTypes: { left: a, right: b },
    rebuild: (n) => either(n.left!, n.right!),
    jsonSchema: () => ({ anyOf: [a.jsonSchema(), b.jsonSchema()] }),
    merge(loc, defs, ctx) {
      if (defs.every((d) => a.check(d.value))) return a.merge(loc, defs, ctx);
      if (defs.every((d) => b.check(d.value))) return b.merge(loc, defs, ctx);
      return mergeUniqueOption(loc, defs);
    },
  });
}

function oneOf(ts: OptionType[]): OptionType {
  if (ts.length === 0) throw new Error('types.oneOf needs at least one type');
  return ts.slice(1).reduce((acc, t) => either(acc, t), ts[0]!);
}

function unique(opts: { message: string }, elem: OptionType): OptionType {
  const t = mkOptionType({
    name: 'unique',
    description: elem.description,
    descriptionClass: elem.descriptionClass,
    check: elem.check,
    nestedTypes: { elemType: elem },
    elemSegment: '',
    rebuild: (n) => unique(opts, n.elemType!),
    jsonSchema: () => elem.jsonSchema(),
    merge(loc, defs, ctx) {
      mergeUniqueOption(loc, defs, opts.message);
      return elem.merge(loc, defs, ctx);
    },
  });
  // The element type's, read when needed (a submodule's is an evaluation).
  Object.defineProperty(t, 'emptyValue', { enumerable: true, get: () => elem.emptyValue });
  t.emptyValueAt = (loc, ctx) => emptyValueOf(elem, loc, ctx);
  return t;
}

/** Enum types by their values: modules make the same enum in every run. */
const enumTypes = new Map<string, OptionType>();

function enumType(values: readonly (string | number | boolean | null)[]): OptionType {
  // JSON tells these values apart (not undefined from null, or NaN): others make a type each.
  if (!values.every((v) => v === null || typeof v === 'string' || typeof v === 'boolean' || Number.isFinite(v))) return makeEnumType(values);
  const key = JSON.stringify(values);
  let t = enumTypes.get(key);
  if (!t) enumTypes.set(key, (t = makeEnumType(values)));
  return t;
}

function makeEnumType(values: readonly (string | number | boolean | null)[]): OptionType {
  return mkOptionType({
    name: 'enum',
    description: values.length === 0 ? 'impossible (empty enum)' : values.length === 1 ? `value ${showEnumValue(values[0]!)} (singular enum)` : `one of ${values.map(showEnumValue).join(', ')}`,
    descriptionClass: values.length < 2 ? 'noun' : 'conjunction',
    check: (v) => values.includes(v as string),
    merge: mergeEqualOption,
    payload: values,
    jsonSchema: () => ({ enum: [...values] }),
    // Two declarations of an enum option accept the union of their values.
    typeMerge: (other) => (other.name === 'enum' ? enumType([...new Set([...values, ...(other.payload as typeof values)])]) : null),
  });
}

/** An enum value in a description, as NixOS shows it (`null` is `<null>`). */
const showEnumValue = (v: string | number | boolean | null): string => (v === null ? '<null>' : typeof v === 'string' ? JSON.stringify(v) : String(v));

/** strMatching types by their pattern: modules make theirs in every run, and compiling a pattern is not free. */
const strMatchingTypes = new Map<string, OptionType>();

function strMatching(pattern: string): OptionType {
  let t = strMatchingTypes.get(pattern);
  if (t) return t;
  const re = new RegExp(`^(?:${pattern})$`, 'u');
  t = simple('strMatching', `string matching the pattern ${pattern}`, (v) => isStr(v) && re.test(v), { type: 'string', pattern: `^(?:${pattern})$` }, pattern);
  strMatchingTypes.set(pattern, t);
  return t;
}

/** C0 control characters and DEL: line breaks of every line-based format (systemd also ends lines at CR and NUL). */
const CONTROL = '\\x00-\\x1f\\x7f';

/**
 * A file of the user's repository that the build reads (an encrypted secret): absolute, or
 * relative to the file whose definition names it, as an import is (YAML has no path values).
 * The value is the absolute path on the building machine.
 */
const sourcePath: OptionType = mkOptionType({
  name: 'sourcePath',
  description: 'path (absolute, or relative to the file defining it)',
  descriptionClass: 'noun',
  check: (v) => isStr(v) && v !== '' && !new RegExp(`[${CONTROL}]`).test(v),
  merge(loc, defs) {
    const abs = defs.map((d) => {
      const v = d.value as string;
      if (isAbsolute(v)) return v;
      if (!isAbsolute(d.loc.file)) throw new OptionError(`The option \`${showOption(loc)}' is a relative path with no file to be relative to; give an absolute path:${showDefs([d])}`);
      return resolve(dirname(d.loc.file), v);
    });
    if (abs.some((a) => a !== abs[0])) {
      throw new OptionError(`The option \`${showOption(loc)}' has conflicting definition values:${showDefs(defs.map((d, i) => ({ ...d, value: abs[i] })))}`);
    }
    return abs[0];
  },
  jsonSchema: () => ({ type: 'string', minLength: 1 }),
});

/** A string type checked by a regular expression, under its own name (strMatching's check and schema). */
function pattern(name: string, description: string, re: string): OptionType {
  const full = new RegExp(`^(?:${re})$`, 'u');
  return simple(name, description, (v) => isStr(v) && full.test(v), { type: 'string', pattern: `^(?:${re})$` });
}

// Names that become file names, unit names or entries of line-based lists: checked where they are
// defined, so a bad one is refused with its option path and location, never written.
const singleLineStr = pattern('singleLineStr', 'single-line string (no control characters)', `[^${CONTROL}]*`);
const word = pattern('word', 'word (no whitespace or control characters)', `[^\\s${CONTROL}]+`);
const fileName = pattern('fileName', 'file name (one path component: no /, not . or .., no control characters)', `(?!\\.\\.?$)[^/${CONTROL}]+`);
const etcPath = pattern(
  'etcPath',
  'relative path below /etc (no empty, . or .. components, no control characters)',
  `(?!(?:.*/)?\\.\\.?(?:/|$))/*(?:[^/${CONTROL}]+/)*[^/${CONTROL}]+`,
);
// systemd's unit_name_is_valid: a prefix, an optional @instance, a type suffix; at most 255 bytes.
const UNIT_CHARS = 'A-Za-z0-9:_.\\\\-';
const UNIT_SUFFIX = 'service|socket|device|mount|automount|swap|target|path|timer|slice|scope';
const unitName = pattern('unitName', 'systemd unit name (e.g. sshd.service, getty@tty1.service)', `(?=.{1,255}$)[${UNIT_CHARS}]+(?:@[${UNIT_CHARS}]*)?\\.(?:${UNIT_SUFFIX})`);
const unitBaseName = pattern('unitBaseName', 'systemd unit name without its type suffix (e.g. sshd, getty@tty1)', `(?=.{1,240}$)[${UNIT_CHARS}]+(?:@[${UNIT_CHARS}]*)?`);
const accountName = pattern('accountName', 'user or group name', '[a-z_][a-z0-9_-]*\\$?');
const envName = pattern('envName', 'environment variable name', '[A-Za-z_][A-Za-z0-9_]*');
// The kernel's dev_valid_name: at most 15 bytes, not . or .., no /, : or whitespace; quotes and
// backslashes are refused too, since names reach nftables rules and networkd file names.
const interfaceName = pattern('interfaceName', 'network interface name (at most 15 characters; no whitespace, /, :, quotes or backslashes)', '(?!\\.\\.?$)[^\\s/:"\\\\\\x00-\\x1f\\x7f]{1,15}');

/**
 * An attribute set whose names are checked by `names` (a string type) as values are: a name that
 * fails is reported with the option path and where it was defined. Merges like attrsOf, with
 * which it merges to the checked form.
 */
function attrsNamed(names: OptionType, elem: OptionType, lazy = false): OptionType {
  const inner = attrsOfImpl(elem, lazy);
  const t = mkOptionType({
    name: inner.name,
    description: `${inner.description}, by ${names.description}`,
    check: inner.check,
    nestedTypes: { elemType: elem },
    elemSegment: '<name>',
    payload: names.name,
    jsonSchema: () => ({ ...inner.jsonSchema(), propertyNames: names.jsonSchema() }),
    typeMerge: (other) => {
      if (other.name !== inner.name) return null;
      const otherNames = namesOf.get(other);
      if (otherNames && otherNames.name !== names.name) return null;
      const e = elem.typeMerge(other.nestedTypes.elemType!);
      return e ? attrsNamed(names, e, lazy) : null;
    },
    merge(loc, defs, ctx) {
      for (const def of defs) {
        for (const k of Object.keys(def.value as object)) {
          if (!names.check(k)) throw new OptionError(nameError(loc, k, names, entryLocation(def.value as object, k) ?? keyLocation(def.loc, k), lazyEntry(def.value as object, k)));
        }
      }
      return inner.merge(loc, defs, ctx);
    },
  });
  namesOf.set(t, names);
  return t;
}

/** The name type of an attrsNamed type, for merging two declarations. */
const namesOf = new WeakMap<OptionType, OptionType>();

/** The type an attrsNamed type checks its names with (also through nullOr), if any. */
export function attrsNames(t: OptionType): OptionType | undefined {
  return namesOf.get(t) ?? (t.name === 'nullOr' && t.nestedTypes.elemType ? attrsNames(t.nestedTypes.elemType) : undefined);
}

/** The message for a refused attribute name: the option path, the name, and where it was defined. */
export function nameError(loc: readonly string[], name: string, names: OptionType | undefined, at: SourceLocation, value: unknown): string {
  return `The name ${JSON.stringify(name)} in option \`${showOption(loc)}' is not ${names ? `a ${names.description}` : 'valid'}. Definition values:${showDefs([{ loc: at, value }])}`;
}

export interface SubmoduleOptions {
  modules: ModuleInput[];
  /** Extra arguments for the submodule's module functions (besides name, config, options, lib, pkgs). */
  specialArgs?: Record<string, unknown>;
  /** Whether an attribute-set definition is only config (true for `submodule`), as in NixOS. */
  shorthandOnlyDefinesConfig?: boolean;
  description?: string;
}

/** The options a submodule type was made with, kept for merging two declarations' types. */
function submoduleOptionsOf(t: OptionType): SubmoduleOptions | undefined {
  const held = (t as Typed)[SUBMODULE];
  return held?.of === t ? held.opts : undefined;
}

function submoduleWith(opts: SubmoduleOptions): OptionType {
  return submoduleType({ ...opts, modules: relativeToCaller(opts.modules, submoduleWith) });
}

/** Options for each definition, merged as a nested evaluation; `name` is the attribute name. */
function submodule(modules: ModuleInput | ModuleInput[]): OptionType {
  return submoduleType({ modules: relativeToCaller(Array.isArray(modules) ? modules : [modules], submodule), shorthandOnlyDefinesConfig: true });
}

/**
 * Module files named relative (`./common.ts`) are relative to the file that made the type, as
 * `imports` are: the caller's position is read only when there is such a name.
 */
function relativeToCaller(modules: ModuleInput[], entry: Function): ModuleInput[] {
  if (!modules.some((m) => typeof m === 'string' && !isAbsolute(m))) return modules;
  const file = new CallSite(entry).location?.file;
  return file && isAbsolute(file) ? modules.map((m) => (typeof m === 'string' ? resolve(dirname(file), m) : m)) : modules;
}

/** What the submodule type needs of the module evaluator. */
export interface SubmoduleEvaluator {
  /** A submodule value: a nested evaluation of the type's modules plus each definition. */
  evalSubmodule(loc: string[], modules: ModuleInput[], defs: FinalDefinition[], specialArgs: Record<string, unknown>, shorthand: boolean): Record<string, unknown>;
  /** Declarations of a submodule type, for documentation and schemas. */
  submoduleDeclarations(modules: ModuleInput[], specialArgs: Record<string, unknown>): Declarations;
}

/**
 * Set by the evaluator when it loads. It is not imported here: it checks and merges with these
 * types, and a file importing the other would find one half loaded.
 */
let evaluator: SubmoduleEvaluator | undefined;

export function setSubmoduleEvaluator(e: SubmoduleEvaluator): void {
  evaluator = e;
}

function submoduleEvaluator(): SubmoduleEvaluator {
  if (!evaluator) throw new Error('internal: a submodule was evaluated before the module evaluator was loaded');
  return evaluator;
}

function submoduleType(opts: SubmoduleOptions): OptionType {
  // May be read from config (a reference until evaluation), as NixOS modules sometimes do.
  const shorthand = (): boolean => force(opts.shorthandOnlyDefinesConfig ?? false) === true;
  let docs: Declarations | undefined;
  const declarations = (): Declarations => (docs ??= submoduleEvaluator().submoduleDeclarations(opts.modules, opts.specialArgs ?? {}));
  const t = mkOptionType({
    name: 'submodule',
    description: opts.description ?? 'submodule',
    check: (v) => isPlainObject(v) || typeof v === 'function' || isModulePath(v),
    merge: (loc, defs, ctx) => submoduleEvaluator().evalSubmodule(loc, opts.modules, defs, { ...ctx.specialArgs, ...opts.specialArgs }, shorthand()),
    // Two declarations of a submodule option: one submodule with both sets of modules.
    typeMerge: (other) => {
      const o = submoduleOptionsOf(other);
      return o ? submoduleType({ ...opts, modules: [...opts.modules, ...o.modules], specialArgs: { ...opts.specialArgs, ...o.specialArgs } }) : null;
    },
    subOptions: declarations,
    jsonSchema: () => declarations().jsonSchema(),
  });
  // NixOS's emptyValue of a submodule is its modules evaluated without definitions: the defaults.
  Object.defineProperty(t, 'emptyValue', { enumerable: true, get: () => ({ value: submoduleEvaluator().evalSubmodule([], opts.modules, [], opts.specialArgs ?? {}, shorthand()) }) });
  t.emptyValueAt = (loc, ctx) => ({ value: submoduleEvaluator().evalSubmodule(loc, opts.modules, [], { ...ctx.specialArgs, ...opts.specialArgs }, shorthand()) });
  (t as Typed)[SUBMODULE] = { of: t, opts };
  return t;
}

/**
 * A submodule type with more modules (options declared below a submodule option by other
 * modules, as NixOS merges them), or undefined when `type` is not a submodule.
 */
export function extendSubmodule(type: OptionType, modules: ModuleInput[]): OptionType | undefined {
  const opts = submoduleOptionsOf(type);
  return opts && submoduleType({ ...opts, modules: [...opts.modules, ...modules] });
}

const anything: OptionType = mkOptionType({
  name: 'anything',
  description: 'anything',
  descriptionClass: 'noun',
  check: () => true,
  jsonSchema: () => ({}),
  merge(loc, defs, ctx) {
    const kind = (v: unknown): string => (v instanceof Package ? 'package' : isPlainObject(v) ? 'set' : Array.isArray(v) ? 'list' : v === null ? 'null' : typeof v);
    const kinds = new Set(defs.map((d) => kind(d.value)));
    if (kinds.size > 1) {
      throw new OptionError(`The option \`${showOption(loc)}' has conflicting option types:${defs.map((d) => `${showDefs([d], false)}: ${kind(d.value)}`).join('')}`);
    }
    const k = [...kinds][0];
    if (k === 'set') return attrsOfImpl(anything, false).merge(loc, defs, ctx);
    if (k === 'function') {
      return (...args: unknown[]) =>
        anything.merge([...loc, '<function body>'], defs.map((d) => ({ ...d, value: force((d.value as (...a: unknown[]) => unknown)(...args)) })), ctx);
    }
    if (k === 'package') return mergeUniqueOption(loc, defs);
    return mergeEqualOption(loc, defs);
  },
});

const packageType: OptionType = mkOptionType({
  name: 'package',
  description: 'package',
  descriptionClass: 'noun',
  check: (v) => v instanceof Package || (isStr(v) && /^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?$/.test(v)),
  merge: (loc, defs) => {
    const v = mergeUniqueOption(loc, defs);
    return v instanceof Package ? v : pkg(v as string);
  },
  jsonSchema: () => ({ type: 'string', pattern: '^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?$' }),
});

export const types = {
  bool: simple('bool', 'boolean', (v) => typeof v === 'boolean', { type: 'boolean' }),
  int: simple('int', 'signed integer', isInt, { type: 'integer' }),
  ints: {
    between: (lo: number, hi: number) => between(lo, hi),
    unsigned: clause(simple('unsignedInt', 'unsigned integer, meaning >=0', (v) => isInt(v) && v >= 0, { type: 'integer', minimum: 0 })),
    positive: clause(simple('positiveInt', 'positive integer, meaning >0', (v) => isInt(v) && v > 0, { type: 'integer', minimum: 1 })),
    u8: unsignedBits(8),
    u16: unsignedBits(16),
    u32: unsignedBits(32),
  },
  port: unsignedBits(16),
  float: simple('float', 'floating point number', (v) => typeof v === 'number' && Number.isFinite(v), { type: 'number' }),
  str: simple('str', 'string', isStr, { type: 'string' }),
  nonEmptyStr: simple('nonEmptyStr', 'non-empty string', (v) => isStr(v) && /\S/.test(v), { type: 'string', pattern: '\\S' }),
  strMatching,
  separatedString: (sep: string) => separatedString(sep),
  lines: separatedString('\n', 'lines'),
  commas: separatedString(',', 'commas'),
  // A path becomes a file name, a shell word or a list entry: no line breaks or other controls.
  path: pattern('path', 'absolute path', `/[^${CONTROL}]*`),
  sourcePath,
  singleLineStr,
  word,
  fileName,
  etcPath,
  unitName,
  unitBaseName,
  accountName,
  envName,
  interfaceName,
  enum: enumType,
  listOf: (elem: OptionType) => sameFor('listOf', elem, listOf),
  attrsOf: (elem: OptionType) => sameFor('attrsOf', elem, (e) => attrsOfImpl(e, false)),
  lazyAttrsOf: (elem: OptionType) => sameFor('lazyAttrsOf', elem, (e) => attrsOfImpl(e, true)),
  /** attrsOf whose attribute names must be of the string type `names` (a file name, a unit name, …). */
  attrsNamed: (names: OptionType, elem: OptionType) => attrsNamed(names, elem),
  nullOr: (elem: OptionType) => sameFor('nullOr', elem, nullOr),
  either,
  oneOf,
  uniq: (elem: OptionType) => unique({ message: '' }, elem),
  unique,
  /** Options for each definition, merged as a nested evaluation; `name` is the attribute name. */
  submodule,
  submoduleWith,
  package: packageType,
  anything,
  raw: mkOptionType({ name: 'raw', description: 'raw value', descriptionClass: 'noun', check: () => true, merge: (loc, defs) => mergeUniqueOption(loc, defs), jsonSchema: () => ({}) }),
};

export type Types = typeof types;
