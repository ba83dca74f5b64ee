// nixpkgs' module-system test suite (lib/tests/modules.sh with lib/tests/modules/*.nix), ported:
// each `describe` is one of its .nix files (or a group of them), each check is written as cairn
// modules (TypeScript objects, or files where paths matter) and asserts NixOS's expected value or
// a substring of its error message. Checks of features cairn does not have are not ported.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalModules, evalModulesSync, lib, SourcedModule, type ModuleInput } from '../../src/lib/index.js';
import { validateYamlModules } from '../../src/lib/schema.js';
import { asyncErrorOf, configOf, deep, errorOf, evaluate, scratchWithHome } from './helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const { mkOption, mkIf, mkMerge, mkForce, mkDefault, types } = lib;

/** An in-memory module named like the .nix file it ports (the name shows in messages). */
const m = (file: string, value: unknown): SourcedModule => new SourcedModule(value, { file }, file);

// Modules several cases share, as in lib/tests/modules/.
const declareEnable = m('declare-enable.nix', {
  options: { enable: mkOption({ default: false, example: true, type: types.bool, description: 'Some descriptive text' }) },
});
const defineEnable = m('define-enable.nix', { enable: true });
const declareEnableNested = m('declare-enable-nested.nix', {
  options: { set: { enable: mkOption({ default: false, example: true, type: types.bool, description: 'Some descriptive text' }) } },
});
const defineValue = (file: string, value: unknown) => m(file, { value });
const defineValueIntPositive = defineValue('define-value-int-positive.nix', 42);
const defineValueIntNegative = defineValue('define-value-int-negative.nix', -23);
const defineValueIntZero = defineValue('define-value-int-zero.nix', 0);
const defineValueList = defineValue('define-value-list.nix', []);
const defineValueString = defineValue('define-value-string.nix', '24');
const declareValue = (file: string, type: any) => m(file, { options: { value: mkOption({ type }) } });

const files = scratchWithHome('cairn-modules-suite');
/** Writes files into the scratch folder; returns the path of the first. */
function write(entries: Record<string, string>): string {
  let first = '';
  for (const [name, text] of Object.entries(entries)) {
    const file = join(files.dir(), name);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, text);
    first ||= file;
  }
  return first;
}
const at = (name: string): string => join(files.dir(), name);
const DECLARE_ENABLE_TS = `export default ({ lib }: any) => ({
  options: { enable: lib.mkOption({ default: false, example: true, type: lib.types.bool, description: 'Some descriptive text' }) },
});
`;

describe('shorthand-meta.nix', () => {
  it('config.result is "one two": a shorthand meta defines config.meta once', () => {
    const c = configOf({
      imports: [
        ({ config }: any) => ({
          options: {
            meta: { foo: mkOption({ type: types.listOf(types.str) }) },
            result: mkOption({
              get default() {
                return config.meta.foo.join(' ');
              },
            }),
          },
        }),
        { meta: { foo: ['one', 'two'] } },
      ],
    });
    expect(c.result).toBe('one two');
  });
});

describe('test-push-down-non-attrs.nix', () => {
  it("config = mkIf true true: you're trying to define a value of type `bool' rather than an attribute set", () => {
    const msg = errorOf(() => deep(configOf(m('test-push-down-non-attrs.nix', { config: mkIf(true, true) }))));
    expect(msg).toMatch(/In module .*test-push-down-non-attrs.nix., you're trying to define a value of type `bool'\n\s*rather than an attribute set for the option/);
  });
});

describe('specialArgs-lib.nix', () => {
  it('a submodule evaluates with the lib its specialArgs give (config.result is "ok")', () => {
    let seenLib: unknown;
    const c = configOf(({ config }: any) => ({
      options: {
        result: mkOption({}),
        weird: mkOption({ type: types.submoduleWith({ specialArgs: { lib: {} }, modules: [] }) }),
      },
      config: {
        weird: (args: any) => {
          seenLib = args.lib;
          return { options: { foo: mkOption({}) }, config: { foo: mkIf(true, 'alright') } };
        },
        get result() {
          return config.weird.foo === 'alright' ? 'ok' : 'wrong';
        },
      },
    }));
    expect(c.result).toBe('ok');
    expect(seenLib).toEqual({});
  });
});

describe('error-mkOption-in-config.nix, error-mkOption-in-submodule-config.nix', () => {
  it('config.wrong1: trying to declare an option by placing it into config', () => {
    expect(errorOf(() => evaluate({ config: { wrong1: mkOption({}) } }))).toMatch(/It seems as if you.re trying to declare an option by placing it into .config. rather than .options./);
  });
  it('config.nest.wrong2: the same, nested', () => {
    expect(errorOf(() => evaluate({ config: { nest: { wrong2: mkOption({}) } } }))).toMatch(/It seems as if you.re trying to declare an option by placing it into .config. rather than .options./);
  });
  const inSubmodule = { options: { sub: mkOption({ type: types.submodule({ wrong2: mkOption({}) }), default: {} }) } };
  it('config.sub: The option `sub.wrong2\' does not exist', () => {
    expect(errorOf(() => configOf(inSubmodule).sub)).toMatch(/The option .sub.wrong2. does not exist. Definition values:/);
  });
  it('config.sub: This can happen if you e.g. declared your options in `types.submodule\'', () => {
    expect(errorOf(() => configOf(inSubmodule).sub)).toMatch(/This can happen if you e.g. declared your options in .types.submodule./);
  });
});

describe('declare-enable.nix, define-enable*.nix (boolean option)', () => {
  it('config.enable is false by default', () => {
    expect(configOf(declareEnable).enable).toBe(false);
  });
  it('defining an undeclared option: The option `enable\' does not exist', () => {
    expect(errorOf(() => configOf(defineEnable))).toMatch(/The option .* does not exist. Definition values:\n\s*- In .*: true/);
  });
  it('define-enable-throw.nix: the message does not evaluate the definition', () => {
    const throwing = m('define-enable-throw.nix', {
      config: {
        get enable(): boolean {
          throw new Error('oops');
        },
      },
    });
    expect(errorOf(() => configOf(throwing))).toMatch(/The option .* does not exist. Definition values:\n\s*- In .*/);
  });
});

describe('declare-bare-submodule*.nix (options declared below a submodule option)', () => {
  const bare = ({ config }: any) => ({
    options: {
      'bare-submodule': mkOption({ type: types.submoduleWith({ modules: [], shorthandOnlyDefinesConfig: config.shorthandOnlyDefinesConfig }), default: {} }),
      shorthandOnlyDefinesConfig: mkOption({ default: false }),
    },
  });
  const declareBare = m('declare-bare-submodule.nix', bare);
  const nested = m('declare-bare-submodule-nested-option.nix', ({ config }: any) => ({
    options: {
      'bare-submodule': mkOption({
        type: types.submoduleWith({
          shorthandOnlyDefinesConfig: config.shorthandOnlyDefinesConfig,
          modules: [{ options: { nested: mkOption({ type: types.int, default: 1 }) } }],
        }),
      }),
    },
  }));
  const deep_ = m('declare-bare-submodule-deep-option.nix', { options: { 'bare-submodule': { deep: mkOption({ type: types.int, default: 2 }) } } });
  const duplicate = m('declare-bare-submodule-deep-option-duplicate.nix', { options: { 'bare-submodule': { deep: mkOption({ type: types.int, default: 2 }) } } });
  const values = m('define-bare-submodule-values.nix', { 'bare-submodule': { nested: 42, deep: 420 } });
  const shorthandTrue = m('define-shorthandOnlyDefinesConfig-true.nix', { shorthandOnlyDefinesConfig: true });

  it('config.bare-submodule.nested is 1', () => {
    expect(configOf(declareBare, nested)['bare-submodule'].nested).toBe(1);
  });
  it('config.bare-submodule.deep is 2', () => {
    expect(configOf(declareBare, deep_)['bare-submodule'].deep).toBe(2);
  });
  it('config.bare-submodule.nested is 42 with all of them', () => {
    expect(configOf(declareBare, nested, deep_, values)['bare-submodule'].nested).toBe(42);
  });
  it('config.bare-submodule.deep is 420 with all of them', () => {
    expect(configOf(declareBare, nested, deep_, values)['bare-submodule'].deep).toBe(420);
  });
  it('config.bare-submodule.deep is 2 with shorthandOnlyDefinesConfig = true', () => {
    expect(configOf(declareBare, deep_, shorthandTrue)['bare-submodule'].deep).toBe(2);
  });
  it('the same option declared below it twice: already declared', () => {
    const msg = errorOf(() => configOf(declareBare, deep_, duplicate)['bare-submodule'].deep);
    expect(msg).toMatch(/The option .bare-submodule.deep. in .*. is already declared in .*/);
    expect(msg).toContain('nixos-modules-suite.test.ts');
  });
  it('declaration-positions.nix: options declared below a submodule option are declarations of it', () => {
    const files_ = (evaluate(declareBare, deep_).options as any)['bare-submodule'].declarations.map((d: { file: string }) => d.file);
    expect(files_).toHaveLength(2);
    expect(evaluate(deep_, declareBare).options['bare-submodule' as never]).toMatchObject({ declarations: { length: 2 } });
  });
  it('declared before the submodule option, too', () => {
    expect(configOf(deep_, values, nested, declareBare)['bare-submodule']).toMatchObject({ nested: 42, deep: 420 });
  });
});

