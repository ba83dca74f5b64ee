/**
 * `lib.formats`: file formats for settings-style options, as nixpkgs' `pkgs.formats` (RFC 42).
 * Each format is a function of its options returning `{ type, generate }`: `type` is the option
 * type of the values the format can represent (so a `settings` option is
 * `mkOption({ type: fmt.type, default: {} })`), and `generate(name, value)` returns the file's text.
 *
 * Values that would not stay what they say in the file (a line break in a line-based format, a
 * key that would read as a section or a comment) are refused twice: by the type, where they are
 * defined (so the error names the option and its file:line), and again by `generate`, which may
 * be given values that never went through the type. `generate`'s errors start with `name` and
 * the path inside the value.
 */
import { Document, parse as parseYaml } from 'yaml';
import { CairnError } from '../errors.js';
import { isPlainObject, mergeEqualOption, OptionError, type FinalDefinition, type MergeContext } from './merge.js';
import { showDefs, showOption } from './show.js';
import { mkOption } from './options.js';
import { mkOptionType, types, type OptionType } from './types.js';

/** A format: the type of its values and the text of a file holding one. */
export interface Format {
  type: OptionType;
  /** The file's text; `name` (the option path or file name) starts error messages. */
  generate(name: string, value: unknown): string;
}

/** A scalar of the key-value formats. */
export type Atom = string | number | boolean | null;

/** Plain data, as the serialisers see a value after it was checked. */
type Data = null | boolean | number | string | Data[] | { [key: string]: Data };

/** A position inside a value: attribute names and list indices. */
type Path = readonly (string | number)[];

/** `name` and the path inside the value, as users write option paths (`a.b[2]."x y"`). */
function where(name: string, path: Path): string {
  let out = name;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += (out ? '.' : '') + (/^[A-Za-z_][A-Za-z0-9_'-]*$/.test(p) ? p : JSON.stringify(p));
  }
  return out || '<value>';
}

function refuse(name: string, path: Path, message: string): never {
  throw new OptionError(`${where(name, path)}: ${message}`);
}

/** What the first control character of `s` is, for a message; undefined when there is none. */
function controlIn(s: string, allowTab = false): string | undefined {
  for (const c of s) {
    const n = c.charCodeAt(0);
    if (!(n < 0x20 || n === 0x7f) || (allowTab && c === '\t')) continue;
    if (c === '\n') return 'a newline';
    if (c === '\r') return 'a carriage return';
    if (c === '\t') return 'a tab';
    return `a control character (U+${n.toString(16).padStart(4, '0').toUpperCase()})`;
  }
  return undefined;
}

/** The kind of a value, in messages. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (isPlainObject(v)) return 'an attribute set';
  if (typeof v === 'number') return Number.isFinite(v) ? 'a number' : String(v);
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'unknown'})`;
  return typeof v === 'undefined' ? 'undefined' : `a ${typeof v}`;
}

/**
 * `v` as plain data (getters of merged attribute sets read once), refusing what no format holds:
 * functions, class instances, undefined, cycles; nulls and non-finite numbers unless allowed.
 */
function toData(fmt: string, name: string, v: unknown, opts: { nulls: boolean; nonFinite: boolean }, path: (string | number)[] = [], seen = new Set<object>()): Data {
  if (v === null) {
    if (!opts.nulls) refuse(name, path, `the ${fmt} format has no null`);
    return null;
  }
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) && !opts.nonFinite) refuse(name, path, `the ${fmt} format cannot represent the number ${v}`);
    return v;
  }
  if (Array.isArray(v) || isPlainObject(v)) {
    if (seen.has(v)) refuse(name, path, 'the value contains itself');
    seen.add(v);
    let out: Data;
    if (Array.isArray(v)) out = v.map((x, i) => toData(fmt, name, x, opts, [...path, i], seen));
    else {
      const o: { [key: string]: Data } = {};
      for (const k of Object.keys(v)) {
        // Own data property even for `__proto__`: assignment would set the prototype instead.
        Object.defineProperty(o, k, { value: toData(fmt, name, v[k], opts, [...path, k], seen), enumerable: true, writable: true, configurable: true });
      }
      out = o;
    }
    seen.delete(v);
    return out;
  }
  return refuse(name, path, `a value of the ${fmt} format cannot be ${kindOf(v)}`);
}

