import { describe, expect, it } from 'vitest';
import { lib, OptionError, PRIORITY, ORDER, SourcedModule } from '../../src/lib/index.js';
import { configOf, deep, errorOf, evaluate } from './helpers.js';

const { mkOption, mkIf, mkMerge, mkForce, mkDefault, mkOptionDefault, mkOverride, mkBefore, mkAfter, mkOrder, types } = lib;

const from = (file: string, value: unknown): SourcedModule => new SourcedModule(value, { file }, file);
const intOpt = { options: { x: mkOption({ type: types.int, default: 0 }) } };
const listOpt = { options: { xs: mkOption({ type: types.listOf(types.str), default: ['default'] }) } };

describe('priorities', () => {
  it('have the NixOS numbers', () => {
    expect(PRIORITY).toEqual({ optionDefault: 1500, default: 1000, plain: 100, force: 50 });
    expect(ORDER).toEqual({ before: 500, default: 1000, after: 1500 });
  });
  it('the declared default applies when nothing is defined', () => {
    expect(configOf(intOpt).x).toBe(0);
  });
  it('mkOptionDefault < mkDefault < plain < mkForce, whatever the module order', () => {
    const noDefault = { options: { x: mkOption({ type: types.int }) } };
    const defs = [{ x: mkOptionDefault(1) }, { x: mkDefault(2) }, { x: 3 }, { x: mkForce(4) }];
    for (let n = 1; n <= defs.length; n++) {
      const some = defs.slice(0, n);
      expect(configOf(noDefault, ...some).x).toBe(n);
      expect(configOf(noDefault, ...[...some].reverse()).x).toBe(n);
    }
  });
  it('an mkOptionDefault definition conflicts with a different declared default', () => {
    expect(errorOf(() => configOf(intOpt, { x: mkOptionDefault(1) }).x)).toMatch(/conflicting definition values/);
  });
  it('mkOptionDefault is the priority of the declared default: a list default and an mkOptionDefault definition are merged', () => {
    expect(configOf(listOpt, { xs: mkOptionDefault(['extra']) }).xs).toEqual(['default', 'extra']);
  });
  it('mkOverride takes any number; lower wins', () => {
    expect(configOf(intOpt, { x: mkDefault(1) }, { x: mkOverride(900, 2) }).x).toBe(2);
    expect(configOf(intOpt, { x: 1 }, { x: mkOverride(900, 2) }).x).toBe(1);
    expect(configOf(intOpt, { x: mkOverride(10, 1) }, { x: mkForce(2) }).x).toBe(1);
    expect(configOf(intOpt, { x: mkOverride(100, 1) }).x).toBe(1);
    expect(errorOf(() => configOf(intOpt, { x: mkOverride(100, 1) }, { x: 2 }).x)).toMatch(/conflicting definition values/);
  });
  it('only definitions of the winning priority are merged', () => {
    expect(configOf(listOpt, { xs: ['a'] }, { xs: mkDefault(['b']) }, { xs: ['c'] }).xs).toEqual(['a', 'c']);
    expect(configOf(listOpt, { xs: mkDefault(['a']) }, { xs: mkDefault(['b']) }).xs).toEqual(['a', 'b']);
    expect(configOf(listOpt, { xs: ['a'] }, { xs: mkForce(['b']) }, { xs: mkForce([]) }).xs).toEqual(['b']);
  });
  it('conflicts at a losing priority do not matter', () => {
    expect(configOf(intOpt, { x: mkDefault(1) }, { x: mkDefault(2) }, { x: 3 }).x).toBe(3);
  });
  it('conflicting definitions at the winning priority are an error with the priority hint', () => {
    const msg = errorOf(() => configOf(intOpt, from('a.ts', { x: mkForce(1) }), from('b.ts', { x: mkForce(2) }), from('c.ts', { x: 3 })).x);
    expect(msg).toContain("- In `a.ts': 1");
    expect(msg).toContain("- In `b.ts': 2");
    expect(msg).not.toContain('c.ts');
    expect(msg).toContain('`!mkForce value`');
    expect(msg).toContain('lib.mkDefault(value)');
  });
  it('nested overrides: the outermost priority wins', () => {
    expect(configOf(intOpt, { x: mkForce(mkDefault(1)) }, { x: 2 }).x).toBe(1);
    expect(configOf(intOpt, { x: mkDefault(mkForce(1)) }, { x: 2 }).x).toBe(2);
  });
  it('mkIf and mkForce combine in either order', () => {
    expect(configOf(intOpt, { x: mkIf(true, mkForce(1)) }, { x: 2 }).x).toBe(1);
    expect(configOf(intOpt, { x: mkForce(mkIf(true, 1)) }, { x: 2 }).x).toBe(1);
    expect(configOf(intOpt, { x: mkForce(mkIf(false, 1)) }, { x: 2 }).x).toBe(2);
  });
  it('a priority on a namespace applies to every option below it', () => {
    const decl = { options: { s: { a: mkOption({ type: types.int }), b: mkOption({ type: types.int }) } } };
    const c = configOf(decl, { s: mkForce({ a: 1, b: 2 }) }, { s: { a: 10, b: 20 } });
    expect(deep(c.s)).toEqual({ a: 1, b: 2 });
    expect(deep(configOf(decl, { s: mkDefault({ a: 1, b: 2 }) }, { s: { a: 10 } }).s)).toEqual({ a: 10, b: 2 });
  });
  it('options.x.highestPrio and definitions report the winner', () => {
    const ev = evaluate(intOpt, { x: mkDefault(1) });
    const info = (ev.options as any).x;
    expect(info.highestPrio).toBe(1000);
    expect(info.definitions.map((d: any) => d.value)).toEqual([1]);
    expect(info.isDefined).toBe(true);
    const none = (evaluate(intOpt).options as any).x;
    expect(none.highestPrio).toBe(1500);
    expect(none.definitions).toEqual([]);
  });
  it('an option without default and definitions errors when read', () => {
    expect(errorOf(() => configOf({ options: { x: mkOption({ type: types.int }) } }).x)).toMatch(/`x' was accessed but has no value defined/);
    expect(errorOf(() => configOf({ options: { x: mkOption({ type: types.int }) } }, { x: mkIf(false, 1) }).x)).toMatch(/has no value defined/);
  });
  it('apply transforms the merged value', () => {
    const decl = { options: { xs: mkOption({ type: types.listOf(types.int), default: [], apply: (v: number[]) => v.reduce((a, b) => a + b, 0) }) } };
    expect(configOf(decl, { xs: [1, 2] }, { xs: [3] }).xs).toBe(6);
  });
});

describe('order', () => {
  it('mkBefore, mkAfter and mkOrder sort definitions of a list', () => {
    const c = configOf(listOpt, { xs: mkAfter(['z']) }, { xs: ['m'] }, { xs: mkOrder(1, ['a']) }, { xs: mkBefore(['b']) }, { xs: mkOrder(1200, ['y']) });
    expect(c.xs).toEqual(['a', 'b', 'm', 'y', 'z']);
  });
  it('the default is not ordered in with definitions', () => {
    expect(configOf(listOpt, { xs: mkBefore(['b']) }).xs).toEqual(['b']);
  });
  it('order and priority combine', () => {
    expect(configOf(listOpt, { xs: mkForce(mkAfter(['z'])) }, { xs: mkForce(['a']) }, { xs: ['dropped'] }).xs).toEqual(['a', 'z']);
    expect(configOf(listOpt, { xs: mkAfter(mkForce(['z'])) }, { xs: mkForce(['a']) }).xs).toEqual(['a', 'z']);
  });
});

describe('mkMerge', () => {
  it('merges several definitions given in one place', () => {
    expect(configOf(listOpt, { xs: mkMerge([['a'], ['b']]) }, { xs: ['c'] }).xs).toEqual(['a', 'b', 'c']);
  });
  it('works on whole configs and namespaces, nested', () => {
    const decl = { options: { a: mkOption({ type: types.int }), b: mkOption({ type: types.listOf(types.int) }) } };
    const c = configOf(decl, { config: mkMerge([{ a: 1 }, mkMerge([{ b: [1] }, { b: [2] }]), mkIf(false, { b: [3] })]) });
    expect(deep(c)).toEqual({ a: 1, b: [1, 2] });
  });
  it('items keep their own priorities', () => {
    expect(configOf(intOpt, { x: mkMerge([mkDefault(1), 2]) }).x).toBe(2);
  });
  it('an empty mkMerge defines nothing', () => {
    expect(configOf(intOpt, { x: mkMerge([]) }).x).toBe(0);
  });
});

describe('mkIf', () => {
  const enable = { options: { foo: { enable: lib.mkEnableOption('foo'), port: mkOption({ type: types.port, default: 80 }) }, out: mkOption({ type: types.listOf(types.str), default: [] }) } };

  it('a boolean condition', () => {
    expect(configOf(intOpt, { x: mkIf(true, 1) }).x).toBe(1);
    expect(configOf(intOpt, { x: mkIf(false, 1) }).x).toBe(0);
  });
  it('the classic pattern: config = mkIf config.foo.enable {…}, with foo.enable set by another module', () => {
    const mod = ({ config }: any) => ({ config: mkIf(config.foo.enable, { out: ['foo is on'], foo: { port: 8080 } }) });
    expect(deep(configOf(enable, mod))).toEqual({ foo: { enable: false, port: 80 }, out: [] });
    expect(deep(configOf(enable, mod, { foo: { enable: true } }))).toEqual({ foo: { enable: true, port: 8080 }, out: ['foo is on'] });
    expect(configOf({ foo: { enable: true } }, mod, enable).out).toEqual(['foo is on']);
  });
  it('a stored config reference (const cfg = config.foo) works as a condition and as a value', () => {
    const mod = ({ config }: any) => {
      const cfg = config.foo;
      return { config: mkIf(cfg.enable, { out: [mkIf(() => cfg.port === 8080, 'alt port')] }) };
    };
    expect(configOf(enable, mod, { foo: { enable: true, port: 8080 } }).out).toEqual(['alt port']);
    expect(configOf(enable, mod, { foo: { enable: true } }).out).toEqual([]);
  });
  it('a function condition is evaluated lazily', () => {
    let calls = 0;
    const mod = ({ config }: any) => ({
      out: mkIf(() => {
        calls++;
        return config.foo.enable;
      }, ['x']),
    });
    const c = configOf(enable, mod, { foo: { enable: true } });
    expect(calls).toBe(0);
    expect(c.out).toEqual(['x']);
    expect(calls).toBe(1);
  });
  it('a condition is pushed into attributes: reading an option it guards does not evaluate it', () => {
    // The condition reads foo.enable, and the mkIf also defines foo.port: evaluated eagerly for
    // the whole `foo' namespace, reading foo.enable would need the condition itself.
    const mod = ({ config }: any) => ({ config: mkIf(config.foo.enable, { foo: { port: 8080 } }) });
    expect(configOf(enable, mod, { foo: { enable: true } }).foo.port).toBe(8080);
    expect(configOf(enable, mod).foo.port).toBe(80);
  });
  it('a condition that reads an option of the same namespace, for an option of that namespace', () => {
    const mod = ({ config }: any) => ({ foo: mkIf(config.foo.enable, { port: mkIf(() => config.foo.port < 1024, 1024) }) });
    expect(errorOf(() => configOf(enable, mod, { foo: { enable: true } }).foo.port)).toMatch(/infinite recursion encountered: `foo.port' → `foo.port'/);
  });
  it('conditions that depend on values defined under other conditions', () => {
    const decl = { options: { a: lib.mkEnableOption('a'), b: lib.mkEnableOption('b'), c: lib.mkEnableOption('c') } };
    const mod = ({ config }: any) => ({ config: mkMerge([mkIf(config.a, { b: true }), mkIf(config.b, { c: true })]) });
    expect(deep(configOf(decl, mod, { a: true }))).toEqual({ a: true, b: true, c: true });
    expect(deep(configOf(decl, mod))).toEqual({ a: false, b: false, c: false });
  });
  it('a non-boolean condition is an error', () => {
    expect(errorOf(() => configOf(intOpt, { x: mkIf('yes' as any, 1) }).x)).toMatch(/`mkIf' called with a non-Boolean condition \("yes"\)/);
    expect(errorOf(() => configOf(intOpt, { x: mkIf(() => 1, 1) }).x)).toMatch(/non-Boolean condition \(1\)/);
    const mod = ({ config }: any) => ({ x: mkIf(config.foo.port, 1) });
    expect(errorOf(() => configOf(intOpt, enable, mod).x)).toMatch(/non-Boolean condition \(80\)/);
  });
  it('the non-boolean condition error points at the mkIf call', () => {
    expect(errorOf(() => configOf(intOpt, { x: mkIf(null as any, 1) }).x)).toContain('properties.test.ts');
  });
  it('a module body computes with config values: it runs again with them', () => {
    const mod = ({ config }: any) => ({ out: config.foo.enable ? ['on'] : [] });
    const eager = ({ config }: any) => ({ out: [`port ${config.foo.port}`] });
    expect(configOf(enable, mod).out).toEqual([]);
    expect(configOf(enable, mod, { foo: { enable: true } }).out).toEqual(['on']);
    expect(configOf(enable, eager, { foo: { port: 22 } }).out).toEqual(['port 22']);
  });
  it('getters make definition values lazy', () => {
    const mod = ({ config }: any) => ({
      out: {
        get value() {
          return [`port ${config.foo.port}`];
        },
      }.value,
    });
    expect(configOf(enable, mod).out).toEqual(['port 80']);
    const lazy = ({ config }: any) => ({
      get out() {
        return [`port ${config.foo.port}`];
      },
    });
    expect(configOf(enable, lazy, { foo: { port: 22 } }).out).toEqual(['port 22']);
  });
  it('a config reference is a definition value', () => {
    const decl = { options: { a: mkOption({ type: types.int }), b: mkOption({ type: types.int }) } };
    const mod = ({ config }: any) => ({ b: config.a });
    expect(configOf(decl, mod, { a: 5 }).b).toBe(5);
  });
});

describe('infinite recursion', () => {
  const decl = { options: { a: mkOption({ type: types.int }), b: mkOption({ type: types.int }), c: mkOption({ type: types.int }) } };
  it('a cycle between options is an OptionError naming the chain', () => {
    const mod = ({ config }: any) => ({ a: config.b, b: config.c, c: config.a });
    let err: unknown;
    try {
      configOf(decl, mod).a;
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionError);
    expect((err as Error).message).toMatch(/^infinite recursion encountered: `a' → `b' → `c' → `a'/);
  });
  it('an option reading itself', () => {
    const mod = ({ config }: any) => ({
      get a() {
        return config.a + 1;
      },
    });
    expect(errorOf(() => configOf(decl, mod).a)).toMatch(/infinite recursion encountered: `a' → `a'/);
  });
  it('a cycle through mkIf conditions', () => {
    const flags = { options: { x: lib.mkEnableOption('x'), y: lib.mkEnableOption('y') } };
    const mod = ({ config }: any) => ({ config: mkMerge([mkIf(config.x, { y: true }), mkIf(config.y, { x: true })]) });
    expect(errorOf(() => configOf(flags, mod).x)).toMatch(/infinite recursion encountered: `x' → `y' → `x'/);
  });
  it('an option enabling itself', () => {
    const flags = { options: { enable: lib.mkEnableOption('x') } };
    const mod = ({ config }: any) => ({ config: mkIf(config.enable, { enable: true }) });
    expect(errorOf(() => configOf(flags, mod).enable)).toMatch(/infinite recursion encountered: `enable' → `enable'/);
  });
  it('the evaluation recovers after the error: other options still work', () => {
    const mod = ({ config }: any) => ({ a: config.b, b: config.a, c: 3 });
    const c = configOf(decl, mod);
    expect(() => c.a).toThrow(OptionError);
    expect(c.c).toBe(3);
  });
});
