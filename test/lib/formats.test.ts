/**
 * `lib.formats`: each format's text for a settings value, its refusals (by the type where a value
 * is defined, and by `generate`), and properties: whatever strings go in, a line-based file either
 * is refused or reads back as exactly the entries given; JSON, YAML and TOML parse back equal.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { lib, OptionError, SourcedModule, type OptionType } from '../../src/lib/index.js';
import { configOf, deep, errorOf } from './helpers.js';

const { formats, mkIf, mkOption } = lib;

/** A module defined in a named file, so messages show where each definition came from. */
const from = (file: string, value: unknown): SourcedModule => new SourcedModule(value, { file }, file);

/** `services.demo.settings` of `type`, defined once per extra argument (in a.ts, b.ts, …), fully read. */
function settings(type: OptionType, ...defs: unknown[]): unknown {
  const decl = { options: { services: { demo: { settings: mkOption({ type, default: {} }) } } } };
  return deep(configOf(decl, ...defs.map((d, i) => from(`${'abcdefgh'[i]}.ts`, { services: { demo: { settings: d } } }))).services.demo.settings);
}

/** The OptionError `fn` throws (fails when it throws nothing or something else). */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OptionError);
    return (err as Error).message;
  }
  throw new Error('not refused');
}

const NAME = 'services.demo.settings';