describe('strMatching-merge.nix', () => {
  it('options.sm.type.name is strMatching: two equal declarations merge', () => {
    const decl = { options: { sm: mkOption({ type: types.strMatching('\\(.*\\)') }) } };
    const ev = evaluate({ imports: [decl, { options: { sm: mkOption({ type: types.strMatching('\\(.*\\)') }) } }] });
    expect((ev.options as any).sm.type.name).toBe('strMatching');
  });
});

describe('types.nix (config.assertions: type descriptions, for the types cairn has)', () => {
  const t = types;
  const cases: [any, string][] = [
    [t.str, 'string'],
    [t.int, 'signed integer'],
    [t.attrsOf(t.str), 'attribute set of string'],
    [t.attrsOf(t.attrsOf(t.str)), 'attribute set of attribute set of string'],
    [t.oneOf([t.attrsOf(t.str), t.int, t.bool]), '(attribute set of string) or signed integer or boolean'],
    [t.enum([true, null, false]), 'one of true, <null>, false'],
    [t.attrsOf(t.int), 'attribute set of signed integer'],
    [t.attrsOf(t.bool), 'attribute set of boolean'],
    [t.attrsOf(t.either(t.int, t.str)), 'attribute set of (signed integer or string)'],
    [t.attrsOf(t.nullOr(t.str)), 'attribute set of (null or string)'],
    [t.attrsOf(t.listOf(t.str)), 'attribute set of list of string'],
    [t.attrsOf(t.ints.positive), 'attribute set of (positive integer, meaning >0)'],
    [t.attrsOf(t.enum(['a', 'b'])), 'attribute set of (one of "a", "b")'],
    [t.attrsOf(t.strMatching('[0-9]+')), 'attribute set of string matching the pattern [0-9]+'],
    [t.attrsOf(t.oneOf([t.str, t.int])), 'attribute set of (string or signed integer)'],
    [t.attrsOf(t.uniq(t.str)), 'attribute set of string'],
    [t.attrsOf(t.unique({ message: 'test' }, t.str)), 'attribute set of string'],
    [t.attrsOf(t.separatedString(',')), 'attribute set of strings concatenated with ","'],
    [t.attrsOf(t.lazyAttrsOf(t.str)), 'attribute set of lazy attribute set of string'],
    [t.attrsOf(t.submodule({})), 'attribute set of (submodule)'],
    [t.attrsOf(t.enum([])), 'attribute set of impossible (empty enum)'],
    [t.attrsOf(t.ints.u32), 'attribute set of 32 bit unsigned integer; between 0 and 4294967295 (both inclusive)'],
    [t.either(t.str, t.int), 'string or signed integer'],
    [t.either(t.either(t.int, t.str), t.bool), 'signed integer or string or boolean'],
    [t.either(t.nullOr(t.str), t.int), 'null or string or signed integer'],
    [t.either(t.listOf(t.str), t.int), '(list of string) or signed integer'],
    [t.either(t.attrsOf(t.int), t.str), '(attribute set of signed integer) or string'],
    [t.either(t.ints.positive, t.str), 'positive integer, meaning >0, or string'],
    [t.either(t.bool, t.enum(['a', 'b'])), 'boolean or one of "a", "b"'],
    [t.either(t.bool, t.strMatching('[0-9]+')), 'boolean or string matching the pattern [0-9]+'],
    [t.either(t.bool, t.oneOf([t.str, t.int])), 'boolean or string or signed integer'],
    [t.either(t.bool, t.uniq(t.str)), 'boolean or string'],
    [t.either(t.bool, t.separatedString(',')), 'boolean or strings concatenated with ","'],
    [t.either(t.bool, t.attrsOf(t.str)), 'boolean or attribute set of string'],
    [t.either(t.bool, t.listOf(t.str)), 'boolean or list of string'],
    [t.either(t.bool, t.nullOr(t.str)), 'boolean or null or string'],
    [t.either(t.bool, t.lazyAttrsOf(t.str)), 'boolean or lazy attribute set of string'],
    [t.either(t.bool, t.submodule({})), 'boolean or (submodule)'],
    [t.either(t.bool, t.ints.positive), 'boolean or (positive integer, meaning >0)'],
    [t.either(t.enum(['a', 'b']), t.bool), 'one of "a", "b" or boolean'],
    [t.either(t.attrsOf(t.str), t.bool), '(attribute set of string) or boolean'],
    [t.either(t.listOf(t.str), t.bool), '(list of string) or boolean'],
    [t.either(t.lazyAttrsOf(t.str), t.bool), '(lazy attribute set of string) or boolean'],
    [t.either(t.submodule({}), t.bool), '(submodule) or boolean'],
    [t.either(t.ints.positive, t.bool), 'positive integer, meaning >0, or boolean'],
    [t.enum([]), 'impossible (empty enum)'],
    [t.enum(['single']), 'value "single" (singular enum)'],
    [t.enum(['a', 'b']), 'one of "a", "b"'],
    [t.enum([true, false]), 'one of true, false'],
    [t.enum([1, 2, 3]), 'one of 1, 2, 3'],
    [t.enum([null]), 'value <null> (singular enum)'],
  ];
  it.each(cases.map(([type, text]) => [text, type]))('%s', (text, type) => expect(type.description).toBe(text));
});

describe('declare-int-*-value.nix (integer types)', () => {
  const unsigned = declareValue('declare-int-unsigned-value.nix', types.ints.unsigned);
  const positive = declareValue('declare-int-positive-value.nix', types.ints.positive);
  const between = declareValue('declare-int-between-value.nix', types.ints.between(-21, 43));
  it('unsigned: 42', () => {
    expect(configOf(unsigned, defineValueIntPositive).value).toBe(42);
  });
  it('unsigned: -23 is not of type unsigned integer', () => {
    expect(errorOf(() => configOf(unsigned, defineValueIntNegative).value)).toMatch(/A definition for option .* is not of type.*unsigned integer.*. Definition values:\n\s*- In .*: -23/);
  });
  it('positive: 0 is not of type positive integer', () => {
    expect(errorOf(() => configOf(positive, defineValueIntZero).value)).toMatch(/A definition for option .* is not of type.*positive integer.*. Definition values:\n\s*- In .*: 0/);
  });
  it('between: 42', () => {
    expect(configOf(between, defineValueIntPositive).value).toBe(42);
  });
  it('between: -23 is not between -21 and 43', () => {
    expect(errorOf(() => configOf(between, defineValueIntNegative).value)).toMatch(/A definition for option .* is not of type.*between.*-21 and 43.*inclusive.*. Definition values:\n\s*- In .*: -23/);
  });
  it('declare-int-unsigned-value.nix with a list and 42: a type error even with several definitions', () => {
    expect(errorOf(() => configOf(unsigned, defineValueList, defineValueIntPositive).value)).toMatch(/A definition for option .* is not of type .*/);
  });
});