const isTable = (v: Data): v is { [key: string]: Data } => isPlainObject(v);

// ---------------------------------------------------------------------------------------------
// Types

/** A string type checked by `problem` (the same check `generate` makes), under its own name. */
function checkedStr(name: string, description: string, problem: (s: string) => string | undefined): OptionType {
  return mkOptionType({
    name,
    description,
    descriptionClass: 'noun',
    check: (v) => typeof v === 'string' && problem(v) === undefined,
    merge: mergeEqualOption,
    jsonSchema: () => ({ type: 'string' }),
  });
}

/** One line: no control characters. */
const oneLine = (s: string): string | undefined => controlIn(s);

/**
 * A recursive value type (nixpkgs' `valueType`s): `atom`s, lists and attribute sets of values.
 * Sets merge per key and lists concatenate, as `attrsOf`/`listOf` would; every nested value is
 * checked as it is merged, so a bad one is reported at its definition; so are attribute names, by
 * `names` when given.
 */
function valueType(name: string, description: string, atom: OptionType, names?: OptionType): OptionType {
  let attrs: OptionType | undefined;
  let list: OptionType | undefined;
  const kind = (v: unknown): string => (isPlainObject(v) ? 'set' : Array.isArray(v) ? 'list' : 'atom');
  const self: OptionType = mkOptionType({
    name,
    description,
    descriptionClass: 'noun',
    check: (v) => isPlainObject(v) || Array.isArray(v) || atom.check(v),
    merge(loc: string[], defs: FinalDefinition[], ctx: MergeContext) {
      const kinds = new Set(defs.map((d) => kind(d.value)));
      if (kinds.size > 1) {
        throw new OptionError(`The option \`${showOption(loc)}' has conflicting definition types:${defs.map((d) => `${showDefs([d], false)}: ${kindOf(d.value)}`).join('')}`);
      }
      const k = [...kinds][0];
      if (k === 'set') return (attrs ??= names ? types.attrsNamed(names, self) : types.attrsOf(self)).merge(loc, defs, ctx);
      if (k === 'list') return (list ??= types.listOf(self)).merge(loc, defs, ctx);
      return atom.merge(loc, defs, ctx);
    },
    // Not recursive: a schema refers to no definitions of its own.
    jsonSchema: () => ({ anyOf: [atom.jsonSchema(), { type: 'object' }, { type: 'array' }] }),
  });
  return self;
}

/** bool, int, float or `str`, or null. */
const atomOf = (str: OptionType, nulls = true): OptionType => {
  const t = types.oneOf([types.bool, types.int, types.float, str]);
  return nulls ? types.nullOr(t) : t;
};

// ---------------------------------------------------------------------------------------------
// keyValue and ini

export interface KeyValueOptions {
  /** A list value becomes one line per entry, with the same key. */
  listsAsDuplicateKeys?: boolean;
  /** Alternative to listsAsDuplicateKeys: makes a list one value (e.g. joined with commas). */
  listToValue?: (list: Atom[]) => Atom;
  /** Between key and value (`=` by default; `" = "`, `": "`, `" "`). Keys may not contain it. */
  separator?: string;
  /** How a value is written (default: strings as they are, `true`/`false`, numbers in decimal). */
  mkValueString?: (v: Exclude<Atom, null>) => string;
  /** How a line is written from a key and a value (default: key, separator, value). */
  mkKeyValue?: (key: string, value: Exclude<Atom, null>) => string;
  /** Put before every line. */
  indent?: string;
}

export interface IniOptions extends KeyValueOptions {
  /** How a section header's name is written (default: as it is). */
  mkSectionName?: (name: string) => string;
}

/** The default value text: strings unquoted, as nixpkgs' `mkValueStringDefault`. */
function valueString(v: Exclude<Atom, null>): string {
  return typeof v === 'string' ? v : String(v);
}

