import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evalModulesSync, lib, OptionError, SourcedModule } from '../../src/lib/index.js';
import { configOf, deep, errorOf, evaluate } from './helpers.js';

const { mkOption, mkIf, mkMerge, mkForce, mkDefault, types } = lib;

const from = (file: string, value: unknown): SourcedModule => new SourcedModule(value, { file }, file);
const declEnable = { options: { enable: mkOption({ type: types.bool, default: false }) } };

describe('declarations', () => {
  it('a boolean option with its default', () => {
    expect(configOf(declEnable).enable).toBe(false);
    expect(configOf(declEnable, { enable: true }).enable).toBe(true);
  });
  it('mkEnableOption is a bool defaulting to false with a description', () => {
    const ev = evaluate({ options: { foo: { enable: lib.mkEnableOption('the foo service') } } });
    const info = (ev.options as any).foo.enable;
    expect(info.description).toBe('Whether to enable the foo service.');
    expect(info.type.name).toBe('bool');
    expect((ev.config as any).foo.enable).toBe(false);
  });
  it('options.x.declarations point at the mkOption call', () => {
    const ev = evaluate({
      options: { x: mkOption({ type: types.int, default: 1 }) }, // declared here
    });
    const [pos] = (ev.options as any).x.declarations;
    expect(pos.file).toMatch(/test\/lib\/options\.test\.ts$/);
    const lines = readFileSync(pos.file, 'utf8').split('\n');
    expect(lines[pos.line - 1]).toContain('// declared here');
    expect(lines[pos.line - 1]!.slice(pos.column - 1)).toMatch(/^mkOption\(/);
  });
  it('an option may be declared twice when the declarations do not both set a field', () => {
    const c = configOf({ options: { x: mkOption({ type: types.int }) } }, { options: { x: mkOption({ default: 3, description: 'x' }) } });
    expect(c.x).toBe(3);
  });
  it('an option declared twice with conflicting fields: "already declared"', () => {
    const msg = errorOf(() => configOf(from('a.ts', { options: { x: mkOption({ default: 1 }) } }), from('b.ts', { options: { x: mkOption({ default: 2 }) } })));
    expect(msg).toMatch(/The option `x' in `.*' is already declared in `.*options\.test\.ts:\d+:\d+'/);
    expect(() => configOf({ options: { x: mkOption({ description: 'a' }) } }, { options: { x: mkOption({ description: 'b' }) } })).toThrow(/already declared/);
  });
  it('a bare type where an option was expected', () => {
    const msg = errorOf(() => configOf({ options: { result: types.str } }));
    expect(msg).toMatch(/In module .*: expected an option declaration at option path `result' but got an attribute set with type option-type: a bare type; wrap it/);
    expect(() => configOf({ options: { result: { here: types.int } } })).toThrow(/`result.here' .* bare type/);
  });
  it('a non-object in options', () => {
    expect(() => configOf({ options: { a: 3 } })).toThrow(/Expected a set of option declarations at `a'/);
  });
  it('an option cannot also be the parent of options', () => {
    const set = { options: { set: mkOption({ type: types.attrsOf(types.int) }) } };
    const nested = { options: { set: { enable: lib.mkEnableOption('x') } } };
    expect(errorOf(() => configOf(set, nested))).toMatch(/The option `set' in module `.*' would be a parent of the following options, but its type `attribute set of signed integer' does not support nested options.\n- option\(s\) with prefix `set.enable'/);
    expect(errorOf(() => configOf(nested, set))).toMatch(/The option `set' .* would be a parent of the following options/);
  });
  it('a module with config plus stray top-level keys: "unsupported attribute"', () => {
    const msg = errorOf(() => configOf(declEnable, from('m.ts', { config: { enable: true }, enabled: true, other: 1 })));
    expect(msg).toContain("Module `m.ts' has an unsupported attribute `enabled'");
    expect(msg).toContain('namely: enabled, other');
    expect(() => configOf(declEnable, { options: {}, enable: true })).toThrow(/unsupported attribute `enable'/);
  });
  it('a module that is not an object or a function', () => {
    expect(() => configOf(from('m.ts', 42))).toThrow(/The module `m.ts' is not an object or a function/);
  });
  it('a module may be a top-level mkIf or mkForce: it is config', () => {
    expect(configOf(declEnable, mkIf(true, { enable: true })).enable).toBe(true);
    expect(configOf(declEnable, mkIf(false, { enable: true })).enable).toBe(false);
    expect(configOf(declEnable, { enable: true }, () => mkForce({ enable: false })).enable).toBe(false);
    expect(configOf(declEnable, { imports: [mkIf(true, { enable: true })] }).enable).toBe(true);
  });
  it('shorthand modules: everything but the module keys is config', () => {
    const c = configOf(declEnable, { imports: [], enable: true });
    expect(c.enable).toBe(true);
  });
  it('readOnly options may be defined once', () => {
    const ro = { options: { ro: mkOption({ type: types.int, readOnly: true, default: 1 }) } };
    expect(configOf(ro).ro).toBe(1);
    // As in NixOS, the default counts as a definition.
    expect(() => configOf(ro, { ro: 2 }).ro).toThrow(/read-only, but it's set multiple times/);
    expect(configOf({ options: { ro: mkOption({ type: types.int, readOnly: true }) } }, { ro: 2 }).ro).toBe(2);
    const msg = errorOf(() => configOf(ro, from('a.ts', { ro: 2 }), from('b.ts', { ro: 2 })).ro);
    expect(msg).toContain("The option `ro' is read-only, but it's set multiple times.");
    expect(msg).toContain("- In `a.ts': 2");
    expect(msg).toContain("- In `b.ts': 2");
  });
  it('a default may be a getter reading config, evaluated only when needed', () => {
    const mod = ({ config }: any) => ({
      options: {
        port: mkOption({ type: types.port, default: 80 }),
        url: mkOption({
          type: types.str,
          get default() {
            return `http://host:${config.port}`;
          },
        }),
      },
    });
    expect(configOf(mod, { port: 8080 }).url).toBe('http://host:8080');
    expect(configOf(mod, { url: 'x' }).url).toBe('x');
  });
  it('options values show type, default and definitions', () => {
    const ev = evaluate({ options: { x: mkOption({ type: types.int, default: 1, description: 'An x.', example: 5 }) } }, from('a.ts', { x: 2 }));
    const info = (ev.options as any).x;
    expect(info.path).toBe('x');
    expect(info.default).toBe(1);
    expect(info.example).toBe(5);
    expect(info.description).toBe('An x.');
    expect(info.value).toBe(2);
    expect(info.definitions).toEqual([{ loc: { file: 'a.ts' }, value: 2 }]);
  });
});

describe('unknown options', () => {
  const decl = { options: { networking: { hostName: mkOption({ type: types.str, default: 'x' }), domain: mkOption({ type: types.str, default: '' }) } } };
  it('are reported at evaluation, with the definition', () => {
    const msg = errorOf(() => evaluate(declEnable, from('m.ts', { enabled: true })));
    expect(msg).toContain("The option `enabled' does not exist. Definition values:\n- In `m.ts': true");
  });
  it('the nearest declared name is suggested', () => {
    expect(errorOf(() => evaluate(decl, { networking: { hostname: 'a' } }))).toContain("Did you mean `networking.hostName'?");
    expect(errorOf(() => evaluate(decl, { networking: { domian: 'a' } }))).toContain("Did you mean `networking.domain'?");
  });
  it('no suggestion when nothing is close', () => {
    expect(errorOf(() => evaluate(decl, { networking: { firewall: {} } }))).not.toContain('Did you mean');
  });
  it('below an option namespace that does not exist', () => {
    expect(errorOf(() => evaluate(decl, { services: { nginx: { enable: true } } }))).toContain("The option `services' does not exist");
  });
  it('more than one undeclared option is counted', () => {
    expect(errorOf(() => evaluate(decl, { a: 1, b: 2, c: 3 }))).toContain("(and 2 more undeclared options: `b', `c')");
  });
  it('undeclared options under mkIf false are still errors', () => {
    expect(() => evaluate(decl, { config: mkIf(false, { nope: 1 }) })).toThrow(OptionError);
  });
  it('check: false skips the check', () => {
    expect(evalModulesSync({ modules: [decl, { nope: 1 }], check: false }).config.networking).toBeDefined();
  });
  it('defining a namespace as a value is an error', () => {
    expect(errorOf(() => configOf(decl, { networking: 'x' }).networking.hostName)).toMatch(/`networking' is a set of options, not an option.*\n.*\nOptions below it: hostName, domain/);
  });
  it('a null namespace defines nothing (an emptied YAML mapping)', () => {
    expect(configOf(decl, { networking: null }).networking.hostName).toBe('x');
  });
  it('reading an option that does not exist through config is an error', () => {
    const mod = ({ config }: any) => ({ networking: { domain: config.networking.hostname } });
    expect(errorOf(() => configOf(decl, mod).networking.domain)).toMatch(/The option `networking.hostname' does not exist \(read through `config'\)/);
  });
});

describe('freeformType', () => {
  const free = { freeformType: types.attrsOf(types.either(types.str, types.attrsOf(types.str))) };
  it('takes undeclared definitions', () => {
    expect(configOf(free, { value: '24' }).value).toBe('24');
  });
  it('without definitions, config is empty', () => {
    expect(deep(configOf(free))).toEqual({});
  });
  it('checks them with its type', () => {
    expect(errorOf(() => configOf(free, { value: [] }).value)).toMatch(/A definition for option `value' is not of type/);
  });
  it('applies properties', () => {
    expect(configOf(free, { value: mkMerge([mkIf(true, 'yes'), mkIf(false, 'no')]) }).value).toBe('yes');
    expect(configOf(free, { value: 'a' }, { value: mkForce('b') }).value).toBe('b');
  });
  it('merges several definitions with its type', () => {
    expect(errorOf(() => configOf(free, { value: 'a' }, { value: 'b' }).value)).toMatch(/conflicting definition values/);
    expect(deep(configOf({ freeformType: types.attrsOf(types.listOf(types.int)) }, { v: [1] }, { v: [2] }).v)).toEqual([1, 2]);
  });
  it('declared options win, with their own type', () => {
    const c = configOf(free, declEnable, { value: '24' });
    expect(c.enable).toBe(false);
    expect(c.value).toBe('24');
    expect(configOf(free, declEnable, { enable: true }).enable).toBe(true);
    expect(errorOf(() => configOf(free, declEnable, { enable: 'yes' }).enable)).toMatch(/not of type `boolean'/);
  });
  it('nested: undeclared definitions beside declared options in a namespace', () => {
    const c = configOf(free, { options: { nest: { foo: mkOption({ type: types.bool, default: false }) } } }, { nest: { bar: 'bar' } });
    expect(c.nest.foo).toBe(false);
    expect(c.nest.bar).toBe('bar');
  });
  it('a declared option can depend on a freeform value', () => {
    const dep = ({ config }: any) => ({
      options: { foo: mkOption({ type: types.nullOr(types.str), default: null }) },
      config: { foo: mkIf(() => 'value' in config, config.value) },
    });
    expect(configOf(free, dep).foo).toBeNull();
    expect(configOf(free, dep, { value: '24' }).foo).toBe('24');
  });
  it('a freeform value depending on a declared option works with lazyAttrsOf', () => {
    const dep = ({ config }: any) => ({
      options: { value: mkOption({ type: types.nullOr(types.str), default: null }) },
      config: { foo: mkIf(() => config.value !== null, config.value) },
    });
    const lazy = { freeformType: types.lazyAttrsOf(types.str) };
    expect(configOf(lazy, dep, { value: '24' }).foo).toBe('24');
    expect(errorOf(() => configOf(lazy, dep).foo)).toMatch(/`foo' was accessed but has no value defined/);
  });
  it('with attrsOf, a freeform value depending on a declared option is an infinite recursion error', () => {
    const dep = ({ config }: any) => ({
      options: { value: mkOption({ type: types.nullOr(types.str), default: null }) },
      config: { foo: mkIf(() => config.value !== null, config.value) },
    });
    let err: unknown;
    try {
      configOf({ freeformType: types.attrsOf(types.str) }, dep, { value: '24' }).foo;
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionError);
    expect((err as Error).message).toMatch(/infinite recursion encountered/);
  });
  it('freeform submodules', () => {
    const sub = types.submodule({ freeformType: types.attrsOf(types.int), options: { foo: mkOption({ type: types.int, default: 10 }) } });
    const c = configOf({ freeformType: types.attrsOf(sub) }, { xxx: {} }, { yyy: { bar: 10 } }, { yyy: { foo: 11 } });
    expect(deep(c)).toEqual({ xxx: { foo: 10 }, yyy: { foo: 11, bar: 10 } });
    expect(errorOf(() => deep(configOf({ freeformType: types.attrsOf(sub) }, { zzz: { bar: 'x' } })))).toMatch(/`zzz.bar' is not of type `signed integer'/);
  });
  it('two freeformTypes merge like declarations', () => {
    const c = configOf({ freeformType: types.attrsOf(types.enum(['a'])) }, { freeformType: types.attrsOf(types.enum(['b'])) }, { x: 'a', y: 'b' });
    expect(deep(c)).toEqual({ x: 'a', y: 'b' });
    expect(() => configOf({ freeformType: types.attrsOf(types.int) }, { freeformType: types.attrsOf(types.str) })).toThrow(/conflicts with one declared before/);
  });
  it('freeformType must be a type', () => {
    expect(() => configOf({ freeformType: 'attrs' })).toThrow(/`freeformType' in .* must be an option type/);
  });
});

describe('mkRenamedOptionModule', () => {
  const decl = { options: { c: { d: { e: mkOption({ type: types.int, default: 0 }) } } } };
  const renamed = lib.mkRenamedOptionModule(['a', 'b'], ['c', 'd', 'e']);

  it('forwards definitions of the old name to the new one', () => {
    expect(configOf(decl, renamed, { a: { b: 1234 } }).c.d.e).toBe(1234);
  });
  it('reading the old name gives the new value', () => {
    expect(configOf(decl, renamed, { c: { d: { e: 5 } } }).a.b).toBe(5);
    expect(configOf(decl, renamed).a.b).toBe(0);
  });
  it('forwards priorities', () => {
    expect(configOf(decl, renamed, { a: { b: mkDefault(1) } }, { c: { d: { e: 2 } } }).c.d.e).toBe(2);
    expect(configOf(decl, renamed, { a: { b: mkForce(1) } }, { c: { d: { e: 2 } } }).c.d.e).toBe(1);
    expect(errorOf(() => configOf(decl, renamed, { a: { b: 1 } }, { c: { d: { e: 2 } } }).c.d.e)).toMatch(/`c.d.e' has conflicting definition values/);
  });
  it('warns about definitions of the old name, naming where they are', () => {
    const ev = evaluate(decl, renamed, from('host.ts', { a: { b: 1 } }));
    expect(ev.internalWarnings()).toEqual(["The option `a.b' defined in `host.ts' has been renamed to `c.d.e'."]);
    expect(evaluate(decl, renamed, { c: { d: { e: 1 } } }).internalWarnings()).toEqual([]);
  });
  it('a mkIf false definition of the old name does not warn', () => {
    expect(evaluate(decl, renamed, { a: { b: mkIf(false, 1) } }).internalWarnings()).toEqual([]);
  });
  it('conditions on the old name see the migrated value (NixOS doRename-condition)', () => {
    const flags = { options: { services: { foo: { enable: lib.mkEnableOption('foo') } }, result: mkOption({ type: types.bool, default: false }) } };
    const rn = lib.mkRenamedOptionModule(['services', 'foos', 'enable'], ['services', 'foo', 'enable']);
    const uses = ({ config }: any) => ({ result: mkIf(config.services.foos.enable, true) });
    expect(configOf(flags, rn, uses, { services: { foo: { enable: true } } }).result).toBe(true);
    expect(configOf(flags, rn, uses, { services: { foos: { enable: true } } }).result).toBe(true);
    expect(configOf(flags, rn, uses).result).toBe(false);
  });
  it('is hidden from the JSON Schema of the old name', () => {
    const ev = evaluate(decl, renamed);
    expect(ev.decls.jsonSchema()).toMatchObject({ properties: { a: { properties: { b: {} } }, c: { properties: { d: { properties: { e: { type: 'integer' } } } } } } });
  });
});

describe('mkAliasOptionModule', () => {
  const decl = { options: { enable: mkOption({ type: types.nullOr(types.bool), default: null }) } };
  const alias = lib.mkAliasOptionModule(['enableAlias'], ['enable']);
  it('a definition of the alias keeps its priority (NixOS alias-with-priority)', () => {
    const c = configOf(decl, alias, { enableAlias: mkDefault(false) }, { enable: true });
    expect(c.enable).toBe(true);
    expect(c.enableAlias).toBe(true);
  });
  it('a high-priority alias definition overrides the option (alias-with-priority-can-override)', () => {
    const c = configOf(decl, alias, { enableAlias: mkForce(false) }, { enable: true });
    expect(c.enable).toBe(false);
    expect(c.enableAlias).toBe(false);
  });
  it('does not warn', () => {
    expect(evaluate(decl, alias, { enableAlias: true }).internalWarnings()).toEqual([]);
  });
  it('an alias cannot be declared again', () => {
    expect(() => configOf(decl, alias, { options: { enableAlias: mkOption({}) } })).toThrow(/already declared/);
  });
});

describe('mkRemovedOptionModule', () => {
  const removed = lib.mkRemovedOptionModule(['services', 'old'], 'Use services.new instead.');
  it('a definition gives a failed assertion with the instructions', () => {
    const ev = evaluate(removed, from('host.ts', { services: { old: { enable: true } } }));
    const [msg, ...rest] = ev.internalAssertions();
    expect(rest).toEqual([]);
    expect(msg).toContain("The option definition `services.old' in `host.ts' no longer has any effect; please remove it.");
    expect(msg).toContain('Use services.new instead.');
  });
  it('no definition, no assertion', () => {
    expect(evaluate(removed).internalAssertions()).toEqual([]);
    expect(evaluate(removed, { services: { old: mkIf(false, 1) } }).internalAssertions()).toEqual([]);
  });
});

describe('module keys', () => {
  const decl = { options: { raw: mkOption({ type: types.lines, default: '' }), enable: lib.mkEnableOption('x') } };
  const pear = (key: string) => ({ key, raw: 'pear' });
  it('modules with the same key count once (NixOS merge-module-with-key)', () => {
    expect(configOf(decl, pear('fruit'), pear('fruit')).raw).toBe('pear');
    expect(configOf(decl, pear('fruit'), { imports: [pear('fruit')] }).raw).toBe('pear');
    expect(configOf(decl, pear('fruit'), pear('other')).raw).toBe('pear\npear');
    expect(configOf(decl, () => pear('fruit'), () => pear('fruit')).raw).toBe('pear');
  });
  it('disabledModules: [{ key }] leaves out the module with that key', () => {
    const positive = { key: 'positive', enable: true };
    expect(configOf(decl, positive).enable).toBe(true);
    expect(configOf(decl, positive, { disabledModules: [{ key: 'positive' }] }).enable).toBe(false);
    expect(configOf(decl, positive, { disabledModules: [{ key: 'negative' }] }).enable).toBe(true);
    expect(configOf(decl, { imports: [positive] }, { disabledModules: [positive] }).enable).toBe(false);
  });
  it('anonymous modules without a key are all kept', () => {
    expect(configOf(decl, { raw: 'a' }, { raw: 'a' }).raw).toBe('a\na');
  });
  it('in a submodule definition, `key` is config', () => {
    const t = types.attrsOf(types.submodule({ options: { key: mkOption({ type: types.str }) } }));
    expect(configOf({ options: { keys: mkOption({ type: t }) } }, { keys: { a: { key: 'k' }, b: { key: 'k' } } }).keys.b.key).toBe('k');
  });
});