describe('lib.formats: a settings option in one line, its file in one call', () => {
  it('merges definitions from several modules, leaves out mkIf(false) entries, and generates the file', () => {
    const ini = formats.ini();
    const v = settings(ini.type, { main: { a: 1, b: mkIf(false, 'x') } }, { main: { c: 'three' }, other: { d: true } });
    expect(ini.generate(NAME, v)).toBe('[main]\na=1\nc=three\n\n[other]\nd=true\n');
    const json = formats.json();
    expect(JSON.parse(json.generate(NAME, settings(json.type, { list: [1], deep: { a: 'x' } }, { list: [2], deep: { b: null } })))).toEqual({ list: [1, 2], deep: { a: 'x', b: null } });
  });

  const typeRefusals: [string, () => OptionType, unknown, RegExp][] = [
    ['keyValue: a newline in a value', () => formats.keyValue().type, { Key: 'x\nEvil=1' }, /services\.demo\.settings\.Key' is not of type `null or boolean or signed integer or floating point number or single-line string/],
    ['keyValue: = in a key', () => formats.keyValue().type, { 'a=b': 'x' }, /name "a=b" in option `services\.demo\.settings' is not a keyValue key/],
    ['ini: a ] in a section name', () => formats.ini().type, { 'a]\n[b': { k: 1 } }, /name "a\]\\n\[b" in option `services\.demo\.settings' is not a INI section name/],
    ['ini: a key that would be a comment', () => formats.ini().type, { s: { '#k': 1 } }, /name "#k" in option `services\.demo\.settings\.s' is not a ini key/],
    ['ini: a list without listsAsDuplicateKeys', () => formats.ini().type, { s: { k: [1, 2] } }, /services\.demo\.settings\.s\.k' is not of type/],
    ['systemdIni: a trailing backslash', () => formats.systemdIni().type, { Service: { ExecStart: '/bin/x \\' } }, /services\.demo\.settings\.Service\.ExecStart' is not of type .*systemd value \(one line, not ending in a backslash\)/],
    ['systemdIni: a key with a space', () => formats.systemdIni().type, { Service: { 'User root': 'x' } }, /name "User root" in option `services\.demo\.settings\.Service'/],
    ['json: NaN', () => formats.json().type, { a: [1, Number.NaN] }, /services\.demo\.settings\.a\.\[definition 1-entry 2\]' is not of type `JSON value'/],
    ['toml: null', () => formats.toml().type, { a: { b: null } }, /services\.demo\.settings\.a\.b' is not of type `TOML value'/],
    ['nginx: a newline in a nested block', () => formats.nginx().type, { http: { server: [{ root: '/srv\n}' }] } }, /services\.demo\.settings\.http\.server\.\[definition 1-entry 1\]\.root' is not of type `nginx directive value'/],
    ['nginx: a newline in a nested directive name', () => formats.nginx().type, { http: { 'gzip on;\ninclude': '/etc/shadow' } }, /name "gzip on;\\ninclude" in option `services\.demo\.settings\.http' is not a nginx directive name/],
    ['postgresqlConf: a key with =', () => formats.postgresqlConf().type, { 'a = 1\nb': 'x' }, /is not a postgresql\.conf parameter name/],
    ['postgresqlConf: a carriage return', () => formats.postgresqlConf().type, { work_mem: "4MB'\rfsync = off" }, /services\.demo\.settings\.work_mem' is not of type/],
  ];
  for (const [what, type, value, message] of typeRefusals) {
    it(`the type refuses, at the definition: ${what}`, () => {
      const m = errorOf(() => settings(type(), value));
      expect(m).toMatch(message);
      expect(m).toContain('a.ts');
    });
  }

  it('conflicting kinds across modules are an error naming both definitions', () => {
    const m = errorOf(() => settings(formats.yaml().type, { a: [1] }, { a: { b: 1 } }));
    expect(m).toMatch(/services\.demo\.settings\.a' has conflicting definition types:\n- In `a\.ts': a list\n- In `b\.ts': an attribute set/);
  });

  it('lib.formats is what modules receive', () => {
    const c = configOf(({ lib: l }: { lib: typeof lib }) => ({ options: { out: mkOption({ type: lib.types.str, default: l.formats.keyValue({ separator: ' ' }).generate('out', { Port: 22 }) }) } }));
    expect(c.out).toBe('Port 22\n');
  });
});

describe('keyValue', () => {
  it('writes key=value lines in order, leaving out nulls', () => {
    expect(formats.keyValue().generate(NAME, { a: 1, b: 'two words', n: null, t: true, f: false, x: 1.5 })).toBe('a=1\nb=two words\nt=true\nf=false\nx=1.5\n');
  });
  it('refuses options that cannot work, when the format is made', () => {
    expect(() => formats.keyValue({ listsAsDuplicateKeys: true, listToValue: (l) => l.join(',') })).toThrow('formats.keyValue: listsAsDuplicateKeys and listToValue cannot both be set');
    expect(() => formats.ini({ separator: '\n' })).toThrow('formats.ini: the separator and indent must be one line');
  });
  it('options: separator, indent, listsAsDuplicateKeys, listToValue, mkValueString, mkKeyValue', () => {
    expect(formats.keyValue({ separator: ' = ', indent: '  ' }).generate(NAME, { a: 'b' })).toBe('  a = b\n');
    expect(formats.keyValue({ listsAsDuplicateKeys: true }).generate(NAME, { a: ['x', 'y'], b: 'z' })).toBe('a=x\na=y\nb=z\n');
    expect(formats.keyValue({ listToValue: (l) => l.join(',') }).generate(NAME, { a: ['x', 'y'] })).toBe('a=x,y\n');
    expect(formats.keyValue({ mkValueString: (v) => (v === true ? 'yes' : v === false ? 'no' : String(v)) }).generate(NAME, { a: true, b: false })).toBe('a=yes\nb=no\n');
    expect(formats.keyValue({ mkKeyValue: (k, v) => `${k}\t${String(v)}` }).generate(NAME, { a: 1 })).toBe('a\t1\n');
  });
  const refusals: [string, () => string, string][] = [
    ['a newline in a value', () => formats.keyValue().generate(NAME, { a: 'x\nb=y' }), `${NAME}.a: a value of the keyValue format cannot contain a newline`],
    ['a carriage return in a value', () => formats.keyValue().generate(NAME, { a: 'x\rb=y' }), `${NAME}.a: a value of the keyValue format cannot contain a carriage return`],
    ['a NUL in a list entry', () => formats.keyValue({ listsAsDuplicateKeys: true }).generate(NAME, { a: ['ok', 'x\0'] }), `${NAME}.a[1]: a value of the keyValue format cannot contain a control character (U+0000)`],
    ['the separator in a key', () => formats.keyValue().generate(NAME, { 'a=b': 1 }), `${NAME}."a=b": a key cannot contain the separator "=" in the keyValue format`],
    ['a newline in a key', () => formats.keyValue().generate(NAME, { 'a\nb': 1 }), `${NAME}."a\\nb": a key cannot contain a newline in the keyValue format`],
    ['a [ in a key', () => formats.keyValue().generate(NAME, { '[s]': 1 }), `${NAME}."[s]": a key cannot contain [ or ] (the line could read as a section header) in the keyValue format`],
    ['a comment key', () => formats.keyValue().generate(NAME, { ';k': 1 }), `${NAME}.";k": a key cannot start with # or ; (the line would be a comment) in the keyValue format`],
    ['an empty key', () => formats.keyValue().generate(NAME, { '': 1 }), `${NAME}."": a key cannot be empty in the keyValue format`],
    ['a list without list options', () => formats.keyValue().generate(NAME, { a: [1] }), `${NAME}.a: a value of the keyValue format cannot be a list (set listsAsDuplicateKeys or listToValue)`],
    ['a set as a value', () => formats.keyValue().generate(NAME, { a: { b: 1 } }), `${NAME}.a: a value of the keyValue format cannot be an attribute set`],
    ['an infinite number', () => formats.keyValue().generate(NAME, { a: Infinity }), `${NAME}.a: the keyValue format cannot represent the number Infinity`],
    ['a line break from mkValueString', () => formats.keyValue({ mkValueString: (v) => `${String(v)}\nevil=1` }).generate(NAME, { a: 1 }), `${NAME}.a: a value of the keyValue format cannot contain a newline`],
    ['a line break from mkKeyValue', () => formats.keyValue({ mkKeyValue: (k) => `${k}\nevil=1` }).generate(NAME, { a: 1 }), `${NAME}.a: a line of the keyValue format cannot contain a newline`],
    ['a function', () => formats.keyValue().generate(NAME, { a: () => 1 }), `${NAME}.a: a value of the keyValue format cannot be a function`],
  ];
  for (const [what, fn, message] of refusals) it(`refuses ${what}`, () => expect(refusal(fn)).toBe(message));
});

describe('ini', () => {
  it('writes sections apart by a blank line, empty ones too (as nixpkgs)', () => {
    expect(formats.ini().generate(NAME, { General: { a: 1, b: 'x y' }, 'with space': {}, Last: { c: null, d: false } })).toBe('[General]\na=1\nb=x y\n\n[with space]\n\n[Last]\nd=false\n');
    expect(formats.ini({ listsAsDuplicateKeys: true, separator: ' = ' }).generate(NAME, { s: { k: [1, 2] } })).toBe('[s]\nk = 1\nk = 2\n');
    expect(formats.ini({ mkSectionName: (s) => s.toUpperCase() }).generate(NAME, { s: {} })).toBe('[S]\n');
  });
  it('iniWithGlobalSection: keys before the first section', () => {
    const fmt = formats.iniWithGlobalSection();
    const v = settings(fmt.type, { globalSection: { top: 1 }, sections: { s: { k: 'v' } } }, { sections: { t: {} } });
    expect(fmt.generate(NAME, v)).toBe('top=1\n\n[s]\nk=v\n\n[t]\n');
    expect(fmt.generate(NAME, { sections: { s: { k: 1 } } })).toBe('[s]\nk=1\n');
    expect(refusal(() => fmt.generate(NAME, { globalSection: { 'a\n[b]': 1 } }))).toBe(`${NAME}.globalSection."a\\n[b]": a key cannot contain a newline in the ini format`);
    expect(refusal(() => fmt.generate(NAME, { sections: { s: { k: 'v\r' } } }))).toBe(`${NAME}.sections.s.k: a value of the ini format cannot contain a carriage return`);
    expect(errorOf(() => settings(fmt.type, { globalSection: { k: 'x\ny' } }))).toMatch(/services\.demo\.settings\.globalSection\.k' is not of type/);
  });
  const refusals: [string, () => string, string][] = [
    ['a ] in a section name', () => formats.ini().generate(NAME, { 'a]x': {} }), `${NAME}."a]x": a section name cannot contain [ or ] in the ini format`],
    ['a newline in a section name', () => formats.ini().generate(NAME, { 'a\n[b': {} }), `${NAME}."a\\n[b": a section name cannot contain a newline in the ini format`],
    ['a newline in a value', () => formats.ini().generate(NAME, { s: { k: 'v\n[evil]' } }), `${NAME}.s.k: a value of the ini format cannot contain a newline`],
    ['= in a key', () => formats.ini().generate(NAME, { s: { 'k=v': 1 } }), `${NAME}.s."k=v": a key cannot contain the separator "=" in the ini format`],
    ['a key with leading whitespace', () => formats.ini().generate(NAME, { s: { ' k': 1 } }), `${NAME}.s." k": a key cannot start or end with whitespace (readers trim it) in the ini format`],
    ['a section that is not a set', () => formats.ini().generate(NAME, { s: 1 }), `${NAME}.s: the ini format needs an attribute set of keys here, not a number`],
    ['a newline from mkSectionName', () => formats.ini({ mkSectionName: (s) => `${s}]\n[x` }).generate(NAME, { s: {} }), `${NAME}.s: a section header of the ini format cannot contain a newline`],
  ];
  for (const [what, fn, message] of refusals) it(`refuses ${what}`, () => expect(refusal(fn)).toBe(message));
});

describe('systemdIni', () => {
  it('writes Key=value, a list repeating its key, an empty entry resetting the list; nulls and empty sections left out', () => {
    const text = formats.systemdIni().generate(NAME, {
      Unit: { Description: 'A service', After: ['network.target', 'remote-fs.target'] },
      Service: { ExecStart: ['', '/usr/bin/x --flag'], Restart: 'always', RestartSec: 5, NoNewPrivileges: true, User: null },
      Install: {},
      Extra: { A: null, B: [] },
    });
    expect(text).toBe('[Unit]\nDescription=A service\nAfter=network.target\nAfter=remote-fs.target\n\n[Service]\nExecStart=\nExecStart=/usr/bin/x --flag\nRestart=always\nRestartSec=5\nNoNewPrivileges=true\n');
  });
  it('a list of sets repeats the section (networkd routes)', () => {
    const fmt = formats.systemdIni();
    const v = settings(fmt.type, { Match: { Name: 'eth0' }, Route: [{ Gateway: '192.0.2.1' }] }, { Route: [{ Destination: '10.0.0.0/8', Gateway: '192.0.2.2' }] });
    expect(fmt.generate(NAME, v)).toBe('[Match]\nName=eth0\n\n[Route]\nGateway=192.0.2.1\n\n[Route]\nDestination=10.0.0.0/8\nGateway=192.0.2.2\n');
  });
  it('with a header: a first comment line, renderSystemdIni\'s layout', () => {
    expect(formats.systemdIni({ header: 'Generated by cairn from services.demo.settings' }).generate(NAME, { Journal: { Storage: 'persistent' }, Empty: {} })).toBe(
      '# Generated by cairn from services.demo.settings\n\n[Journal]\nStorage=persistent\n',
    );
  });
  const refusals: [string, () => string, string][] = [
    ['a newline in a value', () => formats.systemdIni().generate(NAME, { Service: { User: 'nobody\nExecStartPre=/bin/evil' } }), `${NAME}.Service.User: a value of a systemd file cannot contain a newline`],
    ['a carriage return in a list entry', () => formats.systemdIni().generate(NAME, { Service: { ExecStart: ['/bin/a', '/bin/b\rUser=root'] } }), `${NAME}.Service.ExecStart[1]: a value of a systemd file cannot contain a carriage return`],
    ['a trailing backslash', () => formats.systemdIni().generate(NAME, { Unit: { Description: 'x\\' } }), `${NAME}.Unit.Description: a value of a systemd file cannot end in a backslash (it would continue on the next line)`],
    ['a bad key', () => formats.systemdIni().generate(NAME, { Unit: { 'A=B': 1 } }), `${NAME}.Unit."A=B": a systemd key is letters, digits, - and _, starting with a letter`],
    ['a bad section name', () => formats.systemdIni().generate(NAME, { 'Unit]\n[Service': {} }), `${NAME}."Unit]\\n[Service": a systemd section name is letters, digits, - and _, starting with a letter`],
    ['a newline in a repeated section', () => formats.systemdIni().generate(NAME, { Route: [{ Gateway: 'a' }, { Gateway: 'b\n[Network]' }] }), `${NAME}.Route[1].Gateway: a value of a systemd file cannot contain a newline`],
    ['a newline in the header', () => formats.systemdIni({ header: 'x\n[Service]' }).generate(NAME, {}), `${NAME}: the header comment of a systemd file cannot contain a newline`],
  ];
  for (const [what, fn, message] of refusals) it(`refuses ${what}`, () => expect(refusal(fn)).toBe(message));
});

describe('json', () => {
  it('is JSON.stringify with two spaces and a final newline', () => {
    expect(formats.json().generate(NAME, { a: [1, 'x'], b: null })).toBe('{\n  "a": [\n    1,\n    "x"\n  ],\n  "b": null\n}\n');
  });
  it('refuses non-finite numbers, undefined and objects that are not data', () => {
    expect(refusal(() => formats.json().generate(NAME, { a: { b: [0, Number.NaN] } }))).toBe(`${NAME}.a.b[1]: the JSON format cannot represent the number NaN`);
    expect(refusal(() => formats.json().generate(NAME, { a: -Infinity }))).toBe(`${NAME}.a: the JSON format cannot represent the number -Infinity`);
    expect(refusal(() => formats.json().generate(NAME, { a: undefined }))).toBe(`${NAME}.a: a value of the JSON format cannot be undefined`);
    expect(refusal(() => formats.json().generate(NAME, { a: new Date(0) }))).toBe(`${NAME}.a: a value of the JSON format cannot be an object (Date)`);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(refusal(() => formats.json().generate(NAME, loop))).toBe(`${NAME}.self: the value contains itself`);
  });
  it('keeps a "__proto__" key as a key', () => {
    expect(JSON.parse(formats.json().generate(NAME, JSON.parse('{"__proto__": {"x": 1}}')))).toEqual(JSON.parse('{"__proto__": {"x": 1}}'));
  });
  it('round-trips any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(JSON.parse(formats.json().generate(NAME, v))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
  });
});

/** Strings of the characters YAML writers get wrong: indicators, line breaks of YAML 1.1, controls, lone surrogates. */
const yamlString = fc.string({
  unit: fc.constantFrom('a', ' ', '\n', '\t', '\r', '\0', '\x7f', '\x85', '\x9f', ':', '#', '-', '"', "'", '\\', '{', '[', '&', '*', '!', '|', '>', '%', '@', 'y', 'e', 's', '0', '1', '.', '~', '\u2028', '\u2029', '\ufeff', '\uffff', '\ud800', 'é'),
});

/** Whether Python has `module` (a reference reader to check files with). */
const pythonHas = (module: string): boolean => spawnSync('python3', ['-c', `import ${module}`], { encoding: 'utf8' }).status === 0;

describe('yaml', () => {
  it('quotes strings a YAML 1.1 or 1.2 reader would take for something else (`n` is a 1.1 boolean)', () => {
    const text = formats.yaml().generate(NAME, { a: ['yes', 'off', '0777', '1e3', '0o17', 'null', '~', '', 'plain text'], yes: 1, n: null, multi: 'two\nlines' });
    expect(text).toBe('a:\n  - "yes"\n  - "off"\n  - "0777"\n  - "1e3"\n  - "0o17"\n  - "null"\n  - "~"\n  - ""\n  - plain text\n"yes": 1\n"n": null\nmulti: |-\n  two\n  lines\n');
    for (const version of ['1.1', '1.2'] as const) expect(parseYaml(text, { version })).toEqual({ a: ['yes', 'off', '0777', '1e3', '0o17', 'null', '~', '', 'plain text'], yes: 1, n: null, multi: 'two\nlines' });
  });
  it('round-trips any JSON value, read as YAML 1.1 and 1.2, strings of any characters included', () => {
    const anyString = fc.oneof(yamlString, fc.string({ unit: 'binary', maxLength: 8 }));
    const value = fc.jsonValue().chain((v) => fc.record({ v: fc.constant(v), s: fc.array(anyString, { maxLength: 6 }), k: fc.dictionary(anyString, anyString, { maxKeys: 4 }) }));
    fc.assert(
      fc.property(value, (v) => {
        const text = formats.yaml().generate(NAME, v);
        for (const version of ['1.1', '1.2'] as const) expect(parseYaml(text, { version })).toEqual(v);
      }),
      { numRuns: 300 },
    );
  });
  it.skipIf(!pythonHas('yaml'))('PyYAML (a YAML 1.1 reader) reads back strings of any characters (one run for many)', () => {
    const strings = fc.sample(yamlString.filter((x) => !/[\ud800-\udfff]/u.test(x)), { numRuns: 400, seed: 7 });
    const value = { list: strings, keys: Object.fromEntries(strings.slice(0, 50).map((x, i) => [x, i])) };
    const r = spawnSync('python3', ['-c', 'import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin.buffer.read().decode())))'], { input: formats.yaml().generate(NAME, value), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(value);
  });
  it('refuses non-finite numbers', () => {
    expect(refusal(() => formats.yaml().generate(NAME, { a: Number.NaN }))).toBe(`${NAME}.a: the YAML format cannot represent the number NaN`);
  });
});

const python = pythonHas('tomllib');

/** `text` parsed by Python's tomllib (a reference TOML 1.0 reader), as JSON; or its error. */
function pythonToml(text: string): unknown {
  const r = spawnSync('python3', ['-c', 'import sys, tomllib, json; print(json.dumps(tomllib.loads(sys.stdin.read())))'], { input: text, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tomllib refused:\n${text}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('toml', () => {
  const doc = {
    title: 'TOML "example"\n',
    n: 1,
    f: 1.5,
    big: 1e21,
    flags: [true, false],
    mixed: [1, 'a', { x: 1 }, [2]],
    empty: [],
    'key with space': 'v',
    owner: { name: 'Tom', 'dotted.key': { c: 1 } },
    servers: { alpha: { ip: '10.0.0.1' }, beta: { ip: '10.0.0.2', ports: [8000, 8001] } },
    products: [{ name: 'Hammer' }, { sku: 7, dims: { h: 2 }, parts: [{ id: 1 }] }],
    nothing: {},
  };
  it('writes key/values, then [tables] and [[arrays of tables]]', () => {
    expect(formats.toml().generate(NAME, doc)).toBe(
      [
        'title = "TOML \\"example\\"\\n"',
        'n = 1',
        'f = 1.5',
        'big = 1e+21',
        'flags = [true, false]',
        'mixed = [1, "a", { x = 1 }, [2]]',
        'empty = []',
        '"key with space" = "v"',
        '',
        '[owner]',
        'name = "Tom"',
        '',
        '[owner."dotted.key"]',
        'c = 1',
        '',
        '[servers.alpha]',
        'ip = "10.0.0.1"',
        '',
        '[servers.beta]',
        'ip = "10.0.0.2"',
        'ports = [8000, 8001]',
        '',
        '[[products]]',
        'name = "Hammer"',
        '',
        '[[products]]',
        'sku = 7',
        '',
        '[products.dims]',
        'h = 2',
        '',
        '[[products.parts]]',
        'id = 1',
        '',
        '[nothing]',
        '',
      ].join('\n'),
    );
  });
  it('refuses null, a document that is not a table, and lone surrogates', () => {
    expect(refusal(() => formats.toml().generate(NAME, { a: [1, null] }))).toBe(`${NAME}.a[1]: the TOML format has no null`);
    expect(refusal(() => formats.toml().generate(NAME, [1]))).toBe(`${NAME}: a TOML document is a table (an attribute set), not a list`);
    expect(refusal(() => formats.toml().generate(NAME, { a: 'x\ud800' }))).toBe(`${NAME}.a: a TOML string cannot contain a lone surrogate`);
  });
  it.skipIf(!python)('Python\'s tomllib reads back what was given', () => {
    expect(pythonToml(formats.toml().generate(NAME, doc))).toEqual(JSON.parse(JSON.stringify(doc)));
  });
  it.skipIf(!python)('strings and keys of any characters read back (one tomllib run for many)', () => {
    const key = fc.string({ unit: 'binary', maxLength: 10 }).filter((s) => !/[\ud800-\udfff]/.test(s));
    const docs = fc.sample(fc.dictionary(key, fc.oneof(key, fc.array(key, { maxLength: 3 }), fc.dictionary(key, key, { maxKeys: 3 })), { maxKeys: 5 }), { numRuns: 60, seed: 42 });
    const tables = Object.fromEntries(docs.map((d, i) => [`t${i}`, d]));
    expect(pythonToml(formats.toml().generate(NAME, tables))).toEqual(tables);
  });
});

/** An nginx.conf with every shape of directive, and words nginx needs quoted. */
const conf = {
  worker_processes: 'auto',
  events: { worker_connections: 64 },
  http: {
    server: [
      {
        listen: [8080, '[::]:8080'],
        server_name: 'example.org',
        location: [['/', { root: '/srv/www', try_files: [['$uri', '$uri/', '=404']] }], ['~', '\\.php$', { return: [[403]] }]],
        add_header: [['X-Note', 'a b; c "d" {e} #f', 'always']],
        gzip: true,
        sendfile: false,
        access_log: null,
      },
    ],
  },
};
describe('nginx', () => {
  const expected = [
    'worker_processes auto;',
    'events {',
    '  worker_connections 64;',
    '}',
    'http {',
    '  server {',
    '    listen 8080;',
    '    listen [::]:8080;',
    '    server_name example.org;',
    '    location / {',
    '      root /srv/www;',
    '      try_files $uri $uri/ =404;',
    '    }',
    '    location ~ "\\\\.php$" {',
    '      return 403;',
    '    }',
    '    add_header X-Note "a b; c \\"d\\" {e} #f" always;',
    '    gzip on;',
    '    sendfile off;',
    '  }',
    '}',
    '',
  ].join('\n');
  it('writes directives, blocks, repeated directives, arguments and blocks with arguments', () => {
    expect(formats.nginx().generate(NAME, conf)).toBe(expected);
  });
  const refusals: [string, () => string, string][] = [
    ['a newline in a value', () => formats.nginx().generate(NAME, { http: { root: '/srv;\n}' } }), `${NAME}.http.root: a value of the nginx format cannot contain a newline`],
    ['a tab in an argument', () => formats.nginx().generate(NAME, { a: [['x', 'y\tz']] }), `${NAME}.a[0][1]: a value of the nginx format cannot contain a tab`],
    ['a control character in a directive name', () => formats.nginx().generate(NAME, { 'a\rb': 1 }), `${NAME}."a\\rb": a value of the nginx format cannot contain a carriage return`],
    ['an argument list outside a directive list', () => formats.nginx().generate(NAME, { a: { b: 1 }, c: { d: [[['x']]] } }), `${NAME}.c.d[0][0]: an argument of an nginx directive cannot be a list`],
    ['an empty directive name', () => formats.nginx().generate(NAME, { '': 1 }), `${NAME}."": an nginx directive name cannot be empty`],
  ];
  for (const [what, fn, message] of refusals) it(`refuses ${what}`, () => expect(refusal(fn)).toBe(message));
});

describe('nginx, read by nginx itself', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-formats-nginx-'));
  let nginx = '';
  let bin = '';
  afterAll(() => {
    for (const d of [dir, bin]) if (d) rmSync(d, { recursive: true, force: true });
  });
  const run = (text: string) => {
    writeFileSync(join(dir, 'nginx.conf'), text);
    return spawnSync(nginx, ['-t', '-q', '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { encoding: 'utf8' });
  };
  it('nginx -t accepts the generated configuration, and reads a quoted word back exactly', { timeout: 300_000 }, async () => {
    const { storePrograms } = await import('../modules/store-programs.js');
    const tools = await storePrograms(['nginx'], ['usr/sbin/nginx']);
    nginx = tools.path('nginx');
    bin = tools.bin;
    const generate = (c: object) => formats.nginx().generate(NAME, { pid: join(dir, 'nginx.pid'), error_log: join(dir, 'error.log'), ...c });
    // nginx -t makes its temporary folders: here, not under /var/lib/nginx.
    const temp = Object.fromEntries(['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => [`${t}_temp_path`, join(dir, t)]));
    const ok = run(generate({ ...conf, http: { ...conf.http, access_log: 'off', ...temp } }));
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    // nginx names a file it cannot open in its message: the path is the word as nginx read it.
    const word = '/nonexistent/a b;c "d" \\e {f} #g $h\'i';
    const bad = run(formats.nginx().generate(NAME, { error_log: word, events: {} }));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`open() "${word}" failed`);
    // Any word without control characters reads back exactly, whichever characters nginx treats specially.
    const unit = fc.constantFrom('a', ' ', ';', '{', '}', '"', "'", '\\', '#', '$', '(', ')', '[', ']', '=', '~', '^', '*', 'é', 'n', 't', 'r');
    for (const w of fc.sample(fc.string({ unit, minLength: 1, maxLength: 10 }), { numRuns: 12, seed: 3 })) {
      const r = run(formats.nginx().generate(NAME, { error_log: `/nonexistent/${w}`, events: {} }));
      expect(r.stderr).toContain(`open() "/nonexistent/${w}" failed`);
    }
  });
});

describe('postgresqlConf', () => {
  it('writes name = value: booleans on/off, plain numbers bare, strings quoted with doubled quotes and backslashes', () => {
    expect(
      formats.postgresqlConf().generate(NAME, { shared_buffers: '128MB', max_connections: 100, log_min_duration_statement: -1, random_page_cost: 1.1, tiny: 1e-7, fsync: false, search_path: "\"$user\", public's", dir: 'C:\\tmp\\', unset: null, 'pg_stat_statements.max': 10000 }),
    ).toBe(
      "shared_buffers = '128MB'\nmax_connections = 100\nlog_min_duration_statement = -1\nrandom_page_cost = 1.1\ntiny = '1e-7'\nfsync = off\nsearch_path = '\"$user\", public''s'\ndir = 'C:\\\\tmp\\\\'\npg_stat_statements.max = 10000\n",
    );
  });
  const refusals: [string, () => string, string][] = [
    ['a newline in a value', () => formats.postgresqlConf().generate(NAME, { work_mem: "4MB'\nfsync = off" }), `${NAME}.work_mem: a value of postgresql.conf cannot contain a newline`],
    ['a bad name', () => formats.postgresqlConf().generate(NAME, { 'a = 1\nb': 1 }), `${NAME}."a = 1\\nb": a postgresql.conf parameter name is letters, digits and _ (one . for an extension's)`],
    ['a list', () => formats.postgresqlConf().generate(NAME, { a: ['x'] }), `${NAME}.a: a value of postgresql.conf cannot be a list`],
  ];
  for (const [what, fn, message] of refusals) it(`refuses ${what}`, () => expect(refusal(fn)).toBe(message));
});

/**
 * Whatever the strings, a line-based file is refused (an OptionError naming the setting) or reads
 * back, by the format's reader, as exactly the entries given: no entry more, none less.
 */
describe('properties: refused, or exactly the entries given', () => {
  const nasty = fc.string({ unit: fc.constantFrom('a', 'B', '0', '_', '-', ' ', '\t', '\n', '\r', '\0', '\x0b', '\x7f', '=', '[', ']', '#', ';', '\\', '"', "'", '.', 'é', '\u2028'), maxLength: 8 });
  const text = fc.oneof(nasty, fc.string({ unit: 'binary', maxLength: 12 }));
  const LINE_BREAK = /\r\n|\r|\n|\0/;

  /** What no line-based format can hold: a control character. */
  const badValue = (v: string): boolean => /[\x00-\x1f\x7f]/.test(v);
  /** What a key=value key cannot be. */
  const badKey = (k: string): boolean => k === '' || /[\x00-\x1f\x7f=[\]]/.test(k) || /^[\s#;]|\s$/.test(k);

  /** The file, or undefined when refused: then by an OptionError naming the setting, and only when `bad` holds. */
  const fileOrRefusal = (generate: () => string, bad: boolean): string | undefined => {
    try {
      return generate();
    } catch (err) {
      expect(err).toBeInstanceOf(OptionError);
      expect((err as Error).message.startsWith(`${NAME}.`)).toBe(true);
      expect(bad).toBe(true);
      return undefined;
    }
  };

  /** A key-value line as readers take it: the key up to the first separator, the value after it. */
  const readLine = (line: string, sep = '='): [string, string] => {
    const at = line.indexOf(sep);
    expect(at).toBeGreaterThan(0);
    return [line.slice(0, at), line.slice(at + sep.length)];
  };

  it('keyValue', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(text, text), { maxLength: 4 }), (pairs) => {
        const entries = Object.fromEntries(pairs);
        const out = fileOrRefusal(() => formats.keyValue().generate(NAME, entries), Object.keys(entries).some(badKey) || Object.values(entries).some(badValue));
        if (out === undefined) return;
        const lines = out.split(LINE_BREAK);
        expect(lines.pop()).toBe('');
        expect(lines.map((l) => readLine(l))).toEqual(Object.entries(entries));
        for (const [k] of lines.map((l) => readLine(l))) expect(k).not.toMatch(/^[#;[]/);
      }),
      { numRuns: 500 },
    );
  });

  it('ini', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(text, fc.array(fc.tuple(text, text), { maxLength: 3 })), { maxLength: 3 }), (sections) => {
        const value = Object.fromEntries(sections.map(([s, kv]) => [s, Object.fromEntries(kv)]));
        const bad = Object.entries(value).some(([name, kv]) => name === '' || /[\x00-\x1f\x7f[\]]/.test(name) || Object.entries(kv).some(([k, v]) => badKey(k) || badValue(v)));
        const out = fileOrRefusal(() => formats.ini().generate(NAME, value), bad);
        if (out === undefined) return;
        // An INI reader: a [header] starts a section, blank lines are skipped, others are key=value.
        // (A Map: a section named "__proto__" must read back as a section, not as a prototype.)
        const read = new Map<string, [string, string][]>();
        let current: [string, string][] | undefined;
        for (const line of out.split(LINE_BREAK).filter((l) => l !== '')) {
          const header = /^\[([^\]]*)\]$/.exec(line);
          if (header) read.set(header[1]!, (current = []));
          else current!.push(readLine(line));
        }
        expect(Object.fromEntries(read)).toEqual(Object.fromEntries(Object.entries(value).map(([s, kv]) => [s, Object.entries(kv)])));
      }),
      { numRuns: 500, examples: [[[['__proto__', [['a', '1']]]]]] },
    );
  });

  it('systemdIni, read by systemd\'s rules (lines end at LF, CR or NUL; a final backslash continues; values trimmed)', () => {
    const value = fc.oneof(text, fc.array(text, { maxLength: 3 }));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('Unit', 'Service', 'X-Extra'), fc.array(fc.tuple(fc.oneof(text, fc.constantFrom('ExecStart', 'User')), value), { maxLength: 3 })), { maxLength: 3 }), (sections) => {
        const input = Object.fromEntries(sections.map(([s, kv]) => [s, Object.fromEntries(kv)]));
        const bad = Object.values(input).some((kv) => Object.entries(kv).some(([k, v]) => !/^[A-Za-z][A-Za-z0-9_-]*$/.test(k) || (Array.isArray(v) ? v : [v]).some((x) => badValue(x) || x.endsWith('\\'))));
        const out = fileOrRefusal(() => formats.systemdIni().generate(NAME, input), bad);
        if (out === undefined) return;
        const read: [string, string, string][] = [];
        let section = '';
        const raw = out.split(LINE_BREAK);
        for (let i = 0; i < raw.length; i++) {
          let line = raw[i]!;
          while (line.endsWith('\\') && i + 1 < raw.length) line = line.slice(0, -1) + raw[++i];
          line = line.trim();
          if (line === '' || /^[#;]/.test(line)) continue;
          const header = /^\[(.*)\]$/.exec(line);
          if (header) section = header[1]!;
          else {
            const at = line.indexOf('=');
            read.push([section, line.slice(0, at).trim(), line.slice(at + 1).trim()]);
          }
        }
        const expected = Object.entries(input).flatMap(([s, kv]) => Object.entries(kv).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => [s, k, x.trim()] as [string, string, string])));
        expect(read).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});