describe('declare-either.nix, declare-oneOf.nix', () => {
  const either = declareValue('declare-either.nix', types.either(types.int, types.str));
  const oneOf = declareValue('declare-oneOf.nix', types.oneOf([types.int, types.listOf(types.int), types.str]));
  it('either: 42', () => expect(configOf(either, defineValueIntPositive).value).toBe(42));
  it('either: "24"', () => expect(configOf(either, defineValueString).value).toBe('24'));
  it('oneOf: 42', () => expect(configOf(oneOf, defineValueIntPositive).value).toBe(42));
  it('oneOf: []', () => expect(configOf(oneOf, defineValueList).value).toEqual([]));
  it('oneOf: "24"', () => expect(configOf(oneOf, defineValueString).value).toBe('24'));
});

describe('mkForce without submodules (define-force-enable.nix, define-enable-force.nix)', () => {
  it('config.enable is true', () => expect(configOf(declareEnable, defineEnable).enable).toBe(true));
  it('a module that is mkForce { enable = false; }', () => {
    expect(configOf(declareEnable, defineEnable, m('define-force-enable.nix', mkForce({ enable: false }))).enable).toBe(false);
  });
  it('enable = mkForce false', () => {
    expect(configOf(declareEnable, defineEnable, m('define-enable-force.nix', { enable: mkForce(false) })).enable).toBe(false);
  });
});

describe('declare-attrsOfSub-any-enable.nix (mkForce and mkIf with submodules)', () => {
  const submod = () => ({ options: { enable: mkOption({ default: false, example: true, type: types.bool, description: 'Some descriptive text' }) } });
  const decl = m('declare-attrsOfSub-any-enable.nix', { options: { attrsOfSub: mkOption({ default: {}, example: {}, type: types.attrsOf(types.submodule([submod])), description: 'Some descriptive text' }) } });
  const foo = m('define-attrsOfSub-foo.nix', { attrsOfSub: { foo: {} } });
  const fooEnable = m('define-attrsOfSub-foo-enable.nix', { attrsOfSub: { foo: { enable: true } } });
  const bar = m('define-attrsOfSub-bar.nix', { attrsOfSub: { bar: {} } });
  const barEnable = m('define-attrsOfSub-bar-enable.nix', { attrsOfSub: { bar: { enable: true } } });
  const forceFooEnable = m('define-force-attrsOfSub-foo-enable.nix', mkForce({ attrsOfSub: { foo: { enable: false } } }));
  const forceFooEnable2 = m('define-attrsOfSub-force-foo-enable.nix', { attrsOfSub: mkForce({ foo: { enable: false } }) });
  const fooForceEnable = m('define-attrsOfSub-foo-force-enable.nix', { attrsOfSub: { foo: mkForce({ enable: false }) } });
  const fooEnableForce = m('define-attrsOfSub-foo-enable-force.nix', { attrsOfSub: { foo: { enable: mkForce(false) } } });
  const ifFooEnable = m('define-if-attrsOfSub-foo-enable.nix', ({ config }: any) => mkIf(config.enable, { attrsOfSub: { foo: { enable: true } } }));
  const ifFooEnable2 = m('define-attrsOfSub-if-foo-enable.nix', ({ config }: any) => ({ attrsOfSub: mkIf(config.enable, { foo: { enable: true } }) }));
  const fooIfEnable = m('define-attrsOfSub-foo-if-enable.nix', ({ config }: any) => ({ attrsOfSub: { foo: mkIf(config.enable, { enable: true }) } }));
  const fooEnableIf = m('define-attrsOfSub-foo-enable-if.nix', ({ config }: any) => ({ attrsOfSub: { foo: { enable: mkIf(config.enable, true) } } }));
  const subs = (...mods: ModuleInput[]) => configOf(decl, ...mods).attrsOfSub;

  it('attribute foo not found without a definition', () => expect('foo' in subs()).toBe(false));
  it('foo = {}: enable is false', () => expect(subs(foo).foo.enable).toBe(false));
  it('foo.enable = true', () => expect(subs(fooEnable).foo.enable).toBe(true));
  it('mkForce { attrsOfSub.foo.enable = false; } wins', () => expect(subs(fooEnable, forceFooEnable).foo.enable).toBe(false));
  it('attrsOfSub = mkForce { foo.enable = false; } wins', () => expect(subs(fooEnable, forceFooEnable2).foo.enable).toBe(false));
  it('attrsOfSub.foo = mkForce { enable = false; } wins', () => expect(subs(fooEnable, fooForceEnable).foo.enable).toBe(false));
  it('attrsOfSub.foo.enable = mkForce false wins', () => expect(subs(fooEnable, fooEnableForce).foo.enable).toBe(false));

  // Check overriding effect of mkForce on submodule definitions.
  it('bar not found with only foo defined', () => expect('bar' in subs(foo)).toBe(false));
  it('bar = {}: enable is false', () => expect(subs(foo, bar).bar.enable).toBe(false));
  it('bar.enable = true', () => expect(subs(foo, barEnable).bar.enable).toBe(true));
  it('a forced module-level attrsOfSub drops bar', () => expect('bar' in subs(foo, barEnable, forceFooEnable)).toBe(false));
  it('a forced attrsOfSub drops bar', () => expect('bar' in subs(foo, barEnable, forceFooEnable2)).toBe(false));
  it('a forced attrsOfSub.foo keeps bar', () => expect(subs(foo, barEnable, fooForceEnable).bar.enable).toBe(true));
  it('a forced attrsOfSub.foo.enable keeps bar', () => expect(subs(foo, barEnable, fooEnableForce).bar.enable).toBe(true));

  // Check mkIf with submodules.
  const withEnable = (...mods: ModuleInput[]) => configOf(declareEnable, decl, ...mods).attrsOfSub;
  it('foo not found with only the declarations', () => expect('foo' in withEnable()).toBe(false));
  it('module-level mkIf false: foo not found', () => expect('foo' in withEnable(ifFooEnable)).toBe(false));
  it('attrsOfSub = mkIf false: foo not found', () => expect('foo' in withEnable(ifFooEnable2)).toBe(false));
  it('attrsOfSub.foo = mkIf false: foo not found', () => expect('foo' in withEnable(fooIfEnable)).toBe(false));
  it('attrsOfSub.foo.enable = mkIf false: foo exists, enable is false', () => expect(withEnable(fooEnableIf).foo.enable).toBe(false));
  it('module-level mkIf true', () => expect(withEnable(defineEnable, ifFooEnable).foo.enable).toBe(true));
  it('attrsOfSub = mkIf true', () => expect(withEnable(defineEnable, ifFooEnable2).foo.enable).toBe(true));
  it('attrsOfSub.foo = mkIf true', () => expect(withEnable(defineEnable, fooIfEnable).foo.enable).toBe(true));
  it('attrsOfSub.foo.enable = mkIf true', () => expect(withEnable(defineEnable, fooEnableIf).foo.enable).toBe(true));
});

