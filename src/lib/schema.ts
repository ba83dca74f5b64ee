import type { ErrorObject, Options, ValidateFunction } from 'ajv';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import { cacheDir, packageVersion, sha256Hex, writeFileAtomic } from '../cache.js';
import { entryLocation, setEntryLocation, type SourceLocation } from './location.js';
import { isPlainObject, OptionError } from './merge.js';
import { NamespaceNode, OptionNode, type Declarations, type Evaluation } from './modules.js';
import { Merge, Order, Override } from './properties.js';
import { closest, showDefs, showOption } from './show.js';
import { attrsNames, nameError, type JsonSchema, type OptionType } from './types.js';

/**
 * The JSON Schema of a configuration file: the config of every declared option, plus the module
 * keys (`imports`, `config`, …). Editors use it (yaml-language-server) and YAML modules are
 * validated against it before evaluation.
 */
export function fileSchema(decls: Declarations): JsonSchema {
  const config = decls.jsonSchema();
  const properties = { ...(config.properties as Record<string, JsonSchema>) };
  properties.imports = { type: 'array', items: { type: 'string' }, description: 'Modules to include: paths relative to this file (YAML, TypeScript, JavaScript).' };
  properties.disabledModules = { type: 'array', items: { type: 'string' }, description: 'Modules to leave out: paths relative to this file, or to cairn\'s modules folder.' };
  properties.config = { $ref: '#/$defs/config', description: 'Option definitions (when the module also has `options`).' };
  properties.meta = { type: 'object', description: 'Free-form information about the module.' };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'cairn configuration',
    type: 'object',
    properties,
    additionalProperties: config.additionalProperties,
    $defs: { config },
  };
}

/** Property wrappers from YAML tags are left out: the schema checks the values they wrap. */
function unwrap(v: unknown): unknown {
  while (v instanceof Override || v instanceof Order) v = v.content;
  if (v instanceof Merge) return v.contents.map(unwrap).reduce((acc: Record<string, unknown>, c) => mergeForCheck(acc, c), {});
  if (Array.isArray(v)) {
    const out = v.map(unwrap);
    v.forEach((_, i) => copyLoc(v, out, String(i)));
    return out;
  }
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      out[k] = unwrap(v[k]);
      copyLoc(v, out, k);
    }
    return out;
  }
  return v;
}

function mergeForCheck(acc: Record<string, unknown>, c: unknown): Record<string, unknown> {
  if (!isPlainObject(c)) return acc;
  for (const k of Object.keys(c)) {
    acc[k] = c[k];
    copyLoc(c, acc, k);
  }
  return acc;
}

function copyLoc(from: object, to: object, key: string): void {
  const loc = entryLocation(from, key);
  if (loc) setEntryLocation(to, key, loc);
}

const AJV_OPTIONS: Options = { allErrors: true, strict: false };
/** Validators by the hash of their (pruned) schema: compiling costs far more than hashing. */
const compiled = new Map<string, ValidateFunction>();

/** Validates every YAML module's config against the schema; the first problems become one error. */
export async function validateYamlModules(ev: Evaluation): Promise<void> {
  const yaml = ev.modules.filter((m) => m.yaml && m.config !== undefined && m.config !== null);
  if (yaml.length === 0) return;
  const problems: string[] = [];
  for (const m of yaml) {
    const data = unwrap(m.config);
    const pruned = ev.decls.jsonSchemaFor(data);
    const key = sha256Hex(JSON.stringify([packageVersion('ajv'), AJV_OPTIONS, pruned])).slice(0, 32);
    const passed = passedMark(key, data);
    if (passed && existsSync(passed)) continue;
    const validate = await validator(key, pruned);
    if (validate(data)) {
      if (passed) writeCacheFile(passed, '');
      continue;
    }
    problems.push(...describeErrors(ev.decls, data, validate.errors ?? [], m.configLoc));
  }
  if (problems.length) {
    const shown = problems.slice(0, 5);
    if (problems.length > 5) shown.push(`(and ${problems.length - 5} more)`);
    throw new OptionError(shown.join('\n\n'));
  }
}

/**
 * The file that marks this data as valid for the schema of `key`: the result is a function of
 * the two, and loading and running the validator costs more than the rest of the check. Data
 * that structured cloning cannot write (a function) gets no mark.
 */
function passedMark(key: string, data: unknown): string | undefined {
  try {
    return join(cacheDir('validators'), `${key}-${sha256Hex(serialize(data)).slice(0, 32)}.valid`);
  } catch {
    return undefined;
  }
}

async function validator(key: string, schema: JsonSchema): Promise<ValidateFunction> {
  let validate = compiled.get(key);
  if (!validate) {
    validate = await cachedValidator(key, schema);
    if (compiled.size >= 64) compiled.clear();
    compiled.set(key, validate);
  }
  return validate;
}

/** Resolves the `require`s of validator code (ajv's runtime helpers) among cairn's dependencies. */
const requireHere = createRequire(import.meta.url);

/**
 * A validator from ajv's standalone code cached on disk, compiled and cached on a miss: compiling
 * the schema of a configuration takes longer than the rest of a rebuild that changes nothing.
 * Files are named by `key` (a hash of the schema, ajv's version and options); each starts with a
 * digest of its code, so a damaged file is compiled again instead of run.
 */
