/**
 * A module is one file: every `.ts` file below modules/ is part of every system, with no list to
 * edit, whether cairn runs from its sources or from the CLI bundle; templates beside modules are
 * not modules.
 */
import { execa } from 'execa';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinModules } from '../../src/eval/builtin.js';
import { evalSystem } from '../../src/eval/index.js';
import { documentedOptions } from '../../src/eval/inspect.js';
import { importModules, moduleFiles } from '../../src/eval/module-files.js';
import { evalModules, formatLocation, modulesPath, SourcedModule } from '../../src/lib/index.js';
import { root, tempDir } from './helpers.js';

const dir = tempDir('discovery');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(rel: string, text: string): void {
  mkdirSync(join(dir, rel, '..'), { recursive: true });
  writeFileSync(join(dir, rel), text);
}

/** Every file below `d`, relative with `/` (a walk of its own, not moduleFiles'). */
function allFiles(d: string): string[] {
  return readdirSync(d, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(d, join(e.parentPath, e.name)).split('\\').join('/'));
}

describe('module discovery', () => {
  it('finds every .ts file of a folder, nested, in code-unit order, and leaves templates and .d.ts files out', async () => {
    const fixture = join(dir, 'modules');
    write('modules/services/fixture.ts', `export default ({ lib }) => ({ options: { services: { fixture: { enable: lib.mkEnableOption('the fixture') } } } });\n`);
    write('modules/services/fixture.fixture.conf.mustache', 'port={{port}}\n');
    write('modules/Zeta.ts', 'export default {};\n');
    write('modules/a/b/c.ts', 'export default {};\n');
    write('modules/types.d.ts', 'export {};\n');
    expect(moduleFiles(fixture)).toEqual(['Zeta.ts', 'a/b/c.ts', 'services/fixture.ts']);

    // A file dropped into the folder declares its options with nothing else edited.
    const mods = await importModules(fixture);
    const ev = await evalModules({ modules: mods.map(([rel, m]) => new SourcedModule(m, { file: join(fixture, rel) }, join(fixture, rel))) });
    expect((ev.config as { services: { fixture: { enable: boolean } } }).services.fixture.enable).toBe(false);
  });

  it('refuses a file without a module (a default export), naming it', async () => {
    write('lib-in-modules/services/helpers.ts', 'export const helper = 1;\n');
    await expect(importModules(join(dir, 'lib-in-modules'))).rejects.toThrow(/lib-in-modules\/services\/helpers\.ts has no default export: every \.ts file below .* is a module/);
  });

  it("makes every file below modules/ a built-in module (or a module's template), keyed by its source file", async () => {
    const files = allFiles(modulesPath).sort();
    const keys = (await builtinModules()).map((m) => relative(modulesPath, m.key).split('\\').join('/'));
    const isModule = (f: string) => f.endsWith('.ts') && !f.endsWith('.d.ts');
    expect(keys).toEqual(files.filter(isModule));
    expect(keys).toContain('misc/assertions.ts');
    expect(keys).toContain('services/openssh.ts');
    // Nothing else lives there: no list, no library code, templates beside their modules, and the
    // types of the option tree that `npm run build` writes (config.d.ts, not committed).
    for (const f of files.filter((x) => !isModule(x) && x !== 'config.d.ts')) {
      expect(f).toMatch(/\.mustache$/);
      // `<module>.<file>.mustache`: services/openssh.sshd_config.mustache belongs to services/openssh.ts.
      expect(files, `${f} is beside its module`).toContain(f.replace(/^((?:.*\/)?[^./]+)\..*$/, '$1.ts'));
    }
    for (const m of await builtinModules()) expect(m.loc.file).toBe(m.key);
  });

  it('gives the CLI bundle the same modules as the sources', async () => {
    // Every built-in module declares options: the files declaring them are the modules loaded (but
    // misc/assertions, whose options are internal, so left out of the manual).
    const declaring = (docs: { declarations: string[] }[]) => [...new Set(docs.flatMap((d) => d.declarations.map((l) => l.replace(/:\d+(:\d+)?$/, ''))))].filter((f) => f.startsWith('modules/')).sort();
    const { evaluation } = await evalSystem([], { assertions: false });
    const fromSources = declaring(documentedOptions(evaluation.decls).map((d) => ({ declarations: d.declarations.map((l) => relative(root, formatLocation(l))) })));
    const r = await execa('node', [join(root, 'bin/cairn.js'), 'options', '--format', 'json'], { cwd: root, reject: false, env: { CAIRN_HOME: join(dir, 'home') } });
    expect(r.exitCode, r.stderr).toBe(0);
    const fromBundle = declaring(Object.values(JSON.parse(r.stdout) as Record<string, { declarations: string[] }>));
    expect(fromBundle).toEqual(fromSources);
    expect(moduleFiles(modulesPath).map((f) => `modules/${f}`).filter((f) => !fromSources.includes(f))).toEqual(['modules/misc/assertions.ts']);
    expect(fromBundle).toContain('modules/services/openssh.ts');
  });
});
