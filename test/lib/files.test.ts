import { mkdtempSync, readdirSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { evalModules, lib, modulesPath, type ModuleInput } from '../../src/lib/index.js';
import { asyncErrorOf, deep } from './helpers.js';

const fx = (p: string): string => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
const evalFiles = (...modules: ModuleInput[]) => evalModules({ modules });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const configOf = async (...modules: ModuleInput[]): Promise<any> => (await evalFiles(...modules)).config;

describe('TypeScript module files', () => {
  it('load without a build step (types, interfaces, imports of their own helpers)', async () => {
    const ev = await evalFiles(fx('declare-settings.ts'));
    expect((ev.config as any).port).toBe(22);
    expect((ev.options as any).networking.hostName.description).toBe('The host name of the fixture.');
  });
  it('a module function reads config lazily (config = mkIf config.enable {…})', async () => {
    expect(await configOf(fx('function-module.ts'))).toMatchObject({ enable: false, port: 22, packages: [] });
    expect(await configOf(fx('function-module.ts'), { enable: true })).toMatchObject({ enable: true, port: 2200, packages: ['openssh-server'] });
    expect(await configOf(fx('function-module.ts'), { enable: true, port: 2 })).toMatchObject({ port: 2 });
  });
  it('declarations made in a file point at it', async () => {
    const ev = await evalFiles(fx('declare-enable.ts'));
    const [pos] = (ev.options as any).enable.declarations;
    expect(pos.file).toBe(fx('declare-enable.ts'));
  });
  it('a file without a default export is an error', async () => {
    expect(await asyncErrorOf(() => evalFiles(fx('no-default.ts')))).toMatch(/no-default\.ts' has no default export/);
  });
  it('reuse their bundle while what it was made from is unchanged, and are bundled again otherwise', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cairn-home-'));
    const dir = mkdtempSync(join(tmpdir(), 'cairn-ts-cache-'));
    // Sources written just now are never indexed (they may change unseen): these look older.
    let when = 1_000_000_000;
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      utimesSync(join(dir, name), ++when, when);
      utimesSync(dir, when, when);
    };
    const saved = process.env.CAIRN_HOME;
    process.env.CAIRN_HOME = home;
    try {
      write('helper.ts', "export const word: string = 'one';\n");
      symlinkSync('/nowhere', join(dir, 'result'));
      write('mod.ts', "import { word } from './helper';\nexport default ({ lib }) => ({ options: { word: lib.mkOption({ type: lib.types.str, default: word }) } });\n");
      expect(await configOf(join(dir, 'mod.ts'))).toEqual({ word: 'one' });
      const [index, ...others] = readdirSync(join(home, 'cache', 'modules')).filter((f) => f.endsWith('.json')).map((f) => join(home, 'cache', 'modules', f));
      expect(others).toEqual([]);
      const { ino } = statSync(index!);
      expect(await configOf(join(dir, 'mod.ts'))).toEqual({ word: 'one' });
      expect(statSync(index!).ino).toBe(ino);
      // A link replaced beside it (as `cairn build` replaces ./result) changes nothing it imports.
      symlinkSync('/elsewhere', join(dir, 'result.tmp'));
      renameSync(join(dir, 'result.tmp'), join(dir, 'result'));
      expect(await configOf(join(dir, 'mod.ts'))).toEqual({ word: 'one' });
      expect(statSync(index!).ino).toBe(ino);
      // A helper changed; then a new file that the import now resolves to.
      write('helper.ts', "export const word: string = 'two';\n");
      expect(await configOf(join(dir, 'mod.ts'))).toEqual({ word: 'two' });
      write('helper.tsx', "export const word: string = 'three';\n");
      expect(await configOf(join(dir, 'mod.ts'))).toEqual({ word: 'three' });
      writeFileSync(index!, '{"out": 5');
      expect(await configOf(join(dir, 'mod.ts'))).toEqual({ word: 'three' });
    } finally {
      if (saved === undefined) delete process.env.CAIRN_HOME;
      else process.env.CAIRN_HOME = saved;
    }
  });
});

