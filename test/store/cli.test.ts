/** The `cairn store` commands, run through the compiled bin/cairn.js as a user runs them. */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildEnv, Store, type Derivation } from '../../src/store/index.js';
import { tempHome } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'cairn.js');

beforeAll(() => {
  // Type errors elsewhere in the tree must not stop these tests: tsc still emits, so ignore its status.
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ROOT], { stdio: 'pipe' });
  } catch {
    // see above
  }
  expect(existsSync(join(ROOT, 'dist', 'src', 'cli', 'commands', 'store.js'))).toBe(true);
}, 120_000);

function cairn(home: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, CAIRN_HOME: home }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tree = (name: string, files: Record<string, string>, inputs: string[] = []): Derivation => ({ name, builder: 'test:tree', args: { files }, inputs });

/** A small store: two system versions sharing one package, with ./result pointing at the newer. */
async function fixture(): Promise<{ home: string; store: Store; sys1: string; sys2: string; lib: string; junk: string }> {
  const home = tempHome();
  const store = Store.open(home);
  const lib = await store.build(tree('libfoo-1.0', { 'usr/lib/libfoo.so': 'foo' }));
  const ssl1 = await store.build(tree('openssl-3.0.11-1~deb12u2', { 'usr/lib/ssl': 'a'.repeat(1000) }));
  const ssl2 = await store.build(tree('openssl-3.0.13-1~deb12u1', { 'usr/lib/ssl': 'a'.repeat(13600) }));
  const sys1 = await store.build(buildEnv('system', [lib, ssl1]));
  const sys2 = await store.build(buildEnv('system', [lib, ssl2]));
  const junk = await store.addText('junk', 'unreferenced');
  store.addRoot(join(home, 'result'), sys2);
  return { home, store, sys1, sys2, lib, junk };
}