describe('disable-*.nix (disabledModules with config definitions and option declarations)', () => {
  const setup = () =>
    write({
      'declare-enable.ts': DECLARE_ENABLE_TS,
      'define-enable.yaml': 'enable: true\n',
      'disable-define-enable.yaml': 'disabledModules: [./define-enable.yaml]\n',
      'disable-declare-enable.yaml': 'disabledModules: [./declare-enable.ts]\n',
    });
  const run = async (...names: string[]) => {
    setup();
    return (await evalModules({ modules: [at('define-enable.yaml'), at('declare-enable.ts'), ...names.map(at)] })).config as any;
  };
  it('config.enable is true', async () => expect((await run()).enable).toBe(true));
  it('disabling the definition: false', async () => expect((await run('disable-define-enable.yaml')).enable).toBe(false));
  it('disabling it by its absolute path as a string: false', async () => {
    setup();
    write({ 'disable-define-enable-string-path.yaml': `disabledModules: [${JSON.stringify(at('define-enable.yaml'))}]\n` });
    expect((await run('disable-define-enable-string-path.yaml')).enable).toBe(false);
  });
  it('disabling the declaration: The option enable does not exist', async () => {
    expect(await asyncErrorOf(() => run('disable-declare-enable.yaml'))).toMatch(/The option .*enable.* does not exist. Definition values:\n\s*- In .*: true/);
  });
  it('disabling both: no option enable at all', async () => {
    expect('enable' in (await run('disable-define-enable.yaml', 'disable-declare-enable.yaml'))).toBe(false);
  });
});

describe('disable-module-with-key.nix, disable-module-bad-key.nix, disable-module-with-toString-key.nix', () => {
  for (const [file, key, disabled] of [
    ['disable-module-with-key.nix', 'disable-module-with-key.nix#moduleWithKey', (w: object) => w],
    ['disable-module-with-toString-key.nix', 123, () => 123],
  ] as const) {
    const moduleWithKey = { key, config: { enable: true } };
    const mod = m(file, {
      options: {
        positive: mkOption({ type: types.submodule({ imports: [declareEnable, moduleWithKey] }), default: {} }),
        negative: mkOption({ type: types.submodule({ imports: [declareEnable, moduleWithKey], disabledModules: [disabled(moduleWithKey)] }), default: {} }),
      },
    });
    it(`${file}: config.positive.enable is true`, () => expect(configOf(mod).positive.enable).toBe(true));
    it(`${file}: config.negative.enable is false`, () => expect(configOf(mod).negative.enable).toBe(false));
  }
  it('disable-module-bad-key.nix: an attribute set without a key', () => {
    const msg = errorOf(() => configOf(m('disable-module-bad-key.nix', { imports: [declareEnable], disabledModules: [{}] })).enable);
    expect(msg).toMatch(/Module ..*disable-module-bad-key.nix. contains a disabledModules item that is an attribute set, presumably a module, that does not have a .key. attribute. .*/);
  });
});

describe('disable-recursive/*.nix', () => {
  const setup = () =>
    write({
      'declare-enable.ts': DECLARE_ENABLE_TS,
      'disable-recursive/main.yaml': 'imports: [./foo.yaml, ./bar.yaml]\nenable: true\n',
      'disable-recursive/foo.yaml': 'imports: [../declare-enable.ts]\n',
      'disable-recursive/bar.yaml': 'imports: [../declare-enable.ts]\n',
      'disable-recursive/disable-foo.yaml': 'disabledModules: [./foo.yaml]\n',
      'disable-recursive/disable-bar.yaml': 'disabledModules: [./bar.yaml]\n',
    });
  const run = async (...names: string[]) => {
    setup();
    return (await evalModules({ modules: names.map((n) => at(`disable-recursive/${n}`)) })).config as any;
  };
  it('main: true', async () => expect((await run('main.yaml')).enable).toBe(true));
  it('main, disable-foo: true', async () => expect((await run('main.yaml', 'disable-foo.yaml')).enable).toBe(true));
  it('main, disable-bar: true', async () => expect((await run('main.yaml', 'disable-bar.yaml')).enable).toBe(true));
  it('main, disable-foo, disable-bar: the option does not exist', async () => {
    expect(await asyncErrorOf(() => run('main.yaml', 'disable-foo.yaml', 'disable-bar.yaml'))).toMatch(/The option .* does not exist. Definition values:\n\s*- In .*: true/);
  });
});

describe('_module.check (cairn: the check option of evalModules)', () => {
  const mods = () => [declareEnable, defineEnable, m('define-attrsOfSub-foo.nix', { attrsOfSub: { foo: {} } })];
  it('an undeclared definition: does not exist', () => {
    expect(errorOf(() => evaluate(...mods()))).toMatch(/The option .* does not exist. Definition values:\n\s*- In .*/);
  });
  it('without the check: config.enable is true', () => {
    expect((evalModulesSync({ modules: mods(), check: false }).config as any).enable).toBe(true);
  });
});

describe('alias-with-priority.nix, alias-with-priority-can-override.nix (mkAliasOptionModule)', () => {
  const aliased = (file: string, prio: (v: boolean) => unknown) =>
    m(file, {
      options: {
        enable: mkOption({ type: types.nullOr(types.bool), default: null, example: true, description: 'Some descriptive text' }),
        warnings: mkOption({ internal: true, default: [], type: types.listOf(types.str) }),
      },
      imports: [lib.mkAliasOptionModule(['enableAlias'], ['enable']), { enableAlias: prio(false) }, { enable: true }],
    });
  const low = aliased('alias-with-priority.nix', mkDefault);
  const high = aliased('alias-with-priority-can-override.nix', mkForce);
  it('config.enable is true (the alias is mkDefault)', () => expect(configOf(low).enable).toBe(true));
  it('config.enableAlias is true', () => expect(configOf(low).enableAlias).toBe(true));
  it('config.enable is false (the alias is mkForce)', () => expect(configOf(high).enable).toBe(false));
  it('config.enableAlias is false', () => expect(configOf(high).enableAlias).toBe(false));
});

describe('declare-mkPackageOption.nix (cairn: Debian packages by name)', () => {
  const c = () =>
    evaluate({
      options: {
        package: lib.mkPackageOption('hello'),
        packageWithExtraDescription: lib.mkPackageOption('hello', { extraDescription: 'Example extra description.' }),
      },
    });
  it('config.package.pname is hello (cairn: name)', () => expect((c().config as any).package.name).toBe('hello'));
  it('the description names the package', () => expect((c().options as any).package.description).toMatch(/hello/));
  it('defaultText is pkgs.hello', () => expect((c().options as any).package.defaultText).toBe('pkgs.hello'));
  it('extraDescription is in the description', () => expect((c().options as any).packageWithExtraDescription.description).toMatch(/Example extra description\./));
});