/** Why `key` cannot be a key of a key-value line (undefined when it can). */
function keyProblem(key: string, separator: string): string | undefined {
  if (key === '') return 'a key cannot be empty';
  const c = controlIn(key);
  if (c) return `a key cannot contain ${c}`;
  if (/^\s|\s$/.test(key)) return 'a key cannot start or end with whitespace (readers trim it)';
  if (/^[#;]/.test(key)) return 'a key cannot start with # or ; (the line would be a comment)';
  if (/[[\]]/.test(key)) return 'a key cannot contain [ or ] (the line could read as a section header)';
  const sep = separator.trim();
  if (sep !== '' && key.includes(sep)) return `a key cannot contain the separator ${JSON.stringify(sep)}`;
  if (sep === '' && /\s/.test(key)) return 'a key cannot contain whitespace (the separator)';
  return undefined;
}

/** Why `s` cannot be an INI section name. */
function sectionProblem(s: string): string | undefined {
  if (s === '') return 'a section name cannot be empty';
  const c = controlIn(s);
  if (c) return `a section name cannot contain ${c}`;
  if (/[[\]]/.test(s)) return 'a section name cannot contain [ or ]';
  return undefined;
}

/** Checks `key`, with the message for generate. */
function checkKey(fmt: string, name: string, path: Path, key: string, separator: string): void {
  const p = keyProblem(key, separator);
  if (p) refuse(name, path, `${p} in the ${fmt} format`);
}

/** Options that cannot work together or would break lines: a mistake in the module, said at once. */
function checkKvOptions(fmt: string, opts: KeyValueOptions): void {
  if (opts.listsAsDuplicateKeys && opts.listToValue) throw new CairnError(`formats.${fmt}: listsAsDuplicateKeys and listToValue cannot both be set`);
  if (controlIn((opts.indent ?? '') + (opts.separator ?? '='), true)) throw new CairnError(`formats.${fmt}: the separator and indent must be one line`);
}

/** The type of one key-value pair's value for these options. */
function kvAtomType(fmt: string, opts: KeyValueOptions): OptionType {
  const str = checkedStr(`${fmt}String`, 'single-line string (no control characters)', oneLine);
  const single = atomOf(str);
  if (opts.listsAsDuplicateKeys || opts.listToValue) return types.either(single, types.listOf(single));
  return single;
}

/** The type of the key-value pairs of a section (or a whole keyValue file). */
function kvSectionType(fmt: string, opts: KeyValueOptions): OptionType {
  const sep = opts.separator ?? '=';
  const key = checkedStr(`${fmt}Key${JSON.stringify(sep)}`, `${fmt} key (one line, not empty, no [ ] or ${JSON.stringify(sep.trim() || 'whitespace')}, not starting with # or ;)`, (k) => keyProblem(k, sep));
  return types.attrsNamed(key, kvAtomType(fmt, opts));
}

/** The lines of key-value pairs (each ending in a newline), every value and line checked. */
function kvLines(fmt: string, name: string, path: Path, entries: Data, opts: KeyValueOptions): string {
  if (!isTable(entries)) refuse(name, path, `the ${fmt} format needs an attribute set of keys here, not ${kindOf(entries)}`);
  const sep = opts.separator ?? '=';
  const indent = opts.indent ?? '';
  let out = '';
  for (const [key, v] of Object.entries(entries)) {
    const at = [...path, key];
    checkKey(fmt, name, at, key, sep);
    let values: Data[];
    if (Array.isArray(v)) {
      if (opts.listToValue) {
        v.forEach((x, i) => atomOnly(fmt, name, [...at, i], x));
        values = [opts.listToValue(v as Atom[])];
      } else if (opts.listsAsDuplicateKeys) values = v;
      else refuse(name, at, `a value of the ${fmt} format cannot be a list (set listsAsDuplicateKeys or listToValue)`);
    } else values = [v];
    values.forEach((x, i) => {
      const xat = Array.isArray(v) && !opts.listToValue ? [...at, i] : at;
      atomOnly(fmt, name, xat, x);
      if (x === null) return;
      const text = opts.mkValueString ? opts.mkValueString(x as Exclude<Atom, null>) : valueString(x as Exclude<Atom, null>);
      const c = controlIn(String(text));
      if (c) refuse(name, xat, `a value of the ${fmt} format cannot contain ${c}`);
      const line = opts.mkKeyValue ? opts.mkKeyValue(key, x as Exclude<Atom, null>) : `${key}${sep}${text}`;
      // A custom mkKeyValue may use a tab as separator, never a line break.
      const lc = controlIn(String(line), true);
      if (lc) refuse(name, xat, `a line of the ${fmt} format cannot contain ${lc}`);
      out += `${indent}${line}\n`;
    });
  }
  return out;
}

/** Refuses a set or a list where a scalar must be. */
function atomOnly(fmt: string, name: string, path: Path, x: unknown): void {
  if (x !== null && (typeof x === 'object' || typeof x === 'undefined')) refuse(name, path, `a value of the ${fmt} format cannot be ${kindOf(x)}`);
}

/** Lines of `key=value` (nixpkgs' `formats.keyValue`); null values are left out. */
function keyValue(opts: KeyValueOptions = {}): Format {
  checkKvOptions('keyValue', opts);
  return {
    type: kvSectionType('keyValue', opts),
    generate: (name, value) => kvLines('keyValue', name, [], toData('keyValue', name, value, { nulls: true, nonFinite: false }), opts),
  };
}

/** `[section]` headers each followed by key-value lines, sections apart by a blank line (nixpkgs' `formats.ini`). */
function ini(opts: IniOptions = {}): Format {
  checkKvOptions('ini', opts);
  const section = checkedStr('iniSectionName', 'INI section name (one line, not empty, no [ or ])', sectionProblem);
  return {
    type: types.attrsNamed(section, kvSectionType('ini', opts)),
    generate(name, value) {
      const data = toData('ini', name, value, { nulls: true, nonFinite: false });
      if (!isTable(data)) refuse(name, [], `the ini format needs an attribute set of sections, not ${kindOf(data)}`);
      return Object.entries(data)
        .map(([s, entries]) => {
          const p = sectionProblem(s);
          if (p) refuse(name, [s], `${p} in the ini format`);
          const header = opts.mkSectionName ? opts.mkSectionName(s) : s;
          const c = controlIn(String(header));
          if (c) refuse(name, [s], `a section header of the ini format cannot contain ${c}`);
          return `[${header}]\n${kvLines('ini', name, [s], entries, opts)}`;
        })
        .join('\n');
    },
  };
}

/**
 * Keys before the first section, then sections (nixpkgs' `formats.iniWithGlobalSection`): the value
 * is `{ globalSection, sections }`.
 */
function iniWithGlobalSection(opts: IniOptions = {}): Format {
  const sections = ini(opts);
  const globalSection = kvSectionType('ini', opts);
  return {
    type: types.submodule({
      options: {
        globalSection: mkOption({ type: globalSection, default: {}, description: 'Keys before the first section.' }),
        sections: mkOption({ type: sections.type, default: {}, description: 'The sections, by name.' }),
      },
    }),
    generate(name, value) {
      const data = toData('ini', name, value, { nulls: true, nonFinite: false });
      if (!isTable(data)) refuse(name, [], `the ini format needs { globalSection, sections }, not ${kindOf(data)}`);
      for (const k of Object.keys(data)) if (k !== 'globalSection' && k !== 'sections') refuse(name, [k], 'the ini format with a global section has only globalSection and sections');
      const global = kvLines('ini', name, ['globalSection'], data.globalSection ?? {}, opts);
      return (global ? `${global}\n` : '') + sections.generate(where(name, ['sections']), data.sections ?? {});
    },
  };
}

// ---------------------------------------------------------------------------------------------
// systemd

/** A section name or key of a systemd file (`Service`, `ExecStart`, `X-Restart-Triggers`). */
const SYSTEMD_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * Why `s` cannot be one value of a systemd file: systemd ends a line at LF, CR or NUL, and a final
 * backslash continues it on the next. (Whitespace around a value is trimmed by systemd.)
 */
export function systemdValueProblem(s: string): string | undefined {
  const c = controlIn(s);
  if (c) return `a value of a systemd file cannot contain ${c}`;
  if (s.endsWith('\\')) return 'a value of a systemd file cannot end in a backslash (it would continue on the next line)';
  return undefined;
}

/**
 * The text of a systemd INI file (units, drop-ins, networkd and journald files) from its sections
 * in order: `Key=value` lines, a list repeating its key (an empty string entry is systemd's reset of
 * a list setting: `ExecStart=` then `ExecStart=/bin/x`), nulls and empty sections left out, sections
 * apart by a blank line, `header` (if any) a first comment line. This is `renderSystemdIni`'s
 * layout, so it can delegate here (its `extra` text appended after).
 */
export function systemdIniText(name: string, sections: Iterable<readonly [string, unknown, number?]>, header?: string): string {
  if (header !== undefined) {
    const c = controlIn(header);
    if (c) throw new OptionError(`${name || '<value>'}: the header comment of a systemd file cannot contain ${c}`);
  }
  const blocks: string[] = [];
  for (const [section, raw, index] of sections) {
    // A repeated section (the third element, its index) is shown as `Route[1]` in messages.
    const at: (string | number)[] = index === undefined ? [section] : [section, index];
    if (!SYSTEMD_NAME.test(section)) refuse(name, at, 'a systemd section name is letters, digits, - and _, starting with a letter');
    const entries = toData('systemd', name, raw, { nulls: true, nonFinite: false }, at);
    if (!isTable(entries)) refuse(name, at, `a systemd section is an attribute set of keys, not ${kindOf(entries)}`);
    let lines = '';
    for (const [key, v] of Object.entries(entries)) {
      if (!SYSTEMD_NAME.test(key)) refuse(name, [...at, key], 'a systemd key is letters, digits, - and _, starting with a letter');
      const list = Array.isArray(v);
      (list ? v : [v]).forEach((x, i) => {
        const xat = list ? [...at, key, i] : [...at, key];
        if (x === null) return;
        if (typeof x === 'object') refuse(name, xat, `a value of a systemd file cannot be ${kindOf(x)}`);
        const text = String(x);
        const p = systemdValueProblem(text);
        if (p) refuse(name, xat, p);
        lines += `${key}=${text}\n`;
      });
    }
    if (lines) blocks.push(`[${section}]\n${lines}`);
  }
  if (header === undefined) return blocks.join('\n');
  return `# ${header}\n${blocks.map((b) => `\n${b}`).join('')}`;
}

export interface SystemdIniOptions {
  /** A first comment line (`Generated by cairn from …`). */
  header?: string;
}

/**
 * systemd's INI files (systemd.syntax(7)): section → key → value, or a list for a repeated key; a
 * list of sets repeats the section (networkd's `[Route]`s). Values are written as they are: `%` is
 * a specifier in unit files (`%i`), as in NixOS.
 */
function systemdIni(opts: SystemdIniOptions = {}): Format {
  const name = checkedStr('systemdName', 'systemd section name or key (letters, digits, - and _, starting with a letter)', (s) => (SYSTEMD_NAME.test(s) ? undefined : 'bad name'));
  const str = checkedStr('systemdString', 'systemd value (one line, not ending in a backslash)', systemdValueProblem);
  const scalar = types.oneOf([types.bool, types.int, types.float, str]);
  const value = types.nullOr(types.either(scalar, types.listOf(scalar)));
  const section = types.attrsNamed(name, value);
  return {
    type: types.attrsNamed(name, types.either(section, types.listOf(section))),
    generate(file, v) {
      const data = toData('systemd', file, v, { nulls: true, nonFinite: false });
      if (!isTable(data)) refuse(file, [], `a systemd file is an attribute set of sections, not ${kindOf(data)}`);
      const sections: [string, Data, number?][] = Object.entries(data).flatMap(([s, x]): [string, Data, number?][] => (Array.isArray(x) ? x.map((one, i) => [s, one, i]) : [[s, x]]));
      return systemdIniText(file, sections, opts.header);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// JSON, YAML, TOML

/** JSON, two spaces indented; numbers must be finite (JSON has no NaN or infinity). */
function json(): Format {
  return {
    type: valueType('jsonValue', 'JSON value', atomOf(types.str)),
    generate: (name, value) => `${JSON.stringify(toData('JSON', name, value, { nulls: true, nonFinite: false }), null, 2)}\n`,
  };
}

/**
 * Whether a YAML reader could take plain `s` for something other than that string: YAML 1.2's
 * core schema and YAML 1.1's (`yes`, `off`, `0777`, `1_000`, still read by many programs) both
 * checked, so such strings are quoted whichever version the reader speaks.
 */
function yamlAmbiguous(s: string): boolean {
  for (const version of ['1.1', '1.2'] as const) {
    try {
      if (parseYaml(s, { version, logLevel: 'silent' }) !== s) return true;
    } catch {
      return true;
    }
  }
  return false;
}

/**
 * What the yaml package would not write safely itself: characters YAML does not allow as they are
 * (C0 and C1 controls but tab and LF, DEL, lone surrogates, U+FEFF, U+FFFE/F), CR, NEL and U+2028/9
 * (line breaks to YAML 1.1 readers), and a line that starts with whitespace in a multi-line string
 * (which a block scalar cannot always hold).
 */
const YAML_ESCAPE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]/u;
const needsEscapes = (s: string): boolean => YAML_ESCAPE.test(s) || (s.includes('\n') && /(?:^|\n)[ \t]/.test(s));

/** `s` as a YAML double-quoted scalar, every character outside printable text escaped. */
function yamlDoubleQuoted(s: string): string {
  const esc: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\0': '\\0', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
  return `"${s.replace(/[\\"\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]/gu, (c) => esc[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/**
 * Strings are written by this tag (the plain `!!str`, so no tag shows) when the package's own
 * writing could be misread: escaped, double-quoted. `test` never matches: it is used only to write.
 */
const escapedString = {
  tag: 'tag:yaml.org,2002:str',
  default: true,
  identify: (v: unknown) => typeof v === 'string' && (needsEscapes(v) || (!v.includes('\n') && yamlAmbiguous(v))),
  test: /(?!)/,
  resolve: (s: string) => s,
  stringify: (node: { value: unknown }) => yamlDoubleQuoted(String(node.value)),
};

/** YAML (block style); strings a reader could take for a boolean, number or null are quoted. */
function yaml(): Format {
  return {
    type: valueType('yamlValue', 'YAML value', atomOf(types.str)),
    generate(name, value) {
      const data = toData('YAML', name, value, { nulls: true, nonFinite: false });
      const doc = new Document(data, { aliasDuplicateObjects: false, customTags: (tags) => [escapedString, ...tags] });
      return doc.toString({ lineWidth: 0 });
    },
  };
}

const TOML_ESCAPES: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

/** A TOML basic string; a lone surrogate (no Unicode scalar value, so no UTF-8) is refused. */
function tomlString(name: string, path: Path, s: string): string {
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)) refuse(name, path, 'a TOML string cannot contain a lone surrogate');
  return `"${s.replace(/[\\"\x00-\x1f\x7f]/g, (c) => TOML_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

const tomlKey = (name: string, path: Path, k: string): string => (/^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(name, path, k));

/** An integer-valued number within 64 bits is a TOML integer; any other a float. */
function tomlNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  const s = String(n);
  if (Number.isInteger(n) && Math.abs(n) < 2 ** 63) return s;
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** A value on one line: arrays and inline tables. */
function tomlInline(name: string, path: (string | number)[], v: Data): string {
  if (typeof v === 'string') return tomlString(name, path, v);
  if (typeof v === 'number') return tomlNumber(v);
  if (typeof v === 'boolean') return String(v);
  if (v === null) return refuse(name, path, 'the TOML format has no null');
  if (Array.isArray(v)) return `[${v.map((x, i) => tomlInline(name, [...path, i], x)).join(', ')}]`;
  const entries = Object.entries(v).map(([k, x]) => `${tomlKey(name, path, k)} = ${tomlInline(name, [...path, k], x)}`);
  return entries.length ? `{ ${entries.join(', ')} }` : '{}';
}

const isArrayOfTables = (v: Data): v is { [key: string]: Data }[] => Array.isArray(v) && v.length > 0 && v.every(isTable);

/**
 * Appends a table's blocks to `out`: its own key/values under `header` (left out when the table has
 * only sub-tables), then its tables `[a.b]` and arrays of tables `[[a.b]]`, which must come after.
 */
function tomlTable(name: string, table: { [key: string]: Data }, path: string[], header: string | null, out: string[]): void {
  const pairs: string[] = [];
  const nested: [string, Data][] = [];
  for (const [k, v] of Object.entries(table)) {
    if (isTable(v) || isArrayOfTables(v)) nested.push([k, v]);
    else pairs.push(`${tomlKey(name, path, k)} = ${tomlInline(name, [...path, k], v)}`);
  }
  if (header === null) {
    if (pairs.length) out.push(pairs.map((p) => `${p}\n`).join(''));
  } else if (pairs.length || nested.length === 0 || header.startsWith('[[')) {
    out.push(`${header}\n${pairs.map((p) => `${p}\n`).join('')}`);
  }
  for (const [k, v] of nested) {
    const sub = [...path, k];
    const dotted = sub.map((p, i) => tomlKey(name, sub.slice(0, i), p)).join('.');
    if (isTable(v)) tomlTable(name, v, sub, `[${dotted}]`, out);
    else (v as { [key: string]: Data }[]).forEach((t) => tomlTable(name, t, sub, `[[${dotted}]]`, out));
  }
}

/** TOML 1.0: a table at the top; no null (TOML has none). Dates are not supported. */
function toml(): Format {
  return {
    type: types.attrsOf(valueType('tomlValue', 'TOML value', atomOf(types.str, false))),
    generate(name, value) {
      const data = toData('TOML', name, value, { nulls: false, nonFinite: true });
      if (!isTable(data)) refuse(name, [], `a TOML document is a table (an attribute set), not ${kindOf(data)}`);
      const out: string[] = [];
      tomlTable(name, data, [], null, out);
      return out.join('\n');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// nginx

/** Characters an unquoted nginx word may hold: not whitespace, `;`, braces, quotes, `#` or `\`. */
const NGINX_BARE = /^[A-Za-z0-9_\-./:@$~^*+=,!%?&|<>[\]()]+$/;

/**
 * `s` as one nginx word: bare when it can be, else double-quoted with `\` and `"` escaped (nginx
 * reads `\\` and `\"` back as themselves). Variables (`$host`) are still expanded, as nginx does
 * in quoted words too. Control characters are refused.
 */
function nginxWord(name: string, path: Path, s: string): string {
  const c = controlIn(s);
  if (c) refuse(name, path, `a value of the nginx format cannot contain ${c}`);
  return NGINX_BARE.test(s) ? s : `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

function nginxArg(name: string, path: Path, v: Data): string {
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return nginxWord(name, path, v);
  return refuse(name, path, `an argument of an nginx directive cannot be ${kindOf(v)}`);
}

/** The lines of a block's body at `depth`. */
function nginxBody(name: string, body: Data, path: (string | number)[], depth: number): string {
  if (!isTable(body)) refuse(name, path, `an nginx block is an attribute set of directives, not ${kindOf(body)}`);
  let out = '';
  for (const [k, v] of Object.entries(body)) {
    if (k === '') refuse(name, [...path, k], 'an nginx directive name cannot be empty');
    if (Array.isArray(v)) v.forEach((x, i) => (out += nginxDirective(name, k, x, [...path, k, i], depth, true)));
    else out += nginxDirective(name, k, v, [...path, k], depth, false);
  }
  return out;
}

/**
 * One directive: a scalar is its one argument, a set its block; inside a list (a repeated
 * directive), a list is its arguments, the last of which may be a set: its block.
 */
function nginxDirective(name: string, key: string, v: Data, path: (string | number)[], depth: number, inList: boolean): string {
  if (v === null) return '';
  const pad = '  '.repeat(depth);
  const head = nginxWord(name, path, key);
  let args: Data[];
  let block: Data | undefined;
  if (isTable(v)) [args, block] = [[], v];
  else if (Array.isArray(v)) {
    if (!inList) refuse(name, path, 'an nginx directive with arguments is a list inside the directive\'s list');
    const last = v[v.length - 1];
    [args, block] = last !== undefined && isTable(last) ? [v.slice(0, -1), last] : [v, undefined];
  } else [args, block] = [[v], undefined];
  const words = [head, ...args.map((a, i) => nginxArg(name, Array.isArray(v) ? [...path, i] : path, a))].join(' ');
  if (block === undefined) return `${pad}${words};\n`;
  return `${pad}${words} {\n${nginxBody(name, block, path, depth + 1)}${pad}}\n`;
}

/**
 * nginx configuration: `name value;` directives; an attribute set is a block (`events { … }`), a
 * list repeats its directive (`listen`), and inside that list a list is one directive's arguments,
 * ending in a set for a block with arguments (`location: [['/', { root: '/srv' }]]`). Booleans are
 * `on`/`off`; words are quoted by nginx's rules; nulls are left out.
 */
function nginx(): Format {
  const str = checkedStr('nginxString', 'single-line string (no control characters)', oneLine);
  const directive = checkedStr('nginxName', 'nginx directive name (one line, not empty)', (s) => (s === '' ? 'empty' : controlIn(s)));
  return {
    type: types.attrsNamed(directive, valueType('nginxValue', 'nginx directive value', atomOf(str), directive)),
    generate: (name, value) => nginxBody(name, toData('nginx', name, value, { nulls: true, nonFinite: false }), [], 0),
  };
}

// ---------------------------------------------------------------------------------------------
// postgresql.conf

/** A parameter name of postgresql.conf (`shared_buffers`, `pg_stat_statements.max`). */
const PG_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/**
 * A postgresql.conf value: booleans on/off, plain decimal numbers bare, other numbers and strings
 * single-quoted (`''` for a quote, and `\\` for a backslash, which postgres reads as an escape).
 */
function pgValue(name: string, path: Path, v: Data): string {
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v : refuse(name, path, `a value of postgresql.conf cannot be ${kindOf(v)}`);
  if (typeof v === 'number' && /^-?\d+(?:\.\d+)?$/.test(s)) return s;
  const c = controlIn(s);
  if (c) refuse(name, path, `a value of postgresql.conf cannot contain ${c}`);
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** postgresql.conf: `name = value` lines; nulls are left out. */
function postgresqlConf(): Format {
  const key = checkedStr('postgresqlName', 'postgresql.conf parameter name (letters, digits and _, one optional . for an extension\'s)', (s) => (PG_NAME.test(s) ? undefined : 'bad name'));
  const str = checkedStr('postgresqlString', 'single-line string (no control characters)', oneLine);
  return {
    type: types.attrsNamed(key, atomOf(str)),
    generate(name, value) {
      const data = toData('postgresql.conf', name, value, { nulls: true, nonFinite: false });
      if (!isTable(data)) refuse(name, [], `postgresql.conf settings are an attribute set, not ${kindOf(data)}`);
      let out = '';
      for (const [k, v] of Object.entries(data)) {
        if (!PG_NAME.test(k)) refuse(name, [k], 'a postgresql.conf parameter name is letters, digits and _ (one . for an extension\'s)');
        if (v === null) continue;
        out += `${k} = ${pgValue(name, [k], v)}\n`;
      }
      return out;
    },
  };
}

/** The formats, each a function of its options returning `{ type, generate }`. */
export const formats = { keyValue, ini, iniWithGlobalSection, systemdIni, json, yaml, toml, nginx, postgresqlConf };
export type Formats = typeof formats;
