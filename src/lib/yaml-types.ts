import { CairnError } from '../errors.js';
import { formatLocation, type SourceLocation } from './location.js';
import { isPlainObject } from './merge.js';
import { Option, type OptionDeclaration } from './options.js';
import { types, type OptionType } from './types.js';

/**
 * Option declarations in YAML modules: `!mkOption { type, default, example, description,
 * readOnly, internal }`. A type is written as text or as a mapping:
 *
 *   type: str                          bool int float str path lines commas port package anything raw,
 *                                      singleLineStr word fileName etcPath unitName unitBaseName accountName envName
 *   type: listOf str                   listOf attrsOf lazyAttrsOf nullOr uniq wrap what follows
 *   type: attrsOf (listOf port)        parentheses group
 *   type: ints.between 1 10            also ints.unsigned ints.positive ints.u8 ints.u16 ints.u32
 *   type: { enum: [a, b] }             also { strMatching: "re" }, { either: [T, T] }, { oneOf: [T…] },
 *   type: { attrsOf: { submodule: { options: { … } } } }   { listOf: T }, { nullOr: T }, …
 */
export function yamlOption(spec: unknown, loc: SourceLocation): Option {
  if (!isPlainObject(spec)) throw new CairnError(`${formatLocation(loc)}: \`!mkOption' takes a mapping: { type, default, description, … }`);
  const allowed = new Set(['type', 'default', 'defaultText', 'example', 'description', 'readOnly', 'internal', 'visible']);
  const extra = Object.keys(spec).filter((k) => !allowed.has(k));
  if (extra.length) throw new CairnError(`${formatLocation(loc)}: \`!mkOption' has no field \`${extra[0]}'; it takes ${[...allowed].join(', ')}`);
  const decl: OptionDeclaration = {};
  for (const k of Object.keys(spec)) if (k !== 'type') (decl as Record<string, unknown>)[k] = spec[k];
  if (spec.type !== undefined) decl.type = parseType(spec.type, loc);
  return new Option(decl, loc);
}

// Built on first use: this file is imported while types.ts may still be initialising (module cycle).
let simpleMemo: Record<string, OptionType> | undefined;
const simpleTypes = (): Record<string, OptionType> => (simpleMemo ??= {
  bool: types.bool,
  int: types.int,
  float: types.float,
  str: types.str,
  nonEmptyStr: types.nonEmptyStr,
  path: types.path,
  singleLineStr: types.singleLineStr,
  word: types.word,
  fileName: types.fileName,
  etcPath: types.etcPath,
  unitName: types.unitName,
  unitBaseName: types.unitBaseName,
  accountName: types.accountName,
  envName: types.envName,
  lines: types.lines,
  commas: types.commas,
  port: types.port,
  package: types.package,
  anything: types.anything,
  raw: types.raw,
  'ints.unsigned': types.ints.unsigned,
  'ints.positive': types.ints.positive,
  'ints.u8': types.ints.u8,
  'ints.u16': types.ints.u16,
  'ints.u32': types.ints.u32,
});

let wrappersMemo: Record<string, (t: OptionType) => OptionType> | undefined;
const wrapperTypes = (): Record<string, (t: OptionType) => OptionType> => (wrappersMemo ??= {
  listOf: types.listOf,
  attrsOf: types.attrsOf,
  lazyAttrsOf: types.lazyAttrsOf,
  nullOr: types.nullOr,
  uniq: types.uniq,
});

export function parseType(spec: unknown, loc: SourceLocation): OptionType {
  const simple = simpleTypes();
  const wrappers = wrapperTypes();
  const fail = (why: string): never => {
    throw new CairnError(`${formatLocation(loc)}: cannot read the option type ${JSON.stringify(spec)}: ${why}`);
  };
  if (typeof spec === 'string') {
    const tokens = spec.match(/\(|\)|[^\s()]+/g) ?? [];
    let i = 0;
    const expr = (): OptionType => {
      const t = tokens[i++];
      if (t === undefined) return fail('it ends too early');
      if (t === '(') {
        const inner = expr();
        if (tokens[i++] !== ')') fail('a parenthesis is not closed');
        return inner;
      }
      if (t in simple) return simple[t]!;
      if (t in wrappers) return wrappers[t]!(expr());
      if (t === 'ints.between') {
        const lo = Number(tokens[i++]);
        const hi = Number(tokens[i++]);
        if (!Number.isInteger(lo) || !Number.isInteger(hi)) fail('ints.between takes two integers');
        return types.ints.between(lo, hi);
      }
      return fail(`unknown type \`${t}'; known: ${[...Object.keys(simple), ...Object.keys(wrappers), 'ints.between'].join(', ')}`);
    };
    const type = expr();
    if (i !== tokens.length) fail(`unexpected \`${tokens[i]}'`);
    return type;
  }
  if (isPlainObject(spec)) {
    const keys = Object.keys(spec);
    if (keys.length !== 1) fail('a type mapping has exactly one key');
    const k = keys[0]!;
    const arg = spec[k];
    if (k in wrappers) return wrappers[k]!(parseType(arg, loc));
    if (k === 'enum' && Array.isArray(arg)) return types.enum(arg as string[]);
    if (k === 'strMatching' && typeof arg === 'string') return types.strMatching(arg);
    if ((k === 'either' || k === 'oneOf') && Array.isArray(arg) && arg.length >= 1) return types.oneOf(arg.map((a) => parseType(a, loc)));
    if (k === 'ints.between' && Array.isArray(arg) && arg.length === 2) return types.ints.between(Number(arg[0]), Number(arg[1]));
    if (k === 'submodule' && isPlainObject(arg)) return types.submodule(arg);
    return fail(`unknown type mapping \`${k}'`);
  }
  return fail('write a type name such as `str` or `listOf str`, or a mapping such as `{ enum: [a, b] }`');
}
