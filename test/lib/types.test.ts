import { describe, expect, it } from 'vitest';
import { lib, Package, pkgs, SourcedModule, type OptionType } from '../../src/lib/index.js';
import { configOf, deep, errorOf, evaluate } from './helpers.js';

const { mkOption, mkIf, mkMerge, mkForce, mkDefault, mkBefore, mkAfter, mkOrder, types } = lib;

/** A module defined in a named file, so messages show where each definition came from. */
const from = (file: string, value: unknown): SourcedModule => new SourcedModule(value, { file }, file);

/** The value of an option `value` of `type`, defined once per extra argument (in a.ts, b.ts, …). */
function valueOf(type: OptionType, ...defs: unknown[]): unknown {
  return configOf({ options: { value: mkOption({ type }) } }, ...defs.map((d, i) => from(`${'abcdefgh'[i]}.ts`, { value: d }))).value;
}

const errorFor = (type: OptionType, ...defs: unknown[]): string => errorOf(() => deep(valueOf(type, ...defs)));

describe('types: scalars (all definitions must be equal)', () => {
  const cases: [string, OptionType, unknown, unknown, unknown, string][] = [
    ['bool', types.bool, true, false, 'yes', 'boolean'],
    ['int', types.int, 3, 4, 1.5, 'signed integer'],
    ['ints.unsigned', types.ints.unsigned, 0, 1, -23, 'unsigned integer, meaning >=0'],
    ['ints.positive', types.ints.positive, 1, 2, 0, 'positive integer, meaning >0'],
    ['ints.between', types.ints.between(-21, 43), 42, -21, -23, 'integer between -21 and 43 (both inclusive)'],
    ['ints.u8', types.ints.u8, 255, 0, 256, '8 bit unsigned integer; between 0 and 255 (both inclusive)'],
    ['ints.u16', types.ints.u16, 65535, 0, 65536, '16 bit unsigned integer'],
    ['ints.u32', types.ints.u32, 2 ** 32 - 1, 0, 2 ** 32, '32 bit unsigned integer'],
    ['port', types.port, 22, 80, 70000, '16 bit unsigned integer'],
    ['float', types.float, 1.5, 2.5, 'x', 'floating point number'],
    ['str', types.str, 'a', 'b', 1, 'string'],
    ['strMatching', types.strMatching('[a-z]+'), 'abc', 'xyz', 'abc1', 'string matching the pattern [a-z]+'],
    ['nonEmptyStr', types.nonEmptyStr, 'x', 'y', '  ', 'non-empty string'],
    ['path', types.path, '/etc', '/srv', 'etc/x', 'absolute path'],
    ['enum', types.enum(['a', 'b']), 'a', 'b', 'c', 'one of "a", "b"'],
  ];
  for (const [name, type, good, other, bad, description] of cases) {
    describe(name, () => {
      it('accepts a valid value', () => {
        expect(valueOf(type, good)).toBe(good);
      });
      it('merges equal definitions', () => {
        expect(valueOf(type, good, good, good)).toBe(good);
      });
      it('rejects an invalid value, naming the type and the definition', () => {
        const msg = errorFor(type, good, bad);
        expect(msg).toContain("A definition for option `value' is not of type `" + description);
        expect(msg).toContain(`- In \`b.ts': ${JSON.stringify(bad)}`);
        expect(msg).not.toContain('a.ts');
      });
      it('reports different definitions as a conflict listing both', () => {
        const msg = errorFor(type, good, other);
        expect(msg).toContain("The option `value' has conflicting definition values:");
        expect(msg).toContain(`- In \`a.ts': ${JSON.stringify(good)}`);
        expect(msg).toContain(`- In \`b.ts': ${JSON.stringify(other)}`);
        expect(msg).toContain('!mkForce');
        expect(msg).toContain('!mkDefault');
      });
    });
  }

  it('int rejects non-integers and strings', () => {
    expect(errorFor(types.int, '1')).toMatch(/not of type `signed integer'/);
    expect(errorFor(types.int, 2.5)).toMatch(/not of type `signed integer'/);
  });

  it('integer bounds are inclusive', () => {
    expect(valueOf(types.ints.between(-21, 43), 43)).toBe(43);
    expect(errorFor(types.ints.between(-21, 43), 44)).toMatch(/between -21 and 43/);
    expect(valueOf(types.ints.u8, 0)).toBe(0);
    expect(errorFor(types.ints.u8, -1)).toMatch(/8 bit unsigned/);
    expect(errorFor(types.port, 65536)).toMatch(/not of type/);
  });

  it('float accepts whole numbers (JavaScript has one number type) but not NaN or Infinity', () => {
    expect(valueOf(types.float, 2)).toBe(2);
    expect(errorFor(types.float, Infinity)).toMatch(/floating point/);
    expect(errorFor(types.float, NaN)).toMatch(/floating point/);
  });

  it('strMatching matches the whole string', () => {
    expect(errorFor(types.strMatching('[a-z]+'), '1abc')).toMatch(/not of type/);
    expect(valueOf(types.strMatching('a|b'), 'b')).toBe('b');
    expect(errorFor(types.strMatching('a|b'), 'ab')).toMatch(/not of type/);
  });

  it('nonEmptyStr rejects the empty string', () => {
    expect(errorFor(types.nonEmptyStr, '')).toMatch(/non-empty string/);
  });

  it('enum values can be numbers and booleans', () => {
    const t = types.enum([1, true, 'x']);
    expect(valueOf(t, 1)).toBe(1);
    expect(valueOf(t, true)).toBe(true);
    expect(errorFor(t, '1')).toMatch(/one of 1, true, "x"/);
  });

  it('an empty enum accepts nothing', () => {
    expect(errorFor(types.enum([]), 'a')).toMatch(/impossible \(empty enum\)/);
  });

  it('two declarations of an enum option accept the values of both', () => {
    const decl1 = { options: { mode: mkOption({ type: types.enum(['a', 'b']), default: 'a' }) } };
    const decl2 = { options: { mode: mkOption({ type: types.enum(['c']) }) } };
    expect(configOf(decl1, decl2, { mode: 'c' }).mode).toBe('c');
    expect(configOf(decl1, decl2, { mode: 'b' }).mode).toBe('b');
    expect(configOf(decl1, decl2).mode).toBe('a');
    expect(errorOf(() => configOf(decl1, decl2, { mode: 'd' }).mode)).toMatch(/one of "a", "b", "c"/);
  });

  it('a type error is raised even when other definitions are valid', () => {
    expect(errorFor(types.ints.unsigned, [], 42)).toMatch(/not of type `unsigned integer/);
  });
});

describe('types: separated strings (concatenated in order)', () => {
  it('lines joins with newlines in definition order', () => {
    expect(valueOf(types.lines, 'a', 'b', 'c')).toBe('a\nb\nc');
  });
  it('commas joins with commas', () => {
    expect(valueOf(types.commas, 'a', 'b')).toBe('a,b');
  });
  it('separatedString joins with its separator', () => {
    expect(valueOf(types.separatedString(':'), '/bin', '/usr/bin')).toBe('/bin:/usr/bin');
    expect(valueOf(types.separatedString(''), 'ab', 'cd')).toBe('abcd');
  });
  it('a single definition is kept as is', () => {
    expect(valueOf(types.lines, 'only')).toBe('only');
  });
  it('mkBefore and mkAfter reorder the pieces', () => {
    expect(valueOf(types.lines, 'mid', mkAfter('last'), mkBefore('first'))).toBe('first\nmid\nlast');
  });
  it('only definitions of the winning priority are joined', () => {
    expect(valueOf(types.lines, mkDefault('dropped'), 'a', 'b')).toBe('a\nb');
  });
  it('rejects non-strings', () => {
    expect(errorFor(types.lines, 'a', 3)).toMatch(/not of type `lines'|not of type `strings concatenated/);
  });
  it('two declarations with different separators cannot merge', () => {
    const msg = errorOf(() =>
      configOf({ options: { s: mkOption({ type: types.separatedString(':') }) } }, { options: { s: mkOption({ type: types.separatedString(',') }) } }).s,
    );
    expect(msg).toMatch(/already declared/);
  });
});

describe('types.listOf', () => {
  const list = types.listOf(types.str);
  it('concatenates definitions in definition order', () => {
    expect(valueOf(list, ['a', 'b'], ['c'], [], ['d'])).toEqual(['a', 'b', 'c', 'd']);
  });
  it('mkBefore, mkAfter and mkOrder sort definitions, stable within one order', () => {
    expect(valueOf(list, ['mid1'], mkAfter(['after']), mkBefore(['before']), ['mid2'], mkOrder(200, ['first']))).toEqual([
      'first',
      'before',
      'mid1',
      'mid2',
      'after',
    ]);
  });
  it('mkIf inside elements drops or keeps each element', () => {
    expect(valueOf(list, ['a', mkIf(false, 'b'), mkIf(true, 'c')])).toEqual(['a', 'c']);
  });
  it('mkMerge inside an element is not a list splice: an element is one value', () => {
    expect(valueOf(types.listOf(types.lines), [mkMerge(['x', 'y'])])).toEqual(['x\ny']);
  });
  it('checks elements, naming the definition and entry', () => {
    const msg = errorFor(list, ['a'], ['b', 3]);
    expect(msg).toContain("value.[definition 2-entry 2]' is not of type `string'");
    expect(msg).toContain('- In `b.ts');
  });
  it('rejects a non-list', () => {
    expect(errorFor(list, 'a')).toMatch(/not of type `list of string'/);
  });
  it('elements of submodule type are evaluated', () => {
    const t = types.listOf(types.submodule({ options: { n: mkOption({ type: types.int, default: 1 }) } }));
    expect(deep(valueOf(t, [{}, { n: 5 }]))).toEqual([{ n: 1 }, { n: 5 }]);
  });
  it('mkDefault on a whole list loses to a plain list', () => {
    expect(valueOf(list, mkDefault(['default']), ['x'])).toEqual(['x']);
  });
});

describe('types.attrsOf and lazyAttrsOf', () => {
  it('merges per key', () => {
    expect(deep(valueOf(types.attrsOf(types.int), { a: 1 }, { b: 2 }, { a: 1 }))).toEqual({ a: 1, b: 2 });
  });
  it('merges the definitions of one key with the element type', () => {
    expect(deep(valueOf(types.attrsOf(types.listOf(types.str)), { a: ['x'] }, { a: ['y'], b: [] }))).toEqual({ a: ['x', 'y'], b: [] });
  });
  it('reports a conflict under the key', () => {
    const msg = errorFor(types.attrsOf(types.int), { a: 1 }, { a: 2 });
    expect(msg).toContain("The option `value.a' has conflicting definition values");
    expect(msg).toContain('- In `a.ts');
    expect(msg).toContain('- In `b.ts');
  });
  it('priorities apply per key', () => {
    expect(deep(valueOf(types.attrsOf(types.int), { a: mkDefault(1), b: 1 }, { a: 2, b: mkForce(3) }))).toEqual({ a: 2, b: 3 });
  });
  it('attrsOf: mkIf false drops the key', () => {
    const v = valueOf(types.attrsOf(types.str), { a: mkIf(false, 'x'), b: 'y' }) as Record<string, unknown>;
    expect('a' in v).toBe(false);
    expect(Object.keys(v)).toEqual(['b']);
  });
  it('lazyAttrsOf: mkIf false keeps the key, and reading it is an error', () => {
    const v = valueOf(types.lazyAttrsOf(types.str), { a: mkIf(false, 'x'), b: 'y' }) as Record<string, unknown>;
    expect('a' in v).toBe(true);
    expect(v.b).toBe('y');
    expect(errorOf(() => v.a)).toMatch(/`value.a' was accessed but has no value defined/);
  });
  it('attrsOf evaluates every value to know its keys; lazyAttrsOf does not (NixOS attrsOf-lazy-check)', () => {
    const mod = ({ config }: any) => ({
      options: { isLazy: mkOption({ type: types.bool }) },
      config: {
        get isLazy() {
          return !('foo' in config.value);
        },
        value: {
          get bar(): string {
            throw new Error('is not lazy');
          },
        },
      },
    });
    const decl = (t: OptionType) => ({ options: { value: mkOption({ type: t, default: {} }) } });
    expect(configOf(decl(types.lazyAttrsOf(types.str)), mod).isLazy).toBe(true);
    expect(errorOf(() => configOf(decl(types.attrsOf(types.str)), mod).isLazy)).toMatch(/is not lazy/);
  });
  it('a mkIf-wrapped attribute set is pushed into its keys', () => {
    expect(deep(valueOf(types.attrsOf(types.int), mkIf(true, { a: 1 }), mkIf(false, { b: 2 })))).toEqual({ a: 1 });
  });
  it('rejects a non-object', () => {
    expect(errorFor(types.attrsOf(types.int), [1])).toMatch(/not of type `attribute set of signed integer'/);
  });
});

describe('types.submodule', () => {
  const userType = types.submodule(({ name }: any) => ({
    options: {
      name: mkOption({ type: types.str, default: name }),
      uid: mkOption({ type: types.nullOr(types.int), default: null }),
      groups: mkOption({ type: types.listOf(types.str), default: [] }),
    },
  }));
  const users = { options: { users: mkOption({ type: types.attrsOf(userType), default: {} }) } };

  it('evaluates each value as a nested module evaluation', () => {
    expect(deep(configOf(users, { users: { alice: { uid: 1000 } } }).users)).toEqual({ alice: { name: 'alice', uid: 1000, groups: [] } });
  });
  it('the name argument is the attribute name', () => {
    const c = configOf(users, { users: { alice: {}, bob: {} } });
    expect(c.users.alice.name).toBe('alice');
    expect(c.users.bob.name).toBe('bob');
  });
  it('definitions from several modules are merged', () => {
    const c = configOf(users, { users: { alice: { groups: ['wheel'] } } }, { users: { alice: { uid: 1, groups: ['audio'] } } });
    expect(deep(c.users.alice)).toEqual({ name: 'alice', uid: 1, groups: ['wheel', 'audio'] });
  });
  it('a definition can be a module function receiving the submodule config and name', () => {
    const c = configOf(users, { users: { carol: ({ name, config }: any) => ({ uid: 7, groups: [name, mkIf(() => config.uid === 7, 'seven')] }) } });
    expect(c.users.carol.groups).toEqual(['carol', 'seven']);
  });
  it('unknown sub-options are errors naming the full path', () => {
    const msg = errorOf(() => deep(configOf(users, { users: { alice: { shell: 'zsh' } } }).users));
    expect(msg).toMatch(/The option `users.alice.shell' does not exist/);
  });
  it('sub-option type errors name the full path', () => {
    expect(errorOf(() => configOf(users, { users: { alice: { uid: 'x' } } }).users.alice.uid)).toMatch(/`users.alice.uid' is not of type `null or signed integer'/);
  });
  it('a plain submodule definition is only config (shorthand): `options` there is an option name', () => {
    const msg = errorOf(() => deep(configOf(users, { users: { alice: { options: { x: mkOption({}) } } } }).users));
    expect(msg).toMatch(/`users.alice.options' does not exist/);
  });
  it('an option declared twice with submodule types merges their options', () => {
    const a = { options: { svc: mkOption({ type: types.submodule({ options: { a: mkOption({ type: types.int, default: 1 }) } }), default: {} }) } };
    const b = { options: { svc: mkOption({ type: types.submodule({ options: { b: mkOption({ type: types.int, default: 2 }) } }) }) } };
    const c = { options: { svc: mkOption({ type: types.submodule({ options: { c: mkOption({ type: types.int, default: 3 }) } }) }) } };
    expect(deep(configOf(a, b).svc)).toEqual({ a: 1, b: 2 });
    expect(deep(configOf(a, b, c, { svc: { c: 4 } }).svc)).toEqual({ a: 1, b: 2, c: 4 });
  });
  it('attrsOf submodule declared twice merges the submodule options', () => {
    const a = { options: { m: mkOption({ type: types.attrsOf(types.submodule({ options: { a: mkOption({ default: 1 }) } })) }) } };
    const b = { options: { m: mkOption({ type: types.attrsOf(types.submodule({ options: { b: mkOption({ default: 2 }) } })) }) } };
    expect(deep(configOf(a, b, { m: { x: {} } }).m)).toEqual({ x: { a: 1, b: 2 } });
  });
  it('submoduleWith passes specialArgs to its modules', () => {
    const t = types.submoduleWith({ modules: [({ foo }: any) => ({ options: { foo: mkOption({ default: foo }) } })], specialArgs: { foo: 'foo' } });
    expect(configOf({ options: { sub: mkOption({ type: t, default: {} }) } }).sub.foo).toBe('foo');
  });
  it('submoduleWith without shorthand reads a plain definition as a full module', () => {
    const decl = (shorthand: boolean) => ({
      options: {
        sub: mkOption({
          type: types.submoduleWith({ modules: [{ options: { config: mkOption({ type: types.bool, default: false }) } }], shorthandOnlyDefinesConfig: shorthand }),
          default: {},
        }),
      },
    });
    expect(configOf(decl(true), { sub: { config: true } }).sub.config).toBe(true);
    expect(configOf(decl(false), { sub: { config: { config: true } } }).sub.config).toBe(true);
    expect(errorOf(() => deep(configOf(decl(false), { sub: { config: true } }).sub))).toMatch(/is a set of options, not an option/);
  });
  it('submodule type merges: a submodule of a submodule', () => {
    const inner = types.submodule({ options: { x: mkOption({ type: types.int, default: 0 }) } });
    const outer = types.submodule({ options: { inner: mkOption({ type: inner, default: {} }) } });
    expect(configOf({ options: { o: mkOption({ type: outer, default: {} }) } }, { o: { inner: { x: 9 } } }).o.inner.x).toBe(9);
  });
});

describe('mkForce and mkIf with attrsOf submodule (NixOS attrsOfSub cases)', () => {
  const decl = { options: { attrsOfSub: mkOption({ default: {}, type: types.attrsOf(types.submodule({ options: { enable: lib.mkEnableOption('foo') } })) }) } };
  const declEnable = { options: { enable: lib.mkEnableOption('top') } };

  it('an empty definition gives the sub-option defaults; missing keys are absent', () => {
    const c = configOf(decl, { attrsOfSub: { foo: {} } });
    expect(c.attrsOfSub.foo.enable).toBe(false);
    expect(c.attrsOfSub.bar).toBeUndefined();
    expect(configOf(decl).attrsOfSub.foo).toBeUndefined();
  });

  const forces: [string, object][] = [
    ['the whole config', mkForce({ attrsOfSub: { foo: { enable: false } } })],
    ['the attribute set', { attrsOfSub: mkForce({ foo: { enable: false } }) }],
    ['one submodule', { attrsOfSub: { foo: mkForce({ enable: false }) } }],
    ['one sub-option', { attrsOfSub: { foo: { enable: mkForce(false) } } }],
  ];
  for (const [where, forced] of forces) {
    it(`mkForce on ${where} wins over a plain definition`, () => {
      expect(configOf(decl, { attrsOfSub: { foo: { enable: true } } }, forced).attrsOfSub.foo.enable).toBe(false);
    });
  }
  it('mkForce above a key hides other keys defined at normal priority; below it does not', () => {
    const others = [decl, { attrsOfSub: { foo: {} } }, { attrsOfSub: { bar: { enable: true } } }];
    expect(configOf(...others).attrsOfSub.bar.enable).toBe(true);
    expect(configOf(...others, forces[0]![1]).attrsOfSub.bar).toBeUndefined();
    expect(configOf(...others, forces[1]![1]).attrsOfSub.bar).toBeUndefined();
    expect(configOf(...others, forces[2]![1]).attrsOfSub.bar.enable).toBe(true);
    expect(configOf(...others, forces[3]![1]).attrsOfSub.bar.enable).toBe(true);
  });

  const conds: [string, (c: any) => unknown][] = [
    ['the whole config', (config) => mkIf(config.enable, { attrsOfSub: { foo: { enable: true } } })],
    ['the attribute set', (config) => ({ attrsOfSub: mkIf(config.enable, { foo: { enable: true } }) })],
    ['one submodule', (config) => ({ attrsOfSub: { foo: mkIf(config.enable, { enable: true }) } })],
  ];
  for (const [where, def] of conds) {
    it(`mkIf on ${where}: the key exists only when the condition holds`, () => {
      const mod = ({ config }: any) => ({ config: def(config) });
      expect(configOf(declEnable, decl, mod).attrsOfSub.foo).toBeUndefined();
      expect(configOf(declEnable, decl, mod, { enable: true }).attrsOfSub.foo.enable).toBe(true);
    });
  }
  it('mkIf on one sub-option: the key exists, the sub-option keeps its default', () => {
    const mod = ({ config }: any) => ({ attrsOfSub: { foo: { enable: mkIf(config.enable, true) } } });
    expect(configOf(declEnable, decl, mod).attrsOfSub.foo.enable).toBe(false);
    expect(configOf(declEnable, decl, mod, { enable: true }).attrsOfSub.foo.enable).toBe(true);
  });
});

describe('types.nullOr', () => {
  const t = types.nullOr(types.int);
  it('all null is null', () => {
    expect(valueOf(t, null, null)).toBeNull();
  });
  it('all non-null merges with the element type', () => {
    expect(valueOf(t, 5, 5)).toBe(5);
    expect(errorFor(t, 5, 6)).toMatch(/conflicting definition values/);
  });
  it('null mixed with non-null is an error listing the definitions', () => {
    const msg = errorFor(t, null, 5);
    expect(msg).toContain("The option `value' is defined both null and not null");
    expect(msg).toContain("- In `a.ts': null");
    expect(msg).toContain("- In `b.ts': 5");
  });
  it('checks the element type', () => {
    expect(errorFor(t, 'x')).toMatch(/not of type `null or signed integer'/);
  });
  it('nullOr listOf concatenates lists', () => {
    expect(valueOf(types.nullOr(types.listOf(types.int)), [1], [2])).toEqual([1, 2]);
  });
});

describe('types.either and oneOf', () => {
  const e = types.either(types.int, types.str);
  it('accepts either type', () => {
    expect(valueOf(e, 42)).toBe(42);
    expect(valueOf(e, '24')).toBe('24');
  });
  it('rejects values of neither type', () => {
    expect(errorFor(e, [])).toMatch(/not of type `signed integer or string'/);
  });
  it('definitions all of one type merge with that type', () => {
    expect(valueOf(types.either(types.listOf(types.int), types.str), [1], [2])).toEqual([1, 2]);
    expect(valueOf(types.either(types.int, types.lines), 'a', 'b')).toBe('a\nb');
  });
  it('definitions of different types are an error', () => {
    expect(errorFor(e, 42, '24')).toMatch(/`value' is defined multiple times/);
  });
  it('oneOf accepts any of its types', () => {
    const o = types.oneOf([types.int, types.listOf(types.int), types.str]);
    expect(valueOf(o, 42)).toBe(42);
    expect(valueOf(o, [])).toEqual([]);
    expect(valueOf(o, '24')).toBe('24');
    expect(errorFor(o, true)).toMatch(/not of type `signed integer or list of signed integer or string'/);
  });
  it('oneOf needs at least one type', () => {
    expect(() => types.oneOf([])).toThrow(/at least one type/);
  });
});

describe('types.uniq and unique', () => {
  it('one definition is fine', () => {
    expect(valueOf(types.uniq(types.int), 1)).toBe(1);
  });
  it('several definitions are an error, even when equal', () => {
    const msg = errorFor(types.uniq(types.int), 1, 1);
    expect(msg).toContain("The option `value' is defined multiple times while it's expected to be unique.");
    expect(msg).toContain('- In `a.ts');
    expect(msg).toContain('- In `b.ts');
  });
  it('unique adds its message', () => {
    expect(errorFor(types.unique({ message: 'Only one host may own this.' }, types.str), 'a', 'b')).toContain('Only one host may own this.');
  });
  it('a higher priority definition makes the others irrelevant', () => {
    expect(valueOf(types.uniq(types.int), 1, mkForce(2))).toBe(2);
  });
  it('checks the element type', () => {
    expect(errorFor(types.uniq(types.int), 'x')).toMatch(/not of type `signed integer'/);
  });
  it('uniq of a list does not concatenate', () => {
    expect(errorFor(types.uniq(types.listOf(types.int)), [1], [2])).toMatch(/defined multiple times/);
  });
});

describe('types.package', () => {
  it('a string is coerced to a Package', () => {
    const v = valueOf(types.package, 'openssh-server');
    expect(v).toBeInstanceOf(Package);
    expect((v as Package).name).toBe('openssh-server');
    expect(v).toBe(pkgs['openssh-server']);
  });
  it('a Package is kept', () => {
    expect(valueOf(types.package, pkgs.nginx)).toBe(pkgs.nginx);
  });
  it('accepts an architecture qualifier', () => {
    expect((valueOf(types.package, 'libc6:amd64') as Package).name).toBe('libc6:amd64');
  });
  it('rejects names that are not Debian package names', () => {
    expect(errorFor(types.package, 'Not A Package')).toMatch(/not of type `package'/);
    expect(errorFor(types.package, 3)).toMatch(/not of type `package'/);
  });
  it('must be defined once', () => {
    expect(errorFor(types.package, 'vim', 'nano')).toMatch(/defined multiple times/);
  });
  it('mkPackageOption defaults to the package of that name', () => {
    const c = configOf({ options: { editor: lib.mkPackageOption('vim'), shell: lib.mkPackageOption('shell', { default: 'zsh' }) } });
    expect(c.editor).toBe(pkgs.vim);
    expect(c.shell).toBe(pkgs.zsh);
    expect(configOf({ options: { editor: lib.mkPackageOption('vim') } }, { editor: 'neovim' }).editor).toBe(pkgs.neovim);
  });
});

describe('types.anything', () => {
  it('merges attribute sets recursively', () => {
    expect(deep(valueOf(types.anything, { l1: { l2: { a: null } } }, { l1: { l2: { b: null }, c: 1 } }, { d: 'x' }))).toEqual({
      l1: { l2: { a: null, b: null }, c: 1 },
      d: 'x',
    });
  });
  it('equal atoms of every kind are fine', () => {
    expect(deep(valueOf(types.anything, { int: 0, bool: false, str: '', null: null, float: 0.1 }, { int: 0, bool: false, str: '', null: null, float: 0.1 }))).toEqual({
      int: 0,
      bool: false,
      str: '',
      null: null,
      float: 0.1,
    });
  });
  it('lists are not concatenated', () => {
    expect(errorFor(types.anything, [1], [2])).toMatch(/conflicting definition values/);
    expect(valueOf(types.anything, [1], [1])).toEqual([1]);
  });
  it('conflicting kinds are an error naming them', () => {
    const msg = errorFor(types.anything, { a: 1 }, 'x');
    expect(msg).toContain("The option `value' has conflicting option types");
    expect(msg).toContain("- In `a.ts': set");
    expect(msg).toContain("- In `b.ts': string");
  });
  it('conflicting kinds below the top name the nested path', () => {
    expect(errorFor(types.anything, { a: { b: 1 } }, { a: { b: [] } })).toContain("`value.a.b' has conflicting option types");
  });
  it('applies every property inside (NixOS types-anything/mk-mods)', () => {
    const v = deep(
      valueOf(
        types.anything,
        mkMerge([
          { mkiffalse: mkIf(false, {}) },
          { mkiftrue: mkIf(true, {}) },
          { mkdefault: mkDefault(0) },
          { mkdefault: 1 },
          { mkmerge: mkMerge([{}]) },
          { mkbefore: mkBefore(true) },
          { nested: mkMerge([{ foo: mkDefault(0), bar: mkIf(false, 0) }, mkIf(true, { foo: mkIf(true, mkForce(1)), bar: { baz: mkDefault('baz') } })]) },
        ]),
      ),
    ) as Record<string, unknown>;
    expect('mkiffalse' in v).toBe(false);
    expect(v).toEqual({ mkiftrue: {}, mkdefault: 1, mkmerge: {}, mkbefore: true, nested: { foo: 1, bar: { baz: 'baz' } } });
  });
  it('functions are merged by applying them', () => {
    const f = valueOf(types.anything, (x: number) => ({ a: x }), (x: number) => ({ b: x + 1 })) as (x: number) => unknown;
    expect(deep(f(1))).toEqual({ a: 1, b: 2 });
  });
  it('packages must be defined once', () => {
    expect(valueOf(types.anything, pkgs.vim)).toBe(pkgs.vim);
    expect(errorFor(types.anything, pkgs.vim, pkgs.vim)).toMatch(/defined multiple times/);
  });
});

describe('types.raw', () => {
  const decl = {
    options: {
      processedToplevel: mkOption({ type: types.raw }),
      unprocessedNesting: mkOption({ type: types.raw }),
      multiple: mkOption({ type: types.raw }),
      priorities: mkOption({ type: types.raw }),
    },
  };
  const defs = {
    processedToplevel: mkIf(true, 10),
    unprocessedNesting: {
      get foo(): unknown {
        throw new Error('foo');
      },
      bar: mkIf(false, 1),
    },
    multiple: mkMerge(['foo', 'foo']),
    priorities: mkMerge(['foo', mkForce('bar')]),
  };
  it('properties at the top are applied', () => {
    expect(configOf(decl, defs).processedToplevel).toBe(10);
    expect(configOf(decl, defs).priorities).toBe('bar');
  });
  it('nested values are kept unprocessed and unevaluated', () => {
    const v = configOf(decl, defs).unprocessedNesting;
    expect(typeof v).toBe('object');
    expect(() => v.foo).toThrow('foo');
    expect(v.bar).toBeInstanceOf(Object);
    expect(v.bar).not.toBe(1);
  });
  it('must be defined once', () => {
    expect(errorOf(() => configOf(decl, defs).multiple)).toMatch(/`multiple' is defined multiple times/);
  });
});

describe('declarations merge types', () => {
  it('the same type declared twice is fine', () => {
    expect(configOf({ options: { x: mkOption({ type: types.int }) } }, { options: { x: mkOption({ type: types.int, default: 2 }) } }).x).toBe(2);
  });
  it('different types cannot merge', () => {
    expect(errorOf(() => configOf({ options: { x: mkOption({ type: types.int }) } }, { options: { x: mkOption({ type: types.str }) } }).x)).toMatch(
      /The option `x' in .* is already declared in/,
    );
  });
  it('listOf types merge element types (enum values united)', () => {
    const c = configOf(
      { options: { xs: mkOption({ type: types.listOf(types.enum(['a'])), default: [] }) } },
      { options: { xs: mkOption({ type: types.listOf(types.enum(['b'])) }) } },
      { xs: ['a', 'b'] },
    );
    expect(c.xs).toEqual(['a', 'b']);
  });
  it('an option without a type is of type anything', () => {
    expect(deep(configOf({ options: { x: mkOption({}) } }, { x: { a: 1 } }, { x: { b: 2 } }).x)).toEqual({ a: 1, b: 2 });
  });
  it('options.x.type is the merged type', () => {
    const ev = evaluate({ options: { x: mkOption({ type: types.enum(['a']) }) } }, { options: { x: mkOption({ type: types.enum(['b']) }) } });
    expect((ev.options as any).x.type.description).toBe('one of "a", "b"');
  });
});

describe('getSubOptions (the options inside a type, as nixpkgs types give them)', () => {
  const port = { options: { port: mkOption({ type: types.port, default: 22 }) } };
  const found = (type: OptionType) => {
    const sub = type.getSubOptions(['x']);
    return sub && { prefix: sub.prefix, options: [...sub.declarations.options()].map((o) => o.path.join('.')) };
  };
  it("a submodule's options, through attrsOf (`<name>`), listOf (`*`), nullOr and uniq", () => {
    expect(found(types.submodule(port))).toEqual({ prefix: ['x'], options: ['port'] });
    expect(found(types.attrsOf(types.listOf(types.submodule(port))))).toEqual({ prefix: ['x', '<name>', '*'], options: ['port'] });
    expect(found(types.nullOr(types.uniq(types.lazyAttrsOf(types.submodule(port)))))).toEqual({ prefix: ['x', '<name>'], options: ['port'] });
  });
  it('none for types without options inside', () => {
    for (const t of [types.str, types.attrsOf(types.int), types.listOf(types.anything), types.either(types.str, types.submodule(port))]) expect(t.getSubOptions()).toBeUndefined();
  });
});