describe('declare-submoduleWith-*.nix, define-submoduleWith-*.nix', () => {
  it('declare-submoduleWith-special.nix: specialArgs reach the submodule (config.submodule.foo is "foo")', () => {
    const c = configOf({
      options: {
        submodule: mkOption({
          type: types.submoduleWith({ modules: [({ lib: l }: any) => ({ options: { foo: mkOption({ default: l.foo }) } })], specialArgs: { lib: { ...lib, foo: 'foo' } } }),
          default: {},
        }),
      },
    });
    expect(c.submodule.foo).toBe('foo');
  });

  const sub = { options: { config: mkOption({ type: types.bool, default: false }) } };
  const declShorthand = m('declare-submoduleWith-shorthand.nix', { options: { submodule: mkOption({ type: types.submoduleWith({ modules: [sub], shorthandOnlyDefinesConfig: true }), default: {} }) } });
  const declNoShorthand = m('declare-submoduleWith-noshorthand.nix', { options: { submodule: mkOption({ type: types.submoduleWith({ modules: [sub] }), default: {} }) } });
  const defShorthand = m('define-submoduleWith-shorthand.nix', { submodule: { config: true } });
  const defNoShorthand = m('define-submoduleWith-noshorthand.nix', { submodule: { config: { config: true } } });
  it('shorthand declaration, shorthand definition: true', () => expect(configOf(declShorthand, defShorthand).submodule.config).toBe(true));
  it('shorthand declaration, explicit definition: is not of type `boolean', () => {
    expect(errorOf(() => configOf(declShorthand, defNoShorthand).submodule.config)).toMatch(/is not of type `boolean/);
  });
  it("explicit declaration, shorthand definition: you're trying to define a value of type `bool'", () => {
    expect(errorOf(() => configOf(declNoShorthand, defShorthand).submodule.config)).toMatch(
      /In module ..*define-submoduleWith-shorthand.nix., you're trying to define a value of type `bool'\n\s*rather than an attribute set for the option/,
    );
  });
  it('explicit declaration, explicit definition: true', () => expect(configOf(declNoShorthand, defNoShorthand).submodule.config).toBe(true));

  const modules = () =>
    evaluate({
      options: {
        submodule: mkOption({ type: types.submoduleWith({ modules: [{ options: { inner: mkOption({ type: types.bool, default: false }) } }] }), default: {} }),
      },
      config: {
        submodule: mkMerge([({ lib: l }: any) => ({ options: { outer: l.mkOption({ type: l.types.bool, default: false }) } }), { inner: true, outer: true }]),
      },
    });
  it('declare-submoduleWith-modules.nix: config.submodule.inner is true', () => expect((modules().config as any).submodule.inner).toBe(true));
  it('declare-submoduleWith-modules.nix: config.submodule.outer is true', () => expect((modules().config as any).submodule.outer).toBe(true));
  it('declare-submoduleWith-modules.nix: options.submodule.type.description is submodule', () => expect((modules().options as any).submodule.type.description).toBe('submodule'));

  it('declare-submoduleWith-path.nix: paths are modules, as the type and as a definition', async () => {
    write({
      'declare-enable.ts': DECLARE_ENABLE_TS,
      'define-enable.yaml': 'enable: true\n',
      'declare-submoduleWith-path.ts': `export default ({ lib }: any) => ({
  options: { submodule: lib.mkOption({ type: lib.types.submoduleWith({ modules: ['./declare-enable.ts'] }), default: {} }) },
  config: { submodule: './define-enable.yaml' },
});
`,
    });
    expect(((await evalModules({ modules: [at('declare-submoduleWith-path.ts')] })).config as any).submodule.enable).toBe(true);
  });
  it('a missing module file of a submodule definition is named, with where it was asked for', () => {
    const msg = errorOf(() => configOf({ options: { submodule: mkOption({ type: types.submoduleWith({ modules: [] }), default: {} }) } }, m(at('definer.ts'), { submodule: './missing.yaml' })).submodule);
    expect(msg).toContain(`cannot find the module \`${at('missing.yaml')}'`);
  });
  it('declare-submoduleWith-path.nix, in memory: absolute paths', () => {
    write({ 'declare-enable.ts': DECLARE_ENABLE_TS, 'define-enable.yaml': 'enable: true\n' });
    const c = configOf({ options: { submodule: mkOption({ type: types.submoduleWith({ modules: [at('declare-enable.ts')] }), default: {} }) } }, { submodule: at('define-enable.yaml') });
    expect(c.submodule.enable).toBe(true);
  });
});

describe('submoduleFiles.nix', () => {
  it('the file of a definition (_file) reaches the submodule: config.submodule.internalFiles.0 is the-file.nix', () => {
    const c = configOf({
      options: {
        submodule: mkOption({
          default: {},
          type: types.submoduleWith({
            modules: [
              ({ options }: any) => ({
                options: {
                  value: mkOption({}),
                  internalFiles: mkOption({
                    get default() {
                      return options.value.files;
                    },
                  }),
                },
              }),
            ],
          }),
        }),
      },
      imports: [{ _file: 'the-file.nix', submodule: { value: 10 } }],
    });
    expect(c.submodule.internalFiles[0]).toBe('the-file.nix');
  });
});

describe('define-option-dependently*.nix (config depending on which options exist)', () => {
  const dependent = m('define-option-dependently.nix', ({ options }: any) => ({
    config: {
      get value() {
        return 'enable' in options ? 360 : 7;
      },
      enable: true,
    },
  }));
  const positive = declareValue('declare-int-positive-value.nix', types.ints.positive);
  it('config.enable is true when enable is declared', () => expect(configOf(dependent, declareEnable, positive).enable).toBe(true));
  it('config.value is 360 when enable is declared', () => expect(configOf(dependent, declareEnable, positive).value).toBe(360));
  const dependentNested = m('define-option-dependently-nested.nix', ({ options }: any) => ({
    config: {
      set: {
        get value() {
          return 'enable' in options.set ? 360 : 7;
        },
        enable: true,
      },
    },
  }));
  const positiveNested = m('declare-int-positive-value-nested.nix', { options: { set: { value: mkOption({ type: types.ints.positive }) } } });
  it('config.set.enable is true', () => expect(configOf(dependentNested, declareEnableNested, positiveNested).set.enable).toBe(true));
  it('config.set.value is 360', () => expect(configOf(dependentNested, declareEnableNested, positiveNested).set.value).toBe(360));
});

describe('declare-attrsOf.nix, declare-lazyAttrsOf.nix, attrsOf-*-check.nix', () => {
  const attrsOf = m('declare-attrsOf.nix', { options: { value: mkOption({ type: types.attrsOf(types.str), default: {} }) } });
  const lazyAttrsOf = m('declare-lazyAttrsOf.nix', { options: { value: mkOption({ type: types.lazyAttrsOf({ ...types.str, emptyValue: { value: 'empty' } }), default: {} }) } });
  const lazyCheck = m('attrsOf-lazy-check.nix', ({ config }: any) => ({
    options: {
      isLazy: mkOption({
        get default() {
          return !('foo' in config.value);
        },
      }),
    },
    config: {
      value: {
        get bar(): string {
          throw new Error('is not lazy');
        },
      },
    },
  }));
  const conditional = m('attrsOf-conditional-check.nix', ({ config }: any) => ({
    options: {
      conditionalWorks: mkOption({
        get default() {
          return !('foo' in config.value);
        },
      }),
    },
    config: { value: { foo: mkIf(false, 'should not be defined') } },
  }));
  it('attrsOf: is not lazy', () => expect(errorOf(() => configOf(attrsOf, lazyCheck).isLazy)).toMatch(/is not lazy/));
  it('lazyAttrsOf: isLazy is true', () => expect(configOf(lazyAttrsOf, lazyCheck).isLazy).toBe(true));
  it('attrsOf: conditionalWorks is true', () => expect(configOf(attrsOf, conditional).conditionalWorks).toBe(true));
  it('lazyAttrsOf: conditionalWorks is false', () => expect(configOf(lazyAttrsOf, conditional).conditionalWorks).toBe(false));
  it("lazyAttrsOf: config.value.foo is the element type's emptyValue, \"empty\"", () => expect(configOf(lazyAttrsOf, conditional).value.foo).toBe('empty'));
});

describe('lazy-attrsWith.nix', () => {
  it('options.mergedLazyNonLazy: a lazy and a non-lazy attribute set do not merge', () => {
    const msg = errorOf(() => evaluate({ options: { mergedLazyNonLazy: mkOption({ type: types.lazyAttrsOf(types.int) }) } }, { options: { mergedLazyNonLazy: mkOption({ type: types.attrsOf(types.int) }) } }));
    expect(msg).toMatch(/The option `mergedLazyNonLazy' in `.*' is already declared in `.*'\./);
  });
});

describe('freeform-*.nix (freeform modules)', () => {
  const freeform = m('freeform-attrsOf.nix', { freeformType: types.attrsOf(types.either(types.str, types.attrsOf(types.str))) });
  const freeformLazy = m('freeform-lazyAttrsOf.nix', { freeformType: types.lazyAttrsOf(types.either(types.str, types.lazyAttrsOf(types.str))) });
  it('assigning without a declared option: config.value is "24"', () => expect(configOf(freeform, defineValueString).value).toBe('24'));
  it('no freeform assignments: config is {}', () => expect(deep(configOf(freeform))).toEqual({}));
  it('but only if the type matches', () => expect(errorOf(() => configOf(freeform, defineValueList).value)).toMatch(/A definition for option .* is not of type .*/));
  it('and properties are applied: "yes"', () => {
    const props = m('define-value-string-properties.nix', { imports: [{ value: mkDefault('def') }], value: mkMerge([mkIf(false, 'nope'), 'yes']) });
    expect(configOf(freeform, props).value).toBe('yes');
  });
  it('options are still declarable, of another type: config.enable is false', () => expect(configOf(freeform, defineValueString, declareEnable).enable).toBe(false));
  it('and config.value is still "24"', () => expect(configOf(freeform, defineValueString, declareEnable).value).toBe('24'));
  const nested = m('freeform-nested.nix', { options: { nest: { foo: mkOption({ type: types.bool, default: false }) } }, config: { nest: { bar: 'bar' } } });
  it('nested: config.nest.foo is false', () => expect(configOf(freeform, nested).nest.foo).toBe(false));
  it('nested: config.nest.bar is "bar"', () => expect(configOf(freeform, nested).nest.bar).toBe('bar'));
  const strDepUnstr = m('freeform-str-dep-unstr.nix', ({ config }: any) => ({
    options: { foo: mkOption({ type: types.nullOr(types.str), default: null }) },
    config: { foo: mkIf(() => 'value' in config, config.value) },
  }));
  it('a declared option depending on a freeform one: null', () => expect(configOf(freeform, strDepUnstr).foo).toBe(null));
  it('a declared option depending on a freeform one: "24"', () => expect(configOf(freeform, strDepUnstr, defineValueString).foo).toBe('24'));
  const unstrDepStr = m('freeform-unstr-dep-str.nix', ({ config }: any) => ({
    options: { value: mkOption({ type: types.nullOr(types.str), default: null }) },
    config: { foo: mkIf(() => config.value !== null, config.value) },
  }));
  it('a freeform value depending on a declared option, attrsOf: infinite recursion', () => {
    expect(errorOf(() => configOf(freeform, unstrDepStr).foo)).toMatch(/infinite recursion encountered/);
  });
  it('lazyAttrsOf: was accessed but has no value defined', () => {
    expect(errorOf(() => configOf(freeformLazy, unstrDepStr).foo)).toMatch(/The option .* was accessed but has no value defined. Try setting the option./);
  });
  it('lazyAttrsOf: "24"', () => expect(configOf(freeformLazy, unstrDepStr, defineValueString).foo).toBe('24'));
  const submodules = m('freeform-submodules.nix', {
    options: {
      free: mkOption({
        type: types.submodule([{ freeformType: types.attrsOf(types.submodule({ options: { foo: mkOption({}) } })) }, { freeformType: types.attrsOf(types.submodule({ options: { bar: mkOption({}) } })) }]),
      }),
    },
    config: { free: { xxx: { foo: 10 }, yyy: { bar: 10 } } },
  });
  it('freeform types merge, submodules too: config.free.xxx.foo is 10', () => expect(configOf(submodules).free.xxx.foo).toBe(10));
  it('config.free.yyy.bar is 10', () => expect(configOf(submodules).free.yyy.bar).toBe(10));
  it('freeform-attrsof-either.nix: config.number.int is 42', () => {
    const c = configOf({ options: { number: mkOption({ type: types.submodule({ freeformType: types.attrsOf(types.either(types.int, types.int)) }), default: { int: 42 } }) } });
    expect(c.number.int).toBe(42);
  });
  it('a freeform submodule declared by a TypeScript file takes free keys from YAML (checked against the JSON Schema)', async () => {
    write({
      'freeform-sub.ts': `export default ({ lib }: any) => ({
  options: {
    free: lib.mkOption({ type: lib.types.submodule({ freeformType: lib.types.attrsOf(lib.types.str), options: { known: lib.mkOption({ type: lib.types.str, default: 'k' }) } }), default: {} }),
    byFile: lib.mkOption({ type: lib.types.attrsOf(lib.types.submodule('./freeform-entry.ts')), default: {} }),
  },
});
`,
      'freeform-entry.ts': "export default ({ lib, name }: any) => ({ freeformType: lib.types.attrsOf(lib.types.int), options: { name: lib.mkOption({ default: name }) } });\n",
      'freeform-config.yaml': 'imports: [./freeform-sub.ts]\nfree:\n  extra: hello\nbyFile:\n  x:\n    count: 3\n',
    });
    const ev = await evalModules({ modules: [at('freeform-config.yaml')], beforeCheck: validateYamlModules });
    expect(deep((ev.config as any).free)).toEqual({ known: 'k', extra: 'hello' });
    expect(deep((ev.config as any).byFile)).toEqual({ x: { name: 'x', count: 3 } });
  });
});

describe('types-anything/*.nix', () => {
  const value = (...defs: unknown[]) => configOf({ options: { value: mkOption({ type: types.anything }) }, config: mkMerge(defs.map((d) => ({ value: d }))) }).value;
  const nestedAttrs = () => value({ foo: null }, { l1: { foo: null } }, { l1: { l2: { foo: null } } }, { l1: { l2: { l3: { foo: null } } } });
  it('nested-attrs: value.foo', () => expect(nestedAttrs().foo).toBe(null));
  it('nested-attrs: value.l1.foo', () => expect(nestedAttrs().l1.foo).toBe(null));
  it('nested-attrs: value.l1.l2.foo', () => expect(nestedAttrs().l1.l2.foo).toBe(null));
  it('nested-attrs: value.l1.l2.l3.foo', () => expect(nestedAttrs().l1.l2.l3.foo).toBe(null));
  it('lists: unequal lists are not concatenated', () => expect(errorOf(() => value(['a value'], ['another value']))).toMatch(/The option .* has conflicting definition values/));
  const atoms = { int: 0, bool: false, string: '', path: '/some/path', null: null, float: 0.1, list: [1, 'a', { x: null }] };
  const equal = () => value(atoms, structuredClone(atoms));
  it('equal-atoms: int', () => expect(equal().int).toBe(0));
  it('equal-atoms: bool', () => expect(equal().bool).toBe(false));
  it('equal-atoms: string', () => expect(equal().string).toBe(''));
  it('equal-atoms: path', () => expect(equal().path).toMatch(/^\/[^"]+$/));
  it('equal-atoms: null', () => expect(equal().null).toBe(null));
  it('equal-atoms: float', () => expect(equal().float).toBe(0.1));
  it('equal-atoms: list', () => expect(deep(equal().list)).toEqual([1, 'a', { x: null }]));
  const functions = () =>
    configOf(({ config }: any) => ({
      options: {
        valueIsFunction: mkOption({
          get default() {
            return Object.fromEntries(Object.entries(config.value).map(([k, f]) => [k, typeof f === 'function']));
          },
        }),
        value: mkOption({ type: types.anything }),
        applied: mkOption({
          // raw: an option without a type is `anything' in cairn, which evaluates each entry
          // (NixOS's `unspecified' takes a single definition as it is).
          type: types.raw,
          // Lazy per entry, as Nix's mapAttrs is: one entry's error is not another's.
          get default() {
            const out = {};
            for (const [k, f] of Object.entries(config.value)) Object.defineProperty(out, k, { enumerable: true, get: () => (f as (x: unknown) => unknown)(null) });
            return out;
          },
        }),
      },
      config: mkMerge([
        { value: { 'single-lambda': (x: unknown) => x, 'multiple-lambdas': (x: unknown) => ({ x }), 'merging-lambdas': (x: unknown) => ({ x }) } },
        { value: { 'multiple-lambdas': (x: unknown) => [x], 'merging-lambdas': (y: unknown) => ({ y }) } },
      ]),
    }));
  it('functions: multiple lambdas have conflicting option types', () => {
    expect(errorOf(() => functions().applied['multiple-lambdas'])).toMatch(/The option .value.multiple-lambdas.<function body>. has conflicting option types/);
  });
  it('functions: a single lambda is a function', () => expect(functions().valueIsFunction['single-lambda']).toBe(true));
  it('functions: merging lambdas, x', () => expect(functions().applied['merging-lambdas'].x).toBe(null));
  it('functions: merging lambdas, y', () => expect(functions().applied['merging-lambdas'].y).toBe(null));
  const mods = () =>
    value(
      { mkiffalse: mkIf(false, {}) },
      { mkiftrue: mkIf(true, {}) },
      { mkdefault: mkDefault(0) },
      { mkdefault: 1 },
      { mkmerge: mkMerge([{}]) },
      { mkbefore: lib.mkBefore(true) },
      { nested: mkMerge([{ foo: mkDefault(0), bar: mkIf(false, 0) }, mkIf(true, { foo: mkIf(true, mkForce(1)), bar: { baz: mkDefault('baz') } })]) },
    );
  it('mk-mods: mkIf false: attribute not found', () => expect('mkiffalse' in mods()).toBe(false));
  it('mk-mods: mkIf true: {}', () => expect(deep(mods().mkiftrue)).toEqual({}));
  it('mk-mods: mkDefault loses: 1', () => expect(mods().mkdefault).toBe(1));
  it('mk-mods: mkMerge: {}', () => expect(deep(mods().mkmerge)).toEqual({}));
  it('mk-mods: mkBefore: true', () => expect(mods().mkbefore).toBe(true));
  it('mk-mods: nested.foo is 1', () => expect(mods().nested.foo).toBe(1));
  it('mk-mods: nested.bar.baz is "baz"', () => expect(mods().nested.bar.baz).toBe('baz'));
});

describe('emptyValues.nix', () => {
  const c = () =>
    configOf({
      options: {
        int: mkOption({ type: types.lazyAttrsOf(types.int) }),
        list: mkOption({ type: types.lazyAttrsOf(types.listOf(types.int)) }),
        attrs: mkOption({ type: types.lazyAttrsOf(types.attrsOf(types.int)) }),
        null: mkOption({ type: types.lazyAttrsOf(types.nullOr(types.int)) }),
        submodule: mkOption({ type: types.lazyAttrsOf(types.submodule({})) }),
      },
      config: { int: { a: mkIf(false, null) }, list: { a: mkIf(false, null) }, attrs: { a: mkIf(false, null) }, null: { a: mkIf(false, null) }, submodule: { a: mkIf(false, null) } },
    });
  it('list.a is []', () => expect(c().list.a).toEqual([]));
  it('attrs.a is {}', () => expect(deep(c().attrs.a)).toEqual({}));
  it('null.a is null', () => expect(c().null.a).toBe(null));
  it('submodule.a is {}', () => expect(deep(c().submodule.a)).toEqual({}));
  it('int.a was accessed but has no value defined', () => expect(errorOf(() => c().int.a)).toMatch(/The option .int.a. was accessed but has no value defined. Try setting the option./));
});

describe('defaults.nix (options without definitions hold their type’s empty value)', () => {
  const c = () =>
    configOf(({ config }: any) => ({
      options: {
        list: mkOption({ type: types.listOf(types.int) }),
        attrsOf: mkOption({ type: types.attrsOf(types.int) }),
        null: mkOption({ type: types.nullOr(types.int) }),
        submodule: mkOption({ type: types.submodule({}) }),
        submoduleWithDefaults: mkOption({
          type: types.submodule({ options: { enabled: mkOption({ type: types.bool, default: true }), count: mkOption({ type: types.int, default: 13 }) } }),
        }),
        unique: mkOption({ type: types.unique({ message: 'hi' }, types.listOf(types.int)) }),
        int: mkOption({ type: types.int }),
        result: mkOption({
          type: types.str,
          get default() {
            const s = config.submoduleWithDefaults;
            return s.enabled === true && s.count === 13 && Object.keys(s).length === 2 ? 'ok' : 'wrong';
          },
        }),
      },
    }));
  it('list is []', () => expect(c().list).toEqual([]));
  it('attrsOf is {}', () => expect(deep(c().attrsOf)).toEqual({}));
  it('null is null', () => expect(c().null).toBe(null));
  it('submodule is {}', () => expect(deep(c().submodule)).toEqual({}));
  it('unique (of a list) is []', () => expect(c().unique).toEqual([]));
  it('int was accessed but has no value defined', () => expect(errorOf(() => c().int)).toMatch(/The option .int. was accessed but has no value defined. Try setting the option./));
  it("a submodule's empty value has its options' defaults: result is ok", () => expect(c().result).toBe('ok'));
  it("a submodule's empty value is evaluated at the option's path (messages name it)", () => {
    const sub = configOf({ options: { sub: mkOption({ type: types.submodule(({ name }: any) => ({ options: { count: mkOption({ type: types.int }), name: mkOption({ default: name }) } })) }) } }).sub;
    expect(sub.name).toBe('sub');
    expect(errorOf(() => sub.count)).toMatch(/The option `sub.count' was accessed but has no value defined/);
  });
});

describe('types-unique.nix', () => {
  const c = () =>
    configOf({
      options: {
        examples: mkOption({
          type: types.lazyAttrsOf(
            types.unique(
              { message: 'We require a single definition, because seeing the whole value at once helps us maintain critical invariants of our system.' },
              types.attrsOf(types.str),
            ),
          ),
        }),
      },
      imports: [{ examples: { merged: { b: 'bee' } } }, { examples: { override: mkForce({ b: 'bee' }) } }],
      config: { examples: { merged: { a: 'aye' }, override: { a: 'aye' }, badLazyType: { a: true } } },
    });
  it('requires a single definition', () => expect(errorOf(() => c().examples.merged.a)).toMatch(/The option .examples\.merged. is defined multiple times while it.s expected to be unique/));
  it("the type's message is shown", () => {
    expect(errorOf(() => c().examples.merged.a)).toContain('We require a single definition, because seeing the whole value at once helps us maintain critical invariants of our system.');
  });
  it('the inner type checks the values, when read', () => expect(errorOf(() => c().examples.badLazyType.a)).toMatch(/A definition for option .examples\.badLazyType\.a. is not of type .string./));
  it('overriding still works: "bee"', () => expect(c().examples.override.b).toBe('bee'));
});

describe('raw.nix', () => {
  const c = () =>
    configOf({
      options: {
        processedToplevel: mkOption({ type: types.raw }),
        unprocessedNesting: mkOption({ type: types.raw }),
        multiple: mkOption({ type: types.raw }),
        priorities: mkOption({ type: types.raw }),
      },
      config: {
        processedToplevel: mkIf(true, 10),
        unprocessedNesting: {
          get foo(): never {
            throw new Error('foo');
          },
        },
        multiple: mkMerge(['foo', 'foo']),
        priorities: mkMerge(['foo', mkForce('bar')]),
      },
    });
  it('a raw value is not evaluated inside', () => expect(typeof c().unprocessedNesting).toBe('object'));
  it('properties at the top are processed: 10', () => expect(c().processedToplevel).toBe(10));
  it('multiple definitions: defined multiple times', () => expect(errorOf(() => c().multiple)).toMatch(/The option .multiple. is defined multiple times/));
  it('priorities apply: "bar"', () => expect(c().priorities).toBe('bar'));
});

describe('declare-set.nix, merge-typeless-option.nix (option collisions)', () => {
  const declareSet = m('declare-set.nix', { options: { set: mkOption({ default: {}, example: { a: 1 }, type: types.attrsOf(types.int), description: 'Some descriptive text' }) } });
  it('an option of another type than submodule cannot be a parent of options', () => {
    const msg = errorOf(() => configOf(declareSet, declareEnableNested).set);
    expect(msg).toMatch(
      /The option .set. in module .*. would be a parent of the following options, but its type .attribute set of signed integer. does not support nested options.\n\s*- option[(]s[)] with prefix .set.enable. in module .*declare-enable-nested.nix./,
    );
    // cairn names the mkOption call where NixOS names the module's file.
    expect(msg).toMatch(/in module `.*nixos-modules-suite\.test\.ts:\d+:\d+' would be a parent/);
  });
  it('merging does not depend on the type being set', () => {
    const typeless = { options: { group: mkOption({}) } };
    const childOfTypeless = { options: { group: { enable: lib.mkEnableOption('nothing') } } };
    const msg = errorOf(() => configOf(m('merge-typeless-option.nix', { imports: [typeless, childOfTypeless], config: { group: { enable: false } } })).group.enable);
    expect(msg).toMatch(/The option .group..*would be a parent of the following options, but its type .<no description>. does not support nested options.\n\s*- option.s. with prefix .group.enable..*/);
  });
});

describe('options-type-error-typical*.nix', () => {
  it('a bare type: expected an option declaration at option path `result\'', () => {
    expect(errorOf(() => configOf(m('options-type-error-typical.nix', { options: { result: types.str } })).result)).toMatch(
      /In module .*options-type-error-typical.nix: expected an option declaration at option path .result. but got an attribute set with type option-type/,
    );
  });
  it('nested', () => {
    expect(errorOf(() => configOf(m('options-type-error-typical-nested.nix', { options: { result: { here: types.str } } })).result.here)).toMatch(
      /In module .*options-type-error-typical-nested.nix: expected an option declaration at option path .result.here. but got an attribute set with type option-type/,
    );
  });
});

describe('define-enable-with-top-level-mkIf.nix', () => {
  it('an imported module that is mkIf true {…}: config.enable is true', () => {
    expect(configOf(declareEnable, { imports: [mkIf(true, { enable: true })] }).enable).toBe(true);
  });
});

describe('doRename-basic.nix, doRename-warnings.nix (mkRenamedOptionModule)', () => {
  it('works without a warnings option: config.c.d.e is 1234', () => {
    const c = configOf({ imports: [lib.mkRenamedOptionModule(['a', 'b'], ['c', 'd', 'e'])], options: { c: { d: { e: mkOption({}) } } }, config: { a: { b: 1234 } } });
    expect(c.c.d.e).toBe(1234);
  });
  it('adds a warning', () => {
    const c = configOf(
      m('doRename-warnings.nix', ({ config }: any) => ({
        imports: [lib.mkRenamedOptionModule(['a', 'b'], ['c', 'd', 'e'])],
        options: { warnings: mkOption({ type: types.listOf(types.str) }), c: { d: { e: mkOption({}) } }, result: mkOption({}) },
        config: {
          a: { b: 1234 },
          get result() {
            return config.warnings.join('%');
          },
        },
      })),
    );
    expect(c.result).toMatch(/^The option `a\.b. defined in `.*doRename-warnings\.nix. has been renamed to `c\.d\.e.\.$/);
  });
});

describe('merge-module-with-key.nix', () => {
  const decl = { options: { raw: mkOption({ type: types.lines }) } };
  const moduleWithKey = { key: 'merge-module-with-key.nix#moduleWithKey', config: { raw: 'pear' } };
  const moduleWithoutKey = { config: { raw: 'pear' } };
  const c = () =>
    configOf({
      options: {
        once: mkOption({ type: types.submodule({ imports: [decl, moduleWithKey, moduleWithKey] }), default: {} }),
        twice: mkOption({ type: types.submodule({ imports: [decl, moduleWithoutKey, moduleWithoutKey] }), default: {} }),
      },
    });
  it('modules with one key count once: "pear"', () => expect(c().once.raw).toBe('pear'));
  it('anonymous modules count each time: "pear\\npear"', () => expect(c().twice.raw).toBe('pear\npear'));
});

describe('declaration-positions.nix', () => {
  it('options.imported.line14.declarationPositions: the line and file of the mkOption call', async () => {
    const file = write({
      'declaration-positions.ts': `export default ({ lib }: any) => ({
  options: {
    line3: lib.mkOption({ type: lib.types.int, default: 1 }),
    nested: {
      nestedLine5: lib.mkOption({ type: lib.types.int, default: 1 }),
    },
    submoduleLine7: lib.mkOption({
      type: lib.types.submodule({
        options: {
          submodDeclLine10: lib.mkOption({ type: lib.types.int, default: 1 }),
        },
      }),
      default: {},
    }),
  },
});
`,
    });
    const options = (await evalModules({ modules: [file] })).options as any;
    const [pos] = options.line3.declarations;
    expect(pos.line).toBe(3);
    expect(pos.file).toMatch(/\/declaration-positions.ts$/);
    // Nested options work.
    expect(options.nested.nestedLine5.declarations[0].line).toBe(5);
    // Submodules don't break it.
    expect(options.submoduleLine7.declarations[0].line).toBe(7);
    const sub = options.submoduleLine7.type.getSubOptions().declarations.lookup(['submodDeclLine10']);
    expect(sub.declarations[0]).toMatchObject({ line: 10, file: expect.stringMatching(/\/declaration-positions.ts$/) });
  });
});

describe('error-typo-*.nix (option name suggestions)', () => {
  const bools = (...names: string[]) => Object.fromEntries(names.map((n) => [n, mkOption({ default: false, type: types.bool })]));
  it('error-typo-nested.nix: Did you mean `set.enable\'?', () => {
    expect(errorOf(() => configOf(declareEnableNested, { set: { ena: true } }).set)).toMatch(/Did you mean .set\.enable.\?/);
  });
  it("error-typo-outside-with-nested.nix: Did you mean `set'?", () => {
    expect(errorOf(() => configOf(declareEnableNested, { sea: { enable: true } }))).toMatch(/Did you mean .set.\?/);
  });
  it("error-typo-multiple-suggestions.nix: Did you mean `bar', `baz' or `foo'?", () => {
    expect(errorOf(() => configOf({ options: bools('foo', 'bar', 'baz'), config: { far: true } }))).toMatch(/Did you mean .bar., .baz. or .foo.\?/);
  });
  it("error-typo-large-attrset.nix: Did you mean `enable', `ebe' or `enabled'?", () => {
    const ten = 'abcdefghij'.split('');
    const generated = ten.flatMap((a) => ten.flatMap((b) => ten.map((c) => `${a}${b}${c}`)));
    expect(errorOf(() => configOf({ options: bools(...generated, 'enable', 'enabled', 'disable'), config: { enble: true } }))).toMatch(/Did you mean .enable., .ebe. or .enabled.\?/);
  });
  it('error-typo-submodule.nix: Did you mean `services.myservice.port\'? (cairn: only names that are close)', () => {
    const c = configOf({
      options: { services: mkOption({ type: types.attrsOf(types.submodule({ options: { enable: mkOption({ default: false, type: types.bool }), port: mkOption({ default: 8080, type: types.int }) } })), default: {} }) },
      config: { services: { myservice: { prot: 9000 } } },
    });
    expect(errorOf(() => c.services.myservice)).toMatch(/Did you mean .services\.myservice\.port.\?/);
  });
  it('error-typo-deeply-nested.nix: Did you mean `…ssl.certificate\'? (cairn: only names that are close)', () => {
    const c = configOf({
      options: {
        services: {
          nginx: {
            enable: mkOption({ default: false, type: types.bool }),
            virtualHosts: mkOption({
              type: types.attrsOf(
                types.submodule({
                  options: {
                    enableSSL: mkOption({ default: false, type: types.bool }),
                    ssl: { certificate: mkOption({ default: '', type: types.str }), certificateKey: mkOption({ default: '', type: types.str }) },
                  },
                }),
              ),
              default: {},
            }),
          },
        },
      },
      config: { services: { nginx: { virtualHosts: { 'example.com': { ssl: { certficate: '/path/to/cert' } } } } } },
    });
    // NixOS also offers `…ssl.certificateKey' (the three nearest names of a small set, however far).
    expect(errorOf(() => c.services.nginx.virtualHosts['example.com'])).toMatch(/Did you mean .services\.nginx\.virtualHosts\."example\.com"\.ssl\.certificate.\?/);
  });
});

describe('definition locations in TypeScript modules', () => {
  it('a type error points at the definition, not at the mkOption line of the same name', async () => {
    const file = write({
      'located.ts': `export default ({ lib }: any) => ({
  options: {
    port: lib.mkOption({ type: lib.types.int }),
  },
  config: {
    port: 'not a number',
  },
});
`,
    });
    const msg = await asyncErrorOf(async () => ((await evalModules({ modules: [file] })).config as any).port);
    expect(msg).toMatch(/A definition for option `port' is not of type `signed integer'. Definition values:\n- In `.*located\.ts:6:5': "not a number"/);
  });
});