describe('imports', () => {
  it('relative paths resolve from the importing file, YAML and TypeScript alike, nested', async () => {
    const c = await configOf(fx('nested/host.yaml'));
    expect(c.networking.hostName).toBe('web1');
    expect(c.port).toBe(22);
  });
  it('a module imported several times counts once', async () => {
    expect((await configOf(fx('nested/host.yaml'))).packages).toEqual(['curl', 'vim']);
    expect((await configOf(fx('nested/host.yaml'), fx('nested/packages-too.ts'))).packages).toEqual(['curl', 'vim', 'git']);
    // Declared twice with defaults, it would be "already declared": it is loaded once.
    expect((await configOf(fx('declare-enable.ts'), fx('declare-enable.ts'), { imports: [fx('declare-enable.ts')] })).enable).toBe(false);
  });
  it('relative paths of top-level modules resolve from baseDir', async () => {
    const ev = await evalModules({ modules: ['./declare-enable.ts', './define-enable.yaml'], baseDir: fx('.') });
    expect((ev.config as any).enable).toBe(true);
  });
  it('in-memory modules import files and other modules', async () => {
    const c = await configOf({ imports: [fx('declare-enable.ts'), { imports: [{ enable: true }] }] });
    expect(c.enable).toBe(true);
  });
  it('a missing file is an error naming where it was imported', async () => {
    const msg = await asyncErrorOf(() => evalFiles(fx('imports-missing.yaml')));
    expect(msg).toMatch(/cannot find the module `.*fixtures\/does-not-exist\.yaml' \(imported at `.*fixtures\/imports-missing\.yaml:3:5'\)/);
  });
  it('a file of an unknown kind is an error', async () => {
    expect(await asyncErrorOf(() => evalFiles(fx('README.txt')))).toMatch(/is not YAML, JSON, TypeScript or JavaScript/);
  });
});

describe('disabledModules', () => {
  const base = [fx('define-enable.yaml'), fx('declare-enable.ts')];
  it('without it, the definition applies', async () => {
    expect((await configOf(...base)).enable).toBe(true);
  });
  it('by a path relative to the disabling file: the definition goes', async () => {
    expect((await configOf(...base, fx('disable-define-enable.yaml'))).enable).toBe(false);
  });
  it('disabling the declaration makes the definition an unknown option', async () => {
    expect(await asyncErrorOf(() => evalFiles(...base, fx('disable-declare-enable.ts')))).toMatch(/The option `enable' does not exist. Definition values:\n- In `.*define-enable\.yaml:1:1': true/);
  });
  it('disabling both: the option is gone', async () => {
    const c = await configOf(...base, fx('disable-both.yaml'));
    expect('enable' in c).toBe(false);
  });
  it('a disabled module\'s imports go too, unless imported elsewhere (NixOS disable-recursive)', async () => {
    const main = fx('recursive/main.ts');
    expect((await configOf(main)).enable).toBe(true);
    expect((await configOf(main, fx('recursive/disable-foo.yaml'))).enable).toBe(true);
    expect((await configOf(main, fx('recursive/disable-bar.ts'))).enable).toBe(true);
    expect(await asyncErrorOf(() => evalFiles(main, fx('recursive/disable-foo.yaml'), fx('recursive/disable-bar.ts')))).toMatch(/The option `enable' does not exist/);
  });
  it('by a path in cairn\'s modules folder, with or without extension', async () => {
    const shipped = join(modulesPath, 'services', 'fixture.ts');
    const load = async (file: string): Promise<unknown> => {
      expect(file).toBe(shipped);
      return { options: { services: { fixture: { enable: lib.mkEnableOption('the fixture') } } } };
    };
    const run = (...extra: ModuleInput[]) => evalModules({ modules: [shipped, ...extra], load });
    expect(((await run()).config as any).services.fixture.enable).toBe(false);
    for (const disabled of ['services/fixture', 'services/fixture.ts']) {
      expect(deep((await run({ disabledModules: [disabled] })).config)).toEqual({});
      expect(await asyncErrorOf(() => run({ disabledModules: [disabled] }, { services: { fixture: { enable: true } } }))).toMatch(/`services' does not exist/);
    }
  });
  it('must be a list of paths', async () => {
    expect(await asyncErrorOf(() => evalFiles({ disabledModules: 'x' }))).toMatch(/`disabledModules' in .* must be a list/);
    // A number is a module key (NixOS's toString); a set without a key names nothing.
    expect(await asyncErrorOf(() => evalFiles({ disabledModules: [{ foo: 1 }] }))).toMatch(/contains a disabledModules item that is an attribute set, presumably a module, that does not have a `key' attribute/);
  });
});

describe('errors with positions from YAML', () => {
  const decl = fx('declare-settings.ts');
  it('a conflict lists both definitions with file:line:col and the priority hint', async () => {
    const msg = await asyncErrorOf(async () => (await configOf(decl, fx('positions.yaml'), fx('conflict.yaml'))).networking.hostName);
    expect(msg).toContain("The option `networking.hostName' has conflicting definition values:");
    expect(msg).toContain("- In `test/lib/fixtures/positions.yaml:2:3': \"web1\"");
    expect(msg).toContain("- In `test/lib/fixtures/conflict.yaml:2:3': \"web2\"");
    expect(msg).toContain('Use `!mkForce value` or `!mkDefault value` (YAML)');
  });
  it('a type error shows the position of the definition', async () => {
    const msg = await asyncErrorOf(async () => (await configOf(decl, fx('type-error.yaml'))).port);
    expect(msg).toContain("A definition for option `port' is not of type `16 bit unsigned integer; between 0 and 65535 (both inclusive)'");
    expect(msg).toContain("- In `test/lib/fixtures/type-error.yaml:3:1': \"not-a-port\"");
  });
  it('an unknown option says "does not exist", where, and suggests the nearest name', async () => {
    const msg = await asyncErrorOf(() => evalFiles(decl, fx('typo.yaml')));
    expect(msg).toContain("The option `networking.hostname' does not exist. Definition values:\n- In `test/lib/fixtures/typo.yaml:2:3': \"web1\"");
    expect(msg).toContain("Did you mean `networking.hostName'?");
  });
  it('list entries have positions', async () => {
    const msg = await asyncErrorOf(async () => (await configOf(decl, { packages: ['a'] }, fx('imports-missing.yaml'))).packages);
    expect(msg).toMatch(/does-not-exist\.yaml' \(imported at `test\/lib\/fixtures\/imports-missing\.yaml:3:5'/);
  });
  it('a YAML mapping left empty defines nothing', async () => {
    const c = await configOf(decl, fx('empty-namespace.yaml'));
    expect(c.networking.hostName).toBe('localhost');
    expect(c.port).toBe(2200);
  });
});

describe('YAML tags', () => {
  const decl = fx('declare-settings.ts');
  const defaults = { networking: { hostName: 'plain', domain: 'plain.org' }, port: 22, packages: ['bash'], motd: 'plain motd', flags: { a: false, z: true } };

  it('!mkForce, !mkOverride N value, !mkDefault, !mkAfter, !mkMerge, !mkBefore, !mkOverride:N on a mapping', async () => {
    const c = deep(await configOf(decl, fx('tags.yaml'), defaults)) as any;
    expect(c.networking.hostName).toBe('forced');
    expect(c.networking.domain).toBe('plain.org'); // 900 loses to a plain definition
    expect(c.port).toBe(22); // mkDefault loses too
    expect(c.packages).toEqual(['bash', 'zsh']);
    expect(c.motd).toBe('greeting\nfirst line\nplain motd');
    expect(c.flags).toEqual({ a: false, z: true }); // the mapping at 900 loses as a whole
  });
  it('the same tags without competing definitions', async () => {
    const c = deep(await configOf(decl, fx('tags.yaml'), { networking: { domain: lib.mkDefault('default.org') } })) as any;
    expect(c.networking.domain).toBe('overridden.org'); // 900 beats mkDefault's 1000
    expect(c.port).toBe(2022);
    expect(typeof c.port).toBe('number'); // a plain tagged scalar keeps its YAML type
    expect(c.flags).toEqual({ a: true, b: false });
  });
  it('!mkOrder N [list] and !mkForce on a mapping', async () => {
    const c = deep(await configOf(decl, fx('tags-more.yaml'), { packages: lib.mkBefore(['before']), flags: { d: true } }, { packages: ['plain'] })) as any;
    expect(c.packages).toEqual(['before', 'early', 'plain']); // 500 < 700 < 1000
    expect(c.flags).toEqual({ c: true });
  });
  it('an unknown tag is an error with its position', async () => {
    const msg = await asyncErrorOf(() => evalFiles(decl, fx('bad-tag.yaml')));
    expect(msg).toMatch(/fixtures\/bad-tag\.yaml:3:\d+: unknown tag `!mkForced'/);
    expect(msg).toContain('!mkForce, !mkDefault, !mkOverride');
  });
  it('invalid YAML is an error with its position', async () => {
    expect(await asyncErrorOf(() => evalFiles(decl, fx('invalid.yaml')))).toMatch(/fixtures\/invalid\.yaml:[23]:\d+: invalid YAML: Nested mappings/);
  });
});

describe('JSON modules and synchronous evaluation', () => {
  it('a JSON file is a config module', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'cairn-lib-test-'));
    writeFileSync(join(dir, 'host.json'), JSON.stringify({ imports: [fx('declare-enable.ts')], enable: true }));
    writeFileSync(join(dir, 'bad.json'), '{ "enable": ');
    expect((await configOf(join(dir, 'host.json'))).enable).toBe(true);
    expect(await asyncErrorOf(() => evalFiles(join(dir, 'bad.json')))).toMatch(/bad\.json: invalid JSON/);
  });
  it('evalModulesSync loads files too (submodules are evaluated synchronously)', async () => {
    const { evalModulesSync } = await import('../../src/lib/index.js');
    expect((evalModulesSync({ modules: [fx('declare-enable.ts'), fx('define-enable.yaml')] }).config as any).enable).toBe(true);
  });
});
