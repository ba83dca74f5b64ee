import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
let dir: string;
let home: string;
const cairn = (args: string[], env: Record<string, string> = {}) =>
  execa('node', [join(root, 'bin/cairn.js'), ...args], { cwd: dir, reject: false, env: { CAIRN_HOME: home, ...env }, timeout: 30_000 });

function write(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-evalguard-'));
  home = mkdtempSync(join(tmpdir(), 'cairn-evalguard-home-'));
});

const limitHint = 'raise the limit with --eval-timeout SECONDS or CAIRN_EVAL_TIMEOUT=SECONDS (0: no limit)';

describe('configuration code that never returns', () => {
  it('an endless loop in a module function is stopped at the limit, naming where it ran', async () => {
    const file = write('loop-function.ts', 'export default () => {\n  let i = 0;\n  for (;;) i++;\n};\n');
    const r = await cairn(['eval', file, '--eval-timeout', '1']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("error: evaluation time limit: the configuration code at `loop-function.ts:3:3' ran for more than 1 s without returning");
    expect(r.stderr).toContain(limitHint);
    expect(r.stderr).not.toContain('    at ');
  }, 30_000);

  it('an endless loop in a getter read lazily during evaluation is stopped too (limit from CAIRN_EVAL_TIMEOUT)', async () => {
    const file = write(
      'loop-getter.ts',
      'export default {\n  environment: {\n    etc: {\n      motd: {\n        get text(): string {\n          let s = 0;\n          while (s >= 0) s = (s + 1) % 7;\n          return String(s);\n        },\n      },\n    },\n  },\n};\n',
    );
    const r = await cairn(['eval', file], { CAIRN_EVAL_TIMEOUT: '1' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("error: evaluation time limit: the configuration code at `loop-getter.ts:7:11' ran for more than 1 s without returning");
  }, 30_000);

  it('a top-level await that never settles is named (not exit 13 with nothing said)', async () => {
    const file = write('never.ts', 'await new Promise(() => {});\nexport default {};\n');
    const r = await cairn(['eval', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("error: The module `never.ts' never finished loading: a top-level `await' in it waits for a promise that never settles");
  }, 30_000);

  it('a limit that is not a number of seconds is a usage error', async () => {
    expect((await cairn(['eval', write('empty.yaml', '{}\n'), '--eval-timeout', '-1'])).exitCode).toBe(2);
    const r = await cairn(['eval', 'empty.yaml'], { CAIRN_EVAL_TIMEOUT: 'soon' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("CAIRN_EVAL_TIMEOUT must be a number of seconds (0: no limit), not `soon'");
  }, 30_000);
});
