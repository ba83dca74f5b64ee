/**
 * TypeScript modules that one module imports together are bundled into one script (one esbuild
 * run, one compiled script reused by later runs): their values, their errors and what they may do
 * at their top level stay as when each is imported alone.
 */
import { existsSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalModules, evaluationOf } from '../../src/lib/index.js';
import { asyncErrorOf } from './helpers.js';

let home: string;
let saved: string | undefined;
beforeAll(() => {
  saved = process.env.CAIRN_HOME;
  home = mkdtempSync(join(tmpdir(), 'cairn-home-'));
  process.env.CAIRN_HOME = home;
});
afterAll(() => {
  if (saved === undefined) delete process.env.CAIRN_HOME;
  else process.env.CAIRN_HOME = saved;
});

/** A folder of modules; sources look older than now (files written just now are never indexed). */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-batch-'));
  let when = 1_000_000_000;
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text);
    utimesSync(join(dir, name), ++when, when);
  }
  utimesSync(dir, when, when);
  return dir;
}

/** Module i declares `m<i>` and defines its successor's (n modules in a ring). */
const ringModule = (i: number, n: number, extra = ''): string =>
  `${extra}export default ({ lib, config }: { lib: any; config: any }) => ({
  options: { m${i}: lib.mkOption({ type: lib.types.listOf(lib.types.int), default: [] }) },
  config: { m${(i + 1) % n}: lib.mkAfter([${i}]) },
});
`;

const host = (names: string[]): string => `export default { imports: [${names.map((n) => `'./${n}'`).join(', ')}] };\n`;

const cached = (suffix: string): string[] => (existsSync(join(home, 'cache', 'modules')) ? readdirSync(join(home, 'cache', 'modules')).filter((f) => f.endsWith(suffix)) : []);

describe('TypeScript modules imported together', () => {
  it('are bundled into one script, with the values and messages of modules imported alone', async () => {
    const n = 30;
    const names = Array.from({ length: n }, (_, i) => `m${i}.ts`);
    const files = Object.fromEntries(names.map((name, i) => [name, ringModule(i, n)]));
    const dir = folder({ ...files, 'host.ts': host(names) });
    const scripts = cached('.js').length;
    const c = (await evalModules({ modules: [join(dir, 'host.ts')] })).config;
    expect(c.m0).toEqual([n - 1]);
    expect(c.m7).toEqual([6]);
    // One script for the thirty modules (not thirty bundles).
    expect(cached('.js').length).toBe(scripts + 1);
    expect(cached('.mjs').filter((f) => f.startsWith('m'))).toEqual([]);
    // The same again, from the script made before.
    expect((await evalModules({ modules: [join(dir, 'host.ts')] })).config.m7).toEqual([6]);
    expect(cached('.js').length).toBe(scripts + 1);
  });

  it('name the module and line of a definition that fails, and of an mkIf that is not a condition', async () => {
    const bad = `export default ({ lib }: { lib: any }) => ({
  options: { z: lib.mkOption({ type: lib.types.int, default: 0 }) },
  config: {
    z: lib.mkIf(3, 1),
  },
});
`;
    const dir = folder({ 'a.ts': ringModule(0, 2), 'b.ts': ringModule(1, 2), 'bad.ts': bad, 'host.ts': host(['a.ts', 'b.ts', 'bad.ts']) });
    const ev = await evalModules({ modules: [join(dir, 'host.ts')] });
    expect(() => ev.config.z).toThrow(/non-Boolean condition \(3\)[\s\S]*bad\.ts:4:/);
    // Declarations point at their mkOption call in the TypeScript source.
    expect(ev.option(['m1']).node.declarations[0]).toMatchObject({ file: join(dir, 'b.ts'), line: 2 });
  });

  it('name the lines of declarations and mkIf calls of modules that run twice, and of submodules they declare', async () => {
    const reads = `export default ({ lib, config }: { lib: any; config: any }) => {
  const size = config.k + 1;
  return {
    options: {
      n: lib.mkOption({ type: lib.types.int, default: 2 }),
      k: lib.mkOption({ type: lib.types.int, default: 2 }),
      s: lib.mkOption({
        type: lib.types.attrsOf(lib.types.submodule({ options: { port: lib.mkOption({ type: lib.types.port }) } })),
        default: { a: { port: 1 } },
      }),
      y: lib.mkOption({ type: lib.types.int, default: size }),
    },
    config: {
      n: lib.mkIf(size > 0, 3),
      y: lib.mkIf(config.n, 4),
    },
  };
};
`;
    const dir = folder({ 'a.ts': ringModule(0, 2), 'b.ts': ringModule(1, 2), 'reads.ts': reads, 'host.ts': host(['a.ts', 'b.ts', 'reads.ts']) });
    const ev = await evalModules({ modules: [join(dir, 'host.ts')] });
    expect(() => ev.config.y).toThrow(/non-Boolean condition \(3\)[\s\S]*reads\.ts:15:/);
    expect(ev.option(['y']).node.declarations[0]).toMatchObject({ file: join(dir, 'reads.ts'), line: 11 });
    expect(ev.option(['s']).node.declarations[0]).toMatchObject({ file: join(dir, 'reads.ts'), line: 7 });
    const value = (ev.config.s as { a: object }).a;
    const sub = evaluationOf(value)!;
    expect(sub.option(['port']).node.declarations[0]).toMatchObject({ file: join(dir, 'reads.ts'), line: 8 });
  });

  it('a module that throws at its top level is named, and the others load', async () => {
    const dir = folder({
      'a.ts': ringModule(0, 2),
      'b.ts': ringModule(1, 2),
      'boom.ts': "throw new Error('boom at the top');\nexport default {};\n",
      'host.ts': host(['a.ts', 'b.ts', 'boom.ts']),
    });
    expect(await asyncErrorOf(() => evalModules({ modules: [join(dir, 'host.ts')] }))).toMatch(/boom\.ts.*boom at the top/);
  });

  it('a module that awaits at its top level is imported alone, and its value counts', async () => {
    const waits = `const n: number = await Promise.resolve(5);
export default ({ lib }: { lib: any }) => ({ config: { m0: [n] } });
`;
    const dir = folder({ 'a.ts': ringModule(0, 2), 'b.ts': ringModule(1, 2), 'waits.ts': waits, 'host.ts': host(['a.ts', 'b.ts', 'waits.ts']) });
    const c = (await evalModules({ modules: [join(dir, 'host.ts')] })).config;
    expect([...(c.m0 as number[])].sort()).toEqual([1, 5]);
  });

  it('a module changed since its batch was made is read again', async () => {
    const dir = folder({ 'a.ts': ringModule(0, 2), 'b.ts': ringModule(1, 2), 'host.ts': host(['a.ts', 'b.ts']) });
    expect((await evalModules({ modules: [join(dir, 'host.ts')] })).config.m1).toEqual([0]);
    writeFileSync(join(dir, 'a.ts'), ringModule(0, 2).replace('lib.mkAfter([0])', 'lib.mkAfter([42])'));
    // Its time set back to what it was: the change alone must be seen.
    utimesSync(join(dir, 'a.ts'), 1_000_000_001, 1_000_000_001);
    expect((await evalModules({ modules: [join(dir, 'host.ts')] })).config.m1).toEqual([42]);
  });
});
