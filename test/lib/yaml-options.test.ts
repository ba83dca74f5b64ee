import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalModules } from '../../src/lib/index.js';
import { parseType } from '../../src/lib/yaml-types.js';
import { validateYamlModules } from '../../src/lib/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-yaml-options-'));
const write = (name: string, text: string): string => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};
const here = { file: 'x.yaml', line: 1, column: 1 };

describe('option types written in YAML', () => {
  it('reads names, wrappers, parentheses and mappings', () => {
    expect(parseType('str', here).description).toBe('string');
    expect(parseType('listOf str', here).description).toBe('list of string');
    expect(parseType('attrsOf (nullOr port)', here).description).toBe('attribute set of (null or 16 bit unsigned integer; between 0 and 65535 (both inclusive))');
    expect(parseType('ints.between 1 10', here).check(11)).toBe(false);
    expect(parseType({ enum: ['a', 'b'] }, here).description).toBe('one of "a", "b"');
    expect(parseType({ listOf: { strMatching: '[a-z]+' } }, here).check(['x'])).toBe(true);
    expect(parseType({ oneOf: ['int', 'str'] }, here).description).toBe('signed integer or string');
  });

  it('rejects what it cannot read, naming the position', () => {
    expect(() => parseType('listOf strr', here)).toThrow(/x\.yaml:1:1: cannot read the option type "listOf strr": unknown type `strr'/);
    expect(() => parseType('listOf (str', here)).toThrow(/parenthesis is not closed/);
    expect(() => parseType('str int', here)).toThrow(/unexpected `int'/);
    expect(() => parseType({ listOf: 'str', attrsOf: 'str' }, here)).toThrow(/exactly one key/);
  });
});

describe('!mkOption in YAML modules', () => {
  const decls = write(
    'decl.yaml',
    `options:
  site:
    title: !mkOption
      type: str
      default: Hello
      description: The page title.
    ports: !mkOption { type: listOf port, default: [80] }
    vhosts: !mkOption
      type: { attrsOf: { submodule: { options: { root: !mkOption { type: path } } } } }
      default: {}
config:
  site:
    ports: [8080]
`,
  );

  it('declares options that YAML and defaults define', async () => {
    const use = write('use.yaml', `imports: [./decl.yaml]\nsite:\n  ports: [8081]\n  vhosts:\n    a: { root: /srv/a }\n`);
    const ev = await evalModules({ modules: [use], beforeCheck: validateYamlModules });
    expect(ev.config.site).toEqual({ title: 'Hello', ports: [8081, 8080], vhosts: { a: { root: '/srv/a' } } });
    expect(ev.option(['site', 'title']).node.declarations[0]).toMatchObject({ file: decls, line: 3, column: 12 });
  });

  it('checks definitions against YAML-declared types before evaluation, with positions', async () => {
    const bad = write('bad.yaml', `imports: [./decl.yaml]\nsite:\n  title: 5\n  vhosts:\n    b: { root: relative }\n`);
    await expect(evalModules({ modules: [bad], beforeCheck: validateYamlModules })).rejects.toThrow(
      new RegExp(`site\\.title' is not of type \`string'[\\s\\S]*${bad}:3:3': 5[\\s\\S]*site\\.vhosts\\.b\\.root' is not of type \`absolute path'`),
    );
  });

  it('refuses unknown fields of !mkOption', async () => {
    const f = write('field.yaml', `options:\n  x: !mkOption { type: str, defualt: a }\n`);
    await expect(evalModules({ modules: [f] })).rejects.toThrow(/field\.yaml:2:6: `!mkOption' has no field `defualt'/);
  });
});

describe('the schema a YAML module is checked against', () => {
  it("is the whole config's schema pruned to the data's keys, made without the rest", async () => {
    const { evalSystem } = await import('../../src/eval/index.js');
    const { pruneSchema } = await import('../../src/lib/modules/declarations.js');
    const decls = (await evalSystem([])).evaluation.decls;
    const full = decls.jsonSchema();
    const datas: unknown[] = [
      { networking: { hostName: 'x' }, services: { openssh: { enable: true, settings: { PermitRootLogin: 'no' } } } },
      { users: { users: { alice: { uid: 1000, extraGroups: ['wheel'] } } }, nonsense: { a: 1 } },
      // Not a set where a set of options is: the whole set's schema, which then fails on the type.
      { services: 5, boot: { loader: null } },
      { constructor: 1, toString: { a: 1 } },
      null,
    ];
    for (const data of datas) expect(decls.jsonSchemaFor(data)).toEqual(pruneSchema(full, data));
    expect(JSON.stringify(decls.jsonSchemaFor(datas[0])).length).toBeLessThan(JSON.stringify(full).length / 10);
  });
});
