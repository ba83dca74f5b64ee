/**
 * Mistakes a user can make, seen from the command line: exit 1 (or 2 for usage) with a message
 * naming the file:line and the option, never "internal error" with a stack trace.
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
let dir: string;
let home: string;
const cairn = (args: string[]) => execa('node', [join(root, 'bin/cairn.js'), ...args], { cwd: dir, reject: false, env: { CAIRN_HOME: home } });

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-errors-'));
  home = mkdtempSync(join(tmpdir(), 'cairn-errors-home-'));
});
afterAll(() => {
  for (const d of [dir, home]) if (d) rmSync(d, { recursive: true, force: true });
});

/** A user's error as the CLI reports it: exit 1, the message, no stack trace. */
function expectUserError(r: { exitCode?: number; stderr: string }): void {
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.exitCode, r.stderr).toBe(1);
}

describe('an exception thrown by a TypeScript module', () => {
  it("in a getter: exit 1, its message, the .ts line and the option; the trace only with --show-trace", async () => {
    write('getter.ts', "export default {\n  networking: {\n    get hostName(): string {\n      throw new Error('no name today');\n    },\n  },\n};\n");
    const r = await cairn(['eval', 'getter.ts']);
    expectUserError(r);
    expect(r.stderr).toContain('getter.ts:4:13: no name today');
    expect(r.stderr).toContain("while evaluating the option `networking.hostName'");
    expect(r.stderr).not.toContain('.mjs');
    const traced = await cairn(['eval', 'getter.ts', '--show-trace']);
    expect(traced.exitCode).toBe(1);
    expect(traced.stderr).toMatch(/^\s+at get hostName .*\[getter\.ts:4:13\]$/m);
  });

  it('in the module function', async () => {
    write('fn.ts', "export default () => {\n  const settings: any = undefined;\n  return { networking: { hostName: settings.name } };\n};\n");
    const r = await cairn(['eval', 'fn.ts']);
    expectUserError(r);
    expect(r.stderr).toContain("fn.ts:3:45: TypeError: Cannot read properties of undefined (reading 'name')");
    expect(r.stderr).toContain("while loading the module `fn.ts'");
  });

  it("in an option's default getter and its apply", async () => {
    write(
      'decl.ts',
      [
        'export default ({ lib }: any) => ({',
        '  options: {',
        '    site: {',
        '      title: lib.mkOption({ type: lib.types.str, get default(): string { throw new Error(\'no default title\'); } }),',
        '      port: lib.mkOption({ type: lib.types.int, default: 80, apply: (p: number) => { if (p < 1024) throw new RangeError(`port ${p} is privileged`); return p; } }),',
        '    },',
        '  },',
        '});',
        '',
      ].join('\n'),
    );
    const title = await cairn(['eval', 'decl.ts', '--option', 'site.title']);
    expectUserError(title);
    expect(title.stderr).toContain('decl.ts:4:80: no default title');
    expect(title.stderr).toContain("while evaluating the option `site.title'");
    const port = await cairn(['eval', 'decl.ts', '--option', 'site.port']);
    expectUserError(port);
    expect(port.stderr).toContain('decl.ts:5:106: RangeError: port 80 is privileged');
    expect(port.stderr).toContain("while evaluating the option `site.port'");
  });
});

describe('a missing import', () => {
  it('of a TypeScript module names the import and where it is written', async () => {
    write('imp.ts', "import helper from './helper-gone.js';\nexport default { networking: { hostName: helper } };\n");
    const r = await cairn(['eval', 'imp.ts']);
    expectUserError(r);
    expect(r.stderr).toContain("cannot find module `./helper-gone.js' imported from `imp.ts:1:20'");
  });

  it('of a JavaScript module names the missing file and its importer, not the importer as missing', async () => {
    write('imp.js', "const unused = 1;\nimport helper from './helper-gone.js';\nexport default { networking: { hostName: helper } };\n");
    const r = await cairn(['eval', 'imp.js']);
    expectUserError(r);
    expect(r.stderr).toContain("cannot find module `helper-gone.js' imported from `imp.js:2:20'");
  });
});

describe('printing a value as YAML', () => {
  const module = (value: string) =>
    `export default ({ lib }: any) => {\n${value}\n  return { options: { v: lib.mkOption({ type: lib.types.raw, default: {} }) }, config: { v } };\n};\n`;

  it('prints a value thousands of levels deep', async () => {
    write('deep.ts', module("  let v: any = 'leaf';\n  for (let i = 0; i < 3000; i++) v = { n: v };"));
    const r = await cairn(['eval', 'deep.ts', '--option', 'v']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.match(/"n":/g)).toHaveLength(3000);
    expect(r.stdout).toContain('"leaf"');
  });

  it('names where a value that contains itself does so', async () => {
    write('cycle.ts', module("  const v: any = { name: 'loop', more: {} };\n  v.more.back = v;"));
    const r = await cairn(['eval', 'cycle.ts', '--option', 'v']);
    expectUserError(r);
    expect(r.stderr).toContain("The value at `v.more.back' is one that contains it (a cycle)");
  });
});

describe('command-line values checked before anything is built', () => {
  // The configuration would take minutes to build: a refusal that comes at once was made first.
  it('cairn vm --mem abc and --cpus 0 are usage errors', async () => {
    const conf = write('vm.yaml', 'networking:\n  hostName: vm\n');
    const mem = await cairn(['vm', conf, '--mem', 'abc', '--dry-run']);
    expect(mem.exitCode, mem.stderr).toBe(2);
    expect(mem.stderr).toContain('--mem must be a positive whole number');
    const cpus = await cairn(['vm', conf, '--cpus', '0', '--dry-run']);
    expect(cpus.exitCode, cpus.stderr).toBe(2);
    expect(cpus.stderr).toContain('--cpus must be a positive whole number, not 0');
    expect(cpus.stderr).not.toContain('building');
  });

  it('cairn image --size banana names the option', async () => {
    const conf = write('img.yaml', 'networking:\n  hostName: img\n');
    const r = await cairn(['image', conf, '--size', 'banana', '-o', join(dir, 'x.img')]);
    expectUserError(r);
    expect(r.stderr).toContain("--size: 'banana' is not a size");
    expect(r.stderr).not.toContain('building');
  });
});