describe('cairn store', () => {
  it('path-info accepts logical, physical and ./result paths; --closure, --size, --json', async () => {
    const { home, store, sys2, lib } = await fixture();
    const plain = cairn(home, 'store', 'path-info', join(home, 'result'), store.toPhysical(lib));
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(`${sys2}\n${lib}\n`);

    const closure = cairn(home, 'store', 'path-info', '--closure', sys2);
    expect(closure.stdout.trim().split('\n')).toEqual(store.closure([sys2]));

    const json = cairn(home, 'store', 'path-info', '--json', '--size', sys2);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { path: string; narHash: string; narSize: number; references: string[]; closureSize: number }[];
    expect(parsed).toHaveLength(1);
    expect(parsed[0]).toMatchObject({ path: sys2, references: store.pathInfo(sys2).references });
    expect(parsed[0]!.narHash).toMatch(/^sha256:[0-9a-z]{52}$/);
    expect(parsed[0]!.closureSize).toBeGreaterThan(parsed[0]!.narSize);

    const bad = cairn(home, 'store', 'path-info', '/cairn/store/00000000000000000000000000000000-nope');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: .*not a valid store path/);
    expect(bad.stderr).not.toMatch(/at .*\.js/); // no stack trace for a user's error
  });

  it('verify exits 0 on a sound store and 1 listing a tampered path', async () => {
    const { home, store, lib } = await fixture();
    const ok = cairn(home, 'store', 'verify', '--check-contents', '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, problems: [] });

    const file = join(store.toPhysical(lib), 'usr/lib/libfoo.so');
    chmodSync(file, 0o644);
    writeFileSync(file, 'evil');
    expect(cairn(home, 'store', 'verify').code).toBe(0); // metadata alone is consistent
    const bad = cairn(home, 'store', 'verify', '--check-contents');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${lib}: contents changed`);
    const badJson = JSON.parse(cairn(home, 'store', 'verify', '--check-contents', '--json').stdout) as { ok: boolean; problems: { path: string }[] };
    expect(badJson.ok).toBe(false);
    expect(badJson.problems.map((p) => p.path)).toContain(lib);
  });

  it('gc --dry-run lists, gc deletes what no root needs and prints freed bytes', async () => {
    const { home, store, sys1, sys2, junk } = await fixture();
    // This test process keeps what it built as temporary roots while it runs; drop them, as if it had exited.
    rmSync(store.tempRootsDir, { recursive: true });
    mkdirSync(store.tempRootsDir);
    const dry = cairn(home, 'store', 'gc', '--dry-run', '--json');
    expect(dry.code).toBe(0);
    const dryRes = JSON.parse(dry.stdout) as { dryRun: boolean; deleted: string[]; freedBytes: number };
    expect(dryRes.dryRun).toBe(true);
    const expected = [sys1, junk, store.closure([sys1]).find((p) => p.includes('openssl-3.0.11'))!].sort();
    expect(dryRes.deleted).toEqual(expected);
    expect(dryRes.freedBytes).toBeGreaterThan(1000);
    for (const p of expected) expect(store.isValid(p)).toBe(true);

    const real = cairn(home, 'store', 'gc');
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(/^3 store paths deleted, [\d.]+ (KiB|bytes) freed$/m);
    for (const p of expected) expect(store.isValid(p)).toBe(false);
    for (const p of store.closure([sys2])) expect(store.isValid(p)).toBe(true);
    expect(cairn(home, 'store', 'verify', '--check-contents').code).toBe(0);
  });

  it('diff-closures shows per-package version changes and size deltas', async () => {
    const { home, sys1 } = await fixture();
    const r = cairn(home, 'store', 'diff-closures', sys1, join(home, 'result'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('openssl: 3.0.11-1~deb12u2 → 3.0.13-1~deb12u1, +12.3 KiB\n');
    expect(r.stdout).not.toContain('libfoo');
    const json = JSON.parse(cairn(home, 'store', 'diff-closures', '--json', sys1, join(home, 'result')).stdout) as { pname: string }[];
    expect(json.map((c) => c.pname)).toContain('openssl');
  });

  it('names damaged metadata (path-info exit 1, verify), and repair removes the path and its referrers', async () => {
    const { home, store, sys1, sys2, lib, junk } = await fixture();
    const info = join(home, 'var', 'db', 'info', `${lib.split('/').pop()}.json`);
    writeFileSync(info, '{"path": "/cairn/store/'); // cut short, as a lost write leaves it
    const r = cairn(home, 'store', 'path-info', lib);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the metadata of ${lib} is damaged (${info}: not JSON`);
    expect(r.stderr).toContain('cairn store repair');
    expect(r.stderr).not.toMatch(/SyntaxError|^\s+at /m);
    const v = cairn(home, 'store', 'verify');
    expect(v.code).toBe(1);
    expect(v.stdout).toContain(`${lib}: metadata damaged (${info}`);

    const dry = cairn(home, 'store', 'repair', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would remove ${sys2}`);
    expect(existsSync(info)).toBe(true);
    const fixed = cairn(home, 'store', 'repair', '--json');
    expect(fixed.code, fixed.stderr).toBe(0);
    const result = JSON.parse(fixed.stdout) as { damaged: { path: string; file: string }[]; removed: string[] };
    expect(result.damaged).toEqual([expect.objectContaining({ path: lib, file: info })]);
    expect(result.removed.sort()).toEqual([lib, sys1, sys2].sort());
    // Referrers went first: nothing valid is left referring to a removed path; the rest stays.
    expect(store.isValid(lib) || store.isValid(sys1) || store.isValid(sys2)).toBe(false);
    expect(store.isValid(junk)).toBe(true);
    expect(cairn(home, 'store', 'verify').stdout).toBe('store is consistent\n');
  });

  it('a usage error exits 2', () => {
    const r = cairn(tempHome(), 'store', 'path-info');
    expect(r.code).toBe(2);
  });
});
