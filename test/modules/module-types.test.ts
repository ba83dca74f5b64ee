/**
 * The types cairn's own modules are checked against: `npm run build` writes them
 * (scripts/module-types.ts) from the built-in declarations before tsc runs, so a module reads
 * `config` typed, without casts, and a misspelt option or a value of the wrong type is a build error.
 */
import { execa } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
let dir = '';

/** Runs tsc (strict, as tsconfig.json) on module files below the scratch modules/. */
function tsc(name: string, files: string[]) {
  const config = join(dir, `tsconfig.${name}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        lib: ['ES2023'],
        skipLibCheck: true,
        typeRoots: [join(root, 'node_modules/@types')],
        types: ['node'],
      },
      files: files.map((f) => join(dir, 'modules', f)),
    }),
  );
  return execa(join(root, 'node_modules/.bin/tsc'), ['-p', config], { cwd: dir, reject: false });
}

function write(rel: string, text: string): void {
  mkdirSync(dirname(join(dir, 'modules', rel)), { recursive: true });
  writeFileSync(join(dir, 'modules', rel), text);
}

describe("the build's types of cairn's own modules", () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-module-types-'));
    mkdirSync(join(dir, 'modules'));
    const r = await execa(join(root, 'node_modules/.bin/tsx'), [join(root, 'scripts/module-types.ts'), join(dir, 'modules/config.d.ts')], { cwd: root, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    // Modules that read config without casts, a submodule's own entry among them.
    for (const m of ['services/openssh.ts', 'users/users.ts', 'networking/interfaces.ts']) {
      mkdirSync(dirname(join(dir, 'modules', m)), { recursive: true });
      copyFileSync(join(root, 'modules', m), join(dir, 'modules', m));
    }
  }, 120_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('types the options a module reads: the built-in modules type-check with them', async () => {
    const text = readFileSync(join(dir, 'modules/config.d.ts'), 'utf8');
    expect(text).toContain('written by `npm run build`');
    // A custom type (services.fstrim.interval, a calendar event) holds a string.
    expect(text).toMatch(/\n {6}interval: string;\n/);
    const r = await tsc('good', ['services/openssh.ts', 'users/users.ts', 'networking/interfaces.ts']);
    expect(r.exitCode, r.stdout).toBe(0);
  }, 120_000);

  it('makes a misspelt option, a value of the wrong type, or a submodule misread a type error', async () => {
    write(
      'services/bad.ts',
      `import type { Config, ModuleArgs } from '../config.js';
export default ({ config, lib }: ModuleArgs) => {
  const keys = config.services.openssh.hostKey;
  const port: string = config.services.openssh.ports[0];
  const user = lib.types.submodule(({ config: u }: ModuleArgs<Config['users']['users'][string]>) => ({ config: { home: u.isNormalUsr ? '/home/x' : '/' } }));
  return { keys, port, user };
};
`,
    );
    const r = await tsc('bad', ['services/bad.ts']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/bad\.ts\(3,\d+\): error TS\d+: Property 'hostKey' does not exist/);
    expect(r.stdout).toMatch(/bad\.ts\(4,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
    expect(r.stdout).toMatch(/bad\.ts\(5,\d+\): error TS\d+: Property 'isNormalUsr' does not exist/);
  }, 120_000);
});
