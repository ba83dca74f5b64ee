import type { Declarations, OptionNode } from './modules.js';
import type { OptionType } from './types.js';

/** Built-in types whose values are plain numbers, strings or booleans, by name. */
const SCALARS: Record<string, string> = {
  bool: 'boolean',
  ...Object.fromEntries(['int', 'unsignedInt', 'positiveInt', 'intBetween', 'unsignedInt8', 'unsignedInt16', 'unsignedInt32', 'float'].map((n) => [n, 'number'])),
  ...Object.fromEntries(
    ['str', 'nonEmptyStr', 'strMatching', 'separatedString', 'lines', 'commas', 'path', 'singleLineStr', 'word', 'fileName', 'etcPath', 'unitName', 'unitBaseName', 'accountName', 'envName'].map(
      (n) => [n, 'string'],
    ),
  ),
  // A `package` option's value is a Package whatever its definition was (a name or a Package).
  package: 'Package',
};

/**
 * Submodules nested deeper than this are typed `unknown`: a type made anew inside itself would
 * never end (one that contains itself is caught sooner, as a repeat).
 */
const MAX_DEPTH = 8;

export interface TypeDeclarationOptions {
  /** The module specifier of cairn's library declarations (`Lib`, `Package`), or none: then standalone stand-ins. */
  libModule?: string;
  /** What the declarations were made from, for the header comment. */
  source: string;
  /** What writes them, for the header comment (`cairn types` unless told). */
  writer?: string;
}

/**
 * TypeScript declarations of the option tree: `Config` (what modules read as `config`), with each
 * option's description as its JSDoc, and `ModuleArgs` (what a module function receives).
 */
export function typeDeclarations(decls: Declarations, opts: TypeDeclarationOptions): string {
  const header = [
    `// The options of ${opts.source}, written by ${opts.writer ?? '`cairn types`'}: regenerate after changing option declarations.`,
    opts.libModule
      ? `import type { Lib, Package } from ${JSON.stringify(opts.libModule)};`
      : "// cairn's library declarations were not found (`npm run build` writes them): `lib` is untyped.\n// eslint-disable-next-line @typescript-eslint/no-explicit-any\ntype Lib = any;\ninterface Package {\n  readonly name: string;\n}",
    '',
  ];
  return [
    ...header,
    '/** The evaluated configuration: what modules read as `config`. */',
    `export interface Config ${objectType(decls, [])}`,
    '',
    '/**',
    ' * What a module function receives. A submodule\'s function reads its own entry as `config`:',
    " * `ModuleArgs<Config['users']['users'][string]>`.",
    ' */',
    'export interface ModuleArgs<C = Config> {',
    '  config: C;',
    '  options: Record<string, unknown>;',
    '  lib: Lib;',
    '  pkgs: Record<string, Package>;',
    '  /** In a submodule: the attribute name (`alice` in users.users.alice). */',
    '  name: string;',
    '  [extra: string]: unknown;',
    '}',
    '',
  ].join('\n');
}

/** The object type of a set of declarations (the system's, or a submodule's). */
function objectType(decls: Declarations, outer: readonly Declarations[]): string {
  const within = [...outer, decls];
  const freeform = decls.freeformType && freeformEntryType(decls.freeformType, within);
  return decls.fold<{ ts: Union; doc?: string } | undefined>({
    // Removed options are left out: reading one is an error, so it is a type error too.
    option: (node) => (node.option.special.removed ? undefined : { ts: tsType(node.type, within), doc: docOf(node) }),
    namespace: (children, top) => {
      const present = children.filter((c): c is [string, { ts: Union; doc?: string }] => c[1] !== undefined);
      const lines = present.map(([name, c]) => `${c.doc ? `${c.doc}\n` : ''}${propertyName(name)}: ${show(c.ts)};`);
      // An undeclared key holds the freeform type; the index signature also admits every declared type, as TypeScript requires.
      if (top && freeform) lines.push(`[name: string]: ${show(union([freeform, ...present.map(([, c]) => c.ts)]))};`);
      return { ts: [lines.length === 0 ? '{}' : `{\n${indent(lines.join('\n'))}\n}`] };
    },
  })!.ts[0]!;
}

