// Cases of nixpkgs' lib/tests/modules.sh, written as cairn modules, each with NixOS's expected value or error.
import { describe, expect, it } from 'vitest';
import { lib, SourcedModule } from '../../src/lib/index.js';
import { configOf, deep, errorOf, evaluate } from './helpers.js';

const { mkOption, mkIf, types } = lib;
const from = (file: string, value: unknown): SourcedModule => new SourcedModule(value, { file }, file);

describe('readOnly (modules.nix evalOptionValue)', () => {
  const roDefault = { options: { x: mkOption({ type: types.int, readOnly: true, default: 1 }) } };
  it('a read-only option with a default and a definition is set multiple times', () => {
    const msg = errorOf(() => configOf(roDefault, from('user.ts', { x: 2 })).x);
    expect(msg).toContain("The option `x' is read-only, but it's set multiple times.");
    expect(msg).toContain("- In `user.ts': 2");
  });
  it('a definition at any priority counts', () => {
    expect(() => configOf(roDefault, { x: lib.mkForce(2) }).x).toThrow(/read-only, but it's set multiple times/);
  });
  it('exactly one definition is accepted', () => {
    expect(configOf(roDefault).x).toBe(1);
    expect(configOf({ options: { x: mkOption({ type: types.int, readOnly: true }) } }, { x: 2 }).x).toBe(2);
  });
});

describe('meta (shorthand-meta.nix)', () => {
  const decl = ({ config }: any) => ({
    options: {
      meta: { foo: mkOption({ type: types.listOf(types.str) }) },
      result: mkOption({
        get default() {
          return (config.meta.foo as string[]).join(' ');
        },
      }),
    },
  });
  it("a module's meta defines config.meta, once", () => {
    expect(configOf({ imports: [decl, { meta: { foo: ['one', 'two'] } }] }).result).toBe('one two');
  });
  it('meta beside explicit config also defines config.meta', () => {
    expect(configOf(decl, { meta: { foo: ['a'] }, config: {} }).meta.foo).toEqual(['a']);
  });
});

describe('module keys (disable-module-with-toString-key.nix)', () => {
  const declEnable = { options: { enable: mkOption({ type: types.bool, default: false }) } };
  const withKey = { key: 123, config: { enable: true } };
  it('a numeric key names the module: disabledModules [123] leaves it out', () => {
    expect(configOf(declEnable, withKey).enable).toBe(true);
    expect(configOf(declEnable, withKey, { disabledModules: [123] }).enable).toBe(false);
  });
  it('two modules with one numeric key count once', () => {
    const list = { options: { l: mkOption({ type: types.listOf(types.int) }) } };
    expect(configOf(list, { key: 7, l: [1] }, { key: 7, l: [1] }).l).toEqual([1]);
  });
});

describe('renamed options warn through config.warnings (doRename-warnings.nix)', () => {
  it('the warning is in config.warnings', () => {
    const c = configOf(
      lib.mkRenamedOptionModule(['a', 'b'], ['c', 'd', 'e']),
      { options: { warnings: mkOption({ type: types.listOf(types.str) }), c: { d: { e: mkOption({}) } } } },
      from('doRename-warnings.ts', { a: { b: 1234 } }),
    );
    expect(c.c.d.e).toBe(1234);
    expect(c.warnings).toEqual(["The option `a.b' defined in `doRename-warnings.ts' has been renamed to `c.d.e'."]);
  });
  it('no definition of the old name, no warning', () => {
    const c = configOf(lib.mkRenamedOptionModule(['a', 'b'], ['c']), { options: { warnings: mkOption({ type: types.listOf(types.str), default: [] }), c: mkOption({ default: 1 }) } });
    expect(c.warnings).toEqual([]);
  });
});

describe('exceptions thrown by module code', () => {
  it('a module function that throws: its message and where, not an internal error', () => {
    const msg = errorOf(() =>
      configOf(() => {
        throw new Error('boom from the module');
      }),
    );
    expect(msg).toMatch(/nixos-semantics\.test\.ts:\d+:\d+: boom from the module/);
    expect(msg).toContain('while loading the module');
  });
  it('a definition getter that throws names the option', () => {
    const msg = errorOf(
      () =>
        configOf({ options: { x: mkOption({ type: types.int }) } }, {
          get x(): number {
            throw new Error('no x here');
          },
        }).x,
    );
    expect(msg).toMatch(/nixos-semantics\.test\.ts:\d+:\d+: no x here/);
    expect(msg).toContain("while evaluating the option `x'");
  });
});

describe('mkOption under config (error-mkOption-in-config.nix)', () => {
  it('hints at options, without printing the declaration internals', () => {
    const msg = errorOf(() => evaluate({ config: { wrong1: mkOption({ type: types.int, description: 'secret internals' }) } }));
    expect(msg).toContain("The option `wrong1' does not exist.");
    expect(msg).toContain("It seems as if you're trying to declare an option by placing it into `config' rather than `options'!");
    expect(msg).not.toContain('secret internals');
  });
  it('nested too', () => {
    const msg = errorOf(() => evaluate({ config: { nest: { wrong2: mkOption({}) } } }));
    expect(msg).toMatch(/`nest' does not exist[\s\S]*trying to declare an option by placing it into `config'/);
  });
});

// emptyValues.nix itself: test/lib/nixos-modules-suite.test.ts.
describe('emptyValue (attrsOf-conditional-check.nix, defaults.nix)', () => {
  it('attrsOf drops the entry; an option without a definition holds its type’s empty value (defaults.nix)', () => {
    const c = configOf({ options: { value: mkOption({ type: types.attrsOf(types.str) }) } }, { value: { foo: mkIf(false, 'x') } });
    expect('foo' in c.value).toBe(false);
    expect(configOf({ options: { l: mkOption({ type: types.listOf(types.int) }) } }).l).toEqual([]);
    expect(() => configOf({ options: { i: mkOption({ type: types.int }) } }).i).toThrow(/The option `i' was accessed but has no value defined/);
  });
});
