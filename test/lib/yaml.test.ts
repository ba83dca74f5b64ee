import { describe, expect, it } from 'vitest';
import { entryLocation } from '../../src/lib/location.js';
import { If, Merge, Order, Override } from '../../src/lib/properties.js';
import { parseYaml } from '../../src/lib/yaml.js';
import { evalModulesSync, lib, SourcedModule } from '../../src/lib/index.js';
import { deep, errorOf } from './helpers.js';

const { mkOption, types } = lib;
const parse = (text: string): any => parseYaml(text, '/virtual/host.yaml');
const yamlModule = (text: string, file = '/virtual/host.yaml'): SourcedModule => new SourcedModule(parseYaml(text, file), { file, line: 1, column: 1 }, file, false, '/virtual', true);

describe('parseYaml', () => {
  it('plain values keep their YAML types', () => {
    expect(parse('a: 1\nb: "1"\nc: true\nd: null\ne: [x, 2]\nf: {g: h}\n')).toEqual({ a: 1, b: '1', c: true, d: null, e: ['x', 2], f: { g: 'h' } });
  });
  it('records the position of every mapping entry and list item', () => {
    const v = parse('networking:\n  hostName: web1\npackages:\n  - vim\n  - git\n');
    expect(entryLocation(v, 'networking')).toEqual({ file: '/virtual/host.yaml', line: 1, column: 1 });
    expect(entryLocation(v.networking, 'hostName')).toEqual({ file: '/virtual/host.yaml', line: 2, column: 3 });
    expect(entryLocation(v.packages, '1')).toEqual({ file: '/virtual/host.yaml', line: 5, column: 5 });
  });
  it('!mkForce, !mkDefault and !mkOptionDefault set priorities', () => {
    const v = parse('a: !mkForce 1\nb: !mkDefault x\nc: !mkOptionDefault [1]\n');
    expect(v.a).toBeInstanceOf(Override);
    expect([v.a.priority, v.a.content]).toEqual([50, 1]);
    expect([v.b.priority, v.b.content]).toEqual([1000, 'x']);
    expect([v.c.priority, v.c.content]).toEqual([1500, [1]]);
  });
  it('a tagged plain scalar is read as YAML would (number), a quoted one stays a string', () => {
    expect(parse('a: !mkDefault 22\n').a.content).toBe(22);
    expect(parse('a: !mkDefault "22"\n').a.content).toBe('22');
    expect(parse('a: !mkForce false\n').a.content).toBe(false);
  });
  it('!mkOverride N value on a scalar', () => {
    const v = parse('a: !mkOverride 900 web1\nb: !mkOverride 10 [a, b]\nc: !mkOverride 5\n');
    expect([v.a.priority, v.a.content]).toEqual([900, 'web1']);
    expect([v.b.priority, v.b.content]).toEqual([10, ['a', 'b']]);
    expect([v.c.priority, v.c.content]).toEqual([5, null]);
  });
  it('!mkOverride:N before a mapping or a list', () => {
    const v = parse('a: !mkOverride:900\n  x: 1\nb: !mkOverride:20 [1]\n');
    expect(v.a).toBeInstanceOf(Override);
    expect([v.a.priority, v.a.content]).toEqual([900, { x: 1 }]);
    expect([v.b.priority, v.b.content]).toEqual([20, [1]]);
  });
  it('!mkBefore, !mkAfter, !mkOrder set order', () => {
    const v = parse('a: !mkBefore [x]\nb: !mkAfter [y]\nc: !mkOrder 700 [z]\nd: !mkOrder:1200\n  - w\n');
    for (const k of ['a', 'b', 'c', 'd']) expect(v[k]).toBeInstanceOf(Order);
    expect([v.a.priority, v.b.priority, v.c.priority, v.d.priority]).toEqual([500, 1500, 700, 1200]);
    expect([v.a.content, v.c.content, v.d.content]).toEqual([['x'], ['z'], ['w']]);
  });
  it('!mkMerge takes a list of definitions', () => {
    const v = parse('a: !mkMerge\n  - x: 1\n  - !mkForce\n    y: 2\n');
    expect(v.a).toBeInstanceOf(Merge);
    expect(v.a.contents[0]).toEqual({ x: 1 });
    expect(v.a.contents[1]).toBeInstanceOf(Override);
    expect(errorOf(() => parse('a: !mkMerge {x: 1}\n'))).toMatch(/host\.yaml:1:\d+: `!mkMerge' takes a list of definitions/);
  });
  it('there is no !mkIf: conditions need config', () => {
    expect(errorOf(() => parse('a: !mkIf true\n'))).toMatch(/unknown tag `!mkIf'/);
    expect(parse('a: 1\n').a).not.toBeInstanceOf(If);
  });
  it('!mkOverride without a number, or with a bad one, is an error with a position', () => {
    expect(errorOf(() => parse('x: 1\na: !mkOverride web1\n'))).toMatch(/host\.yaml:2:\d+: `!mkOverride' takes a number and a value/);
    expect(errorOf(() => parse('a: !mkOverride:high\n  x: 1\n'))).toMatch(/host\.yaml:1:4: `!mkOverride' needs an integer, got `high'/);
    expect(errorOf(() => parse('a: !mkOrder\n  x: 1\n'))).toMatch(/`!mkOrder' takes a number and a value/);
  });
  it('unknown tags are errors with a position; standard !! tags are fine', () => {
    expect(errorOf(() => parse('a: 1\nb: !force 1\n'))).toMatch(/^\/virtual\/host\.yaml:2:\d+: unknown tag `!force'/);
    expect(parse('a: !!str 1\n').a).toBe('1');
  });
  it('mapping keys must be plain names', () => {
    expect(errorOf(() => parse('[a, b]: 1\n'))).toMatch(/host\.yaml:1:1: mapping keys must be plain names/);
  });
  it('duplicate keys are invalid YAML', () => {
    expect(errorOf(() => parse('a: 1\nb: 2\na: 3\n'))).toMatch(/host\.yaml:3:1: invalid YAML: Map keys must be unique/);
  });
  it('anchors and aliases are resolved', () => {
    expect(parse('base: &b {x: 1}\ncopy: *b\n').copy).toEqual({ x: 1 });
  });
  it('an empty document is null', () => {
    expect(parse('')).toBeNull();
    expect(parse('# only a comment\n')).toBeNull();
  });
});

describe('YAML modules in evaluations', () => {
  const decl = {
    options: {
      users: mkOption({
        type: types.attrsOf(types.submodule({ options: { uid: mkOption({ type: types.int }), groups: mkOption({ type: types.listOf(types.str), default: [] }) } })),
        default: {},
      }),
      packages: mkOption({ type: types.listOf(types.str), default: [] }),
    },
  };
  it('definitions inside submodules keep their positions', () => {
    const ev = evalModulesSync({ modules: [decl, yamlModule('users:\n  alice:\n    uid: x\n')] });
    expect(errorOf(() => (ev.config as any).users.alice.uid)).toContain("- In `/virtual/host.yaml:3:5': \"x\"");
  });
  it('a list element of the wrong type shows the element position', () => {
    const ev = evalModulesSync({ modules: [decl, yamlModule('packages:\n  - vim\n  - 3\n')] });
    expect(errorOf(() => (ev.config as any).packages)).toContain("- In `/virtual/host.yaml:3:5': 3");
  });
  it('tags work inside submodules', () => {
    const ev = evalModulesSync({
      modules: [decl, yamlModule('users:\n  alice:\n    uid: !mkForce 1\n    groups: !mkAfter [z]\n'), { users: { alice: { uid: 2, groups: ['a'] } } }],
    });
    expect(deep((ev.config as any).users.alice)).toEqual({ uid: 1, groups: ['a', 'z'] });
  });
  it('an emptied mapping under a submodule defines nothing', () => {
    const ev = evalModulesSync({ modules: [decl, yamlModule('users:\n  alice:\n    uid: 1\nx:\n'.replace('x:\n', ''))] });
    expect((ev.config as any).users.alice.groups).toEqual([]);
  });
});
