/** TypeScript modules computing with config values in their body, as NixOS modules do. */
import { describe, expect, it } from 'vitest';
import { evalModulesSync, lib, OptionError } from '../../src/lib/index.js';
import { configOf, deep, errorOf, evaluate } from './helpers.js';

const { mkOption, mkIf, types } = lib;

const guard = {
  options: {
    guard: {
      size: mkOption({ type: types.int, default: 3 }),
      lines: mkOption({ type: types.listOf(types.str), default: ['one', 'two'] }),
      a: lib.mkEnableOption('a'),
      b: lib.mkEnableOption('b'),
      x: mkOption({ type: types.int, default: 1 }),
      names: mkOption({ type: types.attrsOf(types.int), default: {} }),
    },
    out: {
      text: mkOption({ type: types.str, default: '' }),
      both: mkOption({ type: types.listOf(types.str), default: [] }),
      neither: mkOption({ type: types.listOf(types.str), default: [] }),
      pairs: mkOption({ type: types.listOf(types.str), default: [] }),
    },
    assertions: mkOption({ type: types.listOf(types.anything), default: [] }),
    warnings: mkOption({ type: types.listOf(types.str), default: [] }),
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const plain = ({ config }: any) => {
  const cfg = config.guard;
  return {
    assertions: [{ assertion: cfg.size < 10, message: 'guard.size must be below 10' }],
    warnings: cfg.x > 5 ? [`guard.x is ${cfg.x}`] : [],
    out: {
      text: cfg.lines.join('\n'),
      both: mkIf(cfg.a && cfg.b, ['a and b']),
      neither: mkIf(!cfg.a && !cfg.b, ['neither']),
      pairs: Object.entries(cfg.names).map(([k, v]) => `${k}=${v}`),
    },
  };
};

describe('plain reads of config in a module body', () => {
  it('a comparison as an assertion', () => {
    expect(configOf(guard, plain).assertions).toEqual([{ assertion: true, message: 'guard.size must be below 10' }]);
    expect(configOf(guard, plain, { guard: { size: 12 } }).assertions).toEqual([{ assertion: false, message: 'guard.size must be below 10' }]);
  });

  it('a list joined into text', () => {
    expect(configOf(guard, plain).out.text).toBe('one\ntwo');
    expect(configOf(guard, plain, { guard: { lines: ['x', 'y', 'z'] } }).out.text).toBe('x\ny\nz');
  });

  it('a conditional list of warnings', () => {
    expect(configOf(guard, plain).warnings).toEqual([]);
    expect(configOf(guard, plain, { guard: { x: 9 } }).warnings).toEqual(['guard.x is 9']);
  });

  it('mkIf with a condition computed from several options', () => {
    expect(configOf(guard, plain).out.both).toEqual([]);
    expect(configOf(guard, plain, { guard: { a: true } }).out.both).toEqual([]);
    expect(configOf(guard, plain, { guard: { b: true } }).out.both).toEqual([]);
    expect(configOf(guard, plain, { guard: { a: true, b: true } }).out.both).toEqual(['a and b']);
    expect(configOf(guard, plain).out.neither).toEqual(['neither']);
    expect(configOf(guard, plain, { guard: { b: true } }).out.neither).toEqual([]);
  });

  it('the entries of an attribute set', () => {
    expect(configOf(guard, plain, { guard: { names: { p: 1, q: 2 } } }).out.pairs).toEqual(['p=1', 'q=2']);
  });

  it('an option default computed from another option', () => {
    const mod = ({ config }: any) => ({
      options: { fqdn: mkOption({ type: types.str, default: `${config.host}.example.org` }), host: mkOption({ type: types.str, default: 'web' }) },
    });
    expect(configOf(mod).fqdn).toBe('web.example.org');
    expect(configOf(mod, { host: 'db' }).fqdn).toBe('db.example.org');
  });

  it('getters and condition functions still work, beside plain reads', () => {
    const mod = ({ config }: any) => {
      const cfg = config.guard;
      return {
        out: {
          text: mkIf(() => cfg.size > 2, {
            get value() {
              return `${cfg.size} lines: ${cfg.lines.join(',')}`;
            },
          }.value),
          both: mkIf(cfg.a, [`x=${cfg.x}`]),
        },
      };
    };
    expect(deep(configOf(guard, mod, { guard: { a: true, x: 4 } }).out)).toMatchObject({ text: '3 lines: one,two', both: ['x=4'] });
    const lazy = ({ config }: any) => ({
      out: {
        get text() {
          return config.guard.lines.join('+');
        },
      },
    });
    expect(configOf(guard, lazy).out.text).toBe('one+two');
  });

  it('a module runs at most twice, and its list definitions count once', () => {
    let runs = 0;
    const mod = ({ config }: any) => {
      runs++;
      const cfg = config.guard;
      return { warnings: ['always', `x=${cfg.x}`], out: { both: cfg.lines.map((l: string) => l.toUpperCase()), text: `${cfg.size}` } };
    };
    const c = configOf(guard, mod, { warnings: ['user'] });
    expect(c.warnings).toEqual(['always', 'x=1', 'user']);
    expect(c.out.both).toEqual(['ONE', 'TWO']);
    expect(c.out.text).toBe('3');
    expect(runs).toBe(2);
  });

  it('specialArgs replace arguments in a second run as in the first (a lib of their own)', () => {
    const own = { ...lib, tag: (s: string) => `[${s}]` };
    const mod = ({ config, lib: l }: any) => ({ out: { text: l.tag(`${config.guard.size}`) } });
    const ev = evalModulesSync({ modules: [guard, mod], specialArgs: { lib: own } });
    expect((ev.config as any).out.text).toBe('[3]');
  });

  it('a module cannot change the arguments other modules get', () => {
    const changer = (args: any) => {
      args.lib = {};
      return {};
    };
    expect(errorOf(() => configOf(guard, changer))).toMatch(/read.only|not extensible|Cannot assign/);
  });

  it('a module that only reads options it defines itself (as references) works', () => {
    const mod = ({ config }: any) => ({ out: { both: ['mine'], neither: config.out.both } });
    expect(deep(configOf(guard, mod).out)).toMatchObject({ both: ['mine'], neither: ['mine'] });
  });

  it('a module computing with an option it defines or declares, where no cycle is needed', () => {
    const decl = { options: { a: mkOption({ type: types.int }), b: mkOption({ type: types.int }) } };
    const mod = ({ config }: any) => ({ a: 1, b: config.a + 1 });
    expect(configOf(decl, mod).a).toBe(1);
    expect(configOf(decl, mod).b).toBe(2);
    const hosts = ({ config }: any) => ({
      options: {
        host: mkOption({ type: types.str, default: 'web' }),
        domain: mkOption({ type: types.nullOr(types.str), default: null }),
        fqdn: mkOption({ type: types.str, default: config.domain === null ? config.host : `${config.host}.${config.domain}` }),
        line: mkOption({ type: types.str }),
      },
      config: { line: `${config.fqdn} ${config.host}` },
    });
    expect(deep(configOf(hosts))).toMatchObject({ fqdn: 'web', line: 'web web' });
    const withDomain = configOf(hosts, { domain: 'example.org' });
    expect(withDomain.line).toBe('web.example.org web');
    expect(withDomain.fqdn).toBe('web.example.org');
  });

  it('an option computed from itself is infinite recursion', () => {
    const decl = { options: { a: mkOption({ type: types.int }) } };
    expect(errorOf(() => configOf(decl, ({ config }: any) => ({ a: config.a + 1 })).a)).toMatch(/^infinite recursion encountered: `a' → `a'/);
  });

  it('a cycle between plain reads is infinite recursion naming the chain', () => {
    const decl = { options: { a: mkOption({ type: types.int }), b: mkOption({ type: types.int }) } };
    const one = ({ config }: any) => ({ a: config.b + 1, b: config.a + 1 });
    const a = ({ config }: any) => ({ a: config.b + 1 });
    const b = ({ config }: any) => ({ b: config.a + 1 });
    for (const modules of [[decl, one], [decl, a, b]]) {
      let err: unknown;
      try {
        evaluate(...modules).config.a;
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OptionError);
      expect((err as Error).message).toMatch(/^infinite recursion encountered: `a' → `b' → `a'/);
    }
  });

  // Module i defines `m<i+1>.c' and, on a condition read from config, `m<i-1>.d': its second run
  // reads `m<i>.c', whose definitions need module i-1's second run, and so on down the chain.
  const chain = (n: number, wrap: boolean) =>
    Array.from({ length: n }, (_, i) => ({ config }: any) => {
      const next = wrap ? (i + 1) % n : i + 1;
      const prev = wrap ? (i + n - 1) % n : i - 1;
      const defs: Record<string, unknown> = {};
      if (next < n) defs[`m${next}`] = { c: true };
      if (prev >= 0) defs[`m${prev}`] = mkIf(config[`m${i}`].c, { d: [`cond${i}`] });
      return { options: { [`m${i}`]: { c: lib.mkEnableOption('c'), d: mkOption({ type: types.listOf(types.str), default: [] }) } }, config: defs };
    });

  it('a chain of thousands of modules reading options the next defines evaluates', () => {
    for (const wrap of [false, true]) {
      const c = deep(configOf(...chain(3000, wrap)));
      expect(c.m0).toEqual({ c: wrap, d: ['cond1'] });
      expect(c.m1500).toEqual({ c: true, d: ['cond1501'] });
      expect(c.m2999).toEqual({ c: true, d: wrap ? ['cond0'] : [] });
    }
  });

  it('a cycle of thousands of options is infinite recursion naming the chain', () => {
    const n = 2000;
    const mods = Array.from({ length: n }, (_, i) => ({ config }: any) => ({
      options: { [`o${i}`]: mkOption({ type: types.int }) },
      config: {
        get [`o${i}`]() {
          return config[`o${(i + 1) % n}`] + 1;
        },
      },
    }));
    const msg = errorOf(() => configOf(...mods).o0);
    expect(msg).toMatch(/^infinite recursion encountered: `o0' → `o1' → `o2' → /);
    expect(msg).toContain("`o1998' → `o1999' → `o0'\n");
  });

  it('an option read through config that does not exist is an error when needed', () => {
    const mod = ({ config }: any) => ({ out: { text: mkIf(config.guard.a, config.guard.nope) } });
    expect(configOf(guard, mod).out.text).toBe('');
    expect(errorOf(() => configOf(guard, mod, { guard: { a: true } }).out.text)).toMatch(/The option `guard.nope' does not exist/);
  });

  it('imports cannot depend on config', () => {
    const mod = ({ config }: any) => ({ imports: [config.guard.lines] });
    expect(errorOf(() => evaluate(guard, mod))).toMatch(/`config.guard.lines' was needed while module `.*' was being loaded, before options have values/);
  });

  it('a module that fails on a first run stand-in says so', () => {
    const mod = ({ config }: any) => {
      if (config.guard.size < 1) throw new Error('size must be positive');
      return {};
    };
    const msg = errorOf(() => configOf(guard, mod));
    expect(msg).toContain('size must be positive');
    expect(msg).toContain('stand-ins');
  });
});