async function cachedValidator(key: string, schema: JsonSchema): Promise<ValidateFunction> {
  const file = join(cacheDir('validators'), `${key}.cjs`);
  const cached = loadValidatorCode(file);
  if (cached) return cached;
  // Loaded on demand: most of its cost is loading it, and a cache hit doesn't need it.
  const { compileSchema } = await import('./schema-compile.js');
  const { validate, code } = compileSchema(schema, AJV_OPTIONS);
  writeCacheFile(file, `// ${sha256Hex(code)}\n${code}`);
  return validate;
}

function writeCacheFile(file: string, text: string): void {
  try {
    writeFileAtomic(file, text);
  } catch {
    // An unwritable cache only costs the next run the work again.
  }
}

function loadValidatorCode(file: string): ValidateFunction | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const newline = text.indexOf('\n');
  const code = text.slice(newline + 1);
  if (newline < 0 || text.slice(0, newline) !== `// ${sha256Hex(code)}`) return undefined;
  try {
    const module = { exports: {} as unknown };
    new Function('module', 'exports', 'require', code)(module, module.exports, requireHere);
    return typeof module.exports === 'function' ? (module.exports as ValidateFunction) : undefined;
  } catch {
    return undefined;
  }
}

function describeErrors(decls: Declarations, data: unknown, errors: ErrorObject[], moduleLoc: SourceLocation): string[] {
  // anyOf reports a summary beside the failures of its branches; the type description covers both.
  const specific = errors.filter((e) => e.keyword !== 'anyOf' || errors.length === 1);
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of specific) {
    const segments = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const id = `+${[...segments, key].join('/')}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const { value } = locate(data, segments);
      const loc = (typeof value === 'object' && value !== null && entryLocation(value, key)) || moduleLoc;
      const at = describeAt(decls, [...segments, key]);
      const near = at.parent ? closest(key, at.parent.children.keys()) : undefined;
      out.push(
        `The option \`${showOption(at.path)}' does not exist. Definition values:${showDefs([{ loc, value: (value as Record<string, unknown>)?.[key] }])}` +
          (near ? `\nDid you mean \`${showOption([...at.path.slice(0, -1), near])}'?` : ''),
      );
      continue;
    }
    const propertyName = (e as { propertyName?: string }).propertyName ?? (e.keyword === 'propertyNames' ? (e.params as { propertyName?: string }).propertyName : undefined);
    if (propertyName !== undefined) {
      // A name refused by an attrsNamed type: reported as the type's merge reports it, at the name.
      const id = `@${[...segments, propertyName].join('/')}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const { value } = locate(data, segments);
      const loc = (typeof value === 'object' && value !== null && entryLocation(value, propertyName)) || moduleLoc;
      const at = describeAt(decls, segments);
      out.push(nameError(at.path, propertyName, (at.type && attrsNames(at.type)) ?? undefined, loc, (value as Record<string, unknown>)[propertyName]));
      continue;
    }
    const id = segments.join('/');
    if (seen.has(id)) continue;
    seen.add(id);
    const { container, value } = locate(data, segments);
    const last = segments[segments.length - 1];
    const loc = (container && last !== undefined && entryLocation(container, last)) || moduleLoc;
    const at = describeAt(decls, segments);
    const what = at.type ? `is not of type \`${at.type.description}'` : `is not valid (${e.message})`;
    out.push(`A definition for option \`${showOption(at.path)}' ${what}. Definition values:${showDefs([{ loc, value }], !at.type?.secret)}`);
  }
  return out;
}

/** The value at a path in the data, and the container holding it (for its position). */
function locate(data: unknown, segments: string[]): { container?: object; value: unknown } {
  let container: object | undefined;
  let value = data;
  for (const s of segments) {
    if (typeof value !== 'object' || value === null) return { container, value };
    container = value;
    value = (value as Record<string, unknown>)[s];
  }
  return { container, value };
}

/**
 * The option path (with list entries as `[n]`) and the type of the value at a data path; for a
 * name that is not declared, the set of options it was looked up in.
 */
function describeAt(decls: Declarations, segments: string[]): { path: string[]; type?: OptionType; parent?: NamespaceNode } {
  const path: string[] = [...decls.prefix];
  let ns: NamespaceNode = decls.root;
  let i = 0;
  while (i < segments.length) {
    const child = ns.children.get(segments[i]!);
    if (!child) return { path: [...path, ...segments.slice(i)], parent: ns };
    path.push(segments[i++]!);
    if (child instanceof NamespaceNode) {
      ns = child;
      continue;
    }
    let type: OptionType = (child as OptionNode).type;
    for (;;) {
      if (i >= segments.length) return { path, type };
      const elem = type.elemSegment === undefined ? undefined : type.nestedTypes.elemType;
      if (elem) {
        // An entry of a set by its name, of a list as `[n]`; nullOr's element is the value itself.
        if (type.elemSegment === '<name>') path.push(segments[i++]!);
        else if (type.elemSegment === '*') path.push(`[${segments[i++]}]`);
        type = elem;
        continue;
      }
      const sub = type.getSubOptions();
      if (!sub) return { path: [...path, ...segments.slice(i)], type };
      ns = sub.declarations.root;
      break;
    }
  }
  return { path };
}