/** A union type, as its members (an object type or a generic is one member). */
type Union = string[];

function tsType(t: OptionType, within: readonly Declarations[]): Union {
  const scalar = SCALARS[t.name];
  if (scalar) return [scalar];
  const elem = t.nestedTypes.elemType;
  switch (t.name) {
    case 'enum': {
      const values = t.payload as readonly unknown[];
      return values.length === 0 ? ['never'] : union(values.map((v) => [JSON.stringify(v)]));
    }
    case 'listOf':
      return elem ? [`${parenthesized(tsType(elem, within))}[]`] : ['unknown[]'];
    case 'attrsOf':
    case 'lazyAttrsOf':
      return elem ? [`Record<string, ${show(tsType(elem, within))}>`] : ['Record<string, unknown>'];
    case 'nullOr':
      return elem ? union([tsType(elem, within), ['null']]) : ['unknown'];
    case 'unique':
      return elem ? tsType(elem, within) : ['unknown'];
    case 'either': {
      const { left, right } = t.nestedTypes;
      return left && right ? union([tsType(left, within), tsType(right, within)]) : ['unknown'];
    }
    case 'submodule': {
      // The options of a submodule are the same for every name (`name` is `<name>` here).
      const sub = t.getSubOptions()?.declarations;
      return sub && !within.includes(sub) && within.length <= MAX_DEPTH ? [objectType(sub, within)] : ['unknown'];
    }
    default:
      // anything, raw: no claim on their values. A type of a module's own making (mkOptionType)
      // whose JSON Schema admits only strings, numbers or booleans holds one (types here do not
      // coerce a definition into another kind of value; `package` does, and is typed above).
      return schemaScalar(t) ?? ['unknown'];
  }
}

const SCHEMA_SCALARS: Record<string, string> = { string: 'string', integer: 'number', number: 'number', boolean: 'boolean' };

/** The TypeScript type of a type whose JSON Schema is one scalar type (`interfaceName`: a string), or none. */
function schemaScalar(t: OptionType): Union | undefined {
  const schema = t.jsonSchema();
  const kind = typeof schema.type === 'string' ? SCHEMA_SCALARS[schema.type] : undefined;
  return kind ? [kind] : undefined;
}

/** What one undeclared key of a freeform set holds (see freeformEntrySchema). */
function freeformEntryType(type: OptionType, within: readonly Declarations[]): Union {
  const elem = type.name === 'attrsOf' || type.name === 'lazyAttrsOf' ? type.nestedTypes.elemType : undefined;
  return elem ? tsType(elem, within) : ['unknown'];
}

/** A union of unions, each member once; `unknown` absorbs the rest. */
function union(unions: Union[]): Union {
  const members = new Set(unions.flat());
  if (members.has('unknown')) return ['unknown'];
  // A literal beside its whole type (an enum's names in a freeform set of strings) adds nothing.
  const subsumed = (m: string): boolean => (m.startsWith('"') && members.has('string')) || (/^-?\d/.test(m) && members.has('number')) || ((m === 'true' || m === 'false') && members.has('boolean'));
  return [...members].filter((m) => !subsumed(m));
}

const show = (u: Union): string => u.join(' | ');
const parenthesized = (u: Union): string => (u.length > 1 ? `(${show(u)})` : show(u));

const propertyName = (name: string): string => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name));

const indent = (text: string): string => text.replace(/^(?=.)/gm, '  ');

/** An option's description as a JSDoc comment (which its text cannot end early). */
function docOf(node: OptionNode): string | undefined {
  const text = node.decl.description?.trim();
  if (!text) return undefined;
  const lines = text.replace(/\*\//g, '*\\/').split('\n');
  return lines.length === 1 ? `/** ${lines[0]} */` : ['/**', ...lines.map((l) => (l ? ` * ${l}` : ' *')), ' */'].join('\n');
}
