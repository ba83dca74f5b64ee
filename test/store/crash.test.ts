/**
 * Crash safety and concurrency, with real processes: builds killed with SIGKILL at random moments
 * and at each step of committing a path, and two processes building the same derivation at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store, verifyStore } from '../../src/store/index.js';
import { BUILD_FAILPOINTS } from '../../src/store/store.js';
import { manyFilesDrv } from './fixtures/drv.js';
import { compileEntry, tempHome } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let child: { js: string; cleanup: () => void };
beforeAll(() => {
  child = compileEntry('test/store/fixtures/child.ts');
}, 60_000);
afterAll(() => child?.cleanup());

interface ChildRun {
  /** Resolves when the child's builder has started (or the child ended first). */
  started: Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  kill: () => void;
}

function runChild(home: string, env: Record<string, string> = {}): ChildRun {
  const proc = spawn(process.execPath, [child.js, home], {
    cwd: ROOT,
    env: { ...process.env, CAIRN_TEST_ANNOUNCE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onStart: () => void = () => {};
  const started = new Promise<void>((r) => (onStart = r));
  proc.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('started')) onStart();
  });
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.on('exit', (code, signal) => {
      onStart();
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { started, exit, kill: () => proc.kill('SIGKILL') };
}

/** The derivation the child builds, and its output path, as seen from this process. */
async function expected(store: Store): Promise<{ out: string; drv: ReturnType<typeof manyFilesDrv> }> {
  const dep = await store.addText('dep-1.0', 'a dependency\n');
  const drv = manyFilesDrv(dep);
  return { drv, out: store.outputPath(drv) };
}

/** What a crash left is either nothing valid or a complete path; afterwards a build succeeds and clears the garbage. */
async function checkAfterCrash(home: string): Promise<'valid' | 'invalid'> {
  const store = Store.open(home);
  const { drv, out } = await expected(store);
  const state = store.isValid(out) ? 'valid' : 'invalid';
  // A valid path is not built again, so the verification below checks what the killed process left.
  expect(await store.build(drv)).toBe(out);
  expect(store.isValid(out)).toBe(true);
  expect(await verifyStore(store, { checkContents: true })).toEqual([]);
  expect(readdirSync(store.dir).filter((e) => e.startsWith('.'))).toEqual([]);
  expect(readdirSync(store.infoDir).filter((e) => !existsSync(join(store.dir, e.replace(/\.json$/, ''))))).toEqual([]);
  return state;
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

describe('crash safety', () => {
  it('survives SIGKILL at 20 random moments of a build', async () => {
    const outcomes: string[] = [];
    const trials = Array.from({ length: 20 }, (_, i) => i);
    await inBatches(trials, 4, async () => {
      const home = tempHome();
      const run = runChild(home);
      await run.started;
      const delayMs = Math.random() * 200;
      await new Promise((r) => setTimeout(r, delayMs));
      run.kill();
      const res = await run.exit;
      expect(res.stderr).toBe('');
      outcomes.push(`${res.signal ?? res.code}:${await checkAfterCrash(home)}`);
    });
    expect(outcomes.length).toBe(20);
  }, 120_000);

  it.each(BUILD_FAILPOINTS.map((f) => [f]))('survives SIGKILL %s', async (failpoint) => {
    const home = tempHome();
    const res = await runChild(home, { CAIRN_STORE_FAILPOINT: `${failpoint}@crashy-1.0` }).exit;
    expect(res.signal).toBe('SIGKILL');
    const store = Store.open(home);
    const { out } = await expected(store);
    const base = out.slice('/cairn/store/'.length);
    // The validity rule at each step: only a path renamed into place after its metadata is valid.
    expect(store.isValid(out)).toBe(failpoint === 'after-rename');
    if (failpoint === 'after-builder' || failpoint === 'after-canonicalise') {
      expect(readdirSync(store.dir).some((e) => e.startsWith('.build-'))).toBe(true);
    }
    if (failpoint === 'after-metadata') {
      expect(existsSync(join(store.infoDir, `${base}.json`))).toBe(true);
      expect(existsSync(join(store.dir, base))).toBe(false);
    }
    // Another process waits for nothing: the dead builder's lock is stale.
    expect(existsSync(join(store.locksDir, `${base}.lock`))).toBe(true);
    expect(await checkAfterCrash(home)).toBe(failpoint === 'after-rename' ? 'valid' : 'invalid');
  }, 60_000);
});

describe('concurrency', () => {
  it('two processes building the same derivation both succeed with one valid result, built once', async () => {
    const home = tempHome();
    const log = join(home, 'builds.log');
    const [a, b] = await Promise.all([runChild(home, { CAIRN_TEST_BUILD_LOG: log }).exit, runChild(home, { CAIRN_TEST_BUILD_LOG: log }).exit]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const doneA = /done (\S+)/.exec(a.stdout)?.[1];
    const doneB = /done (\S+)/.exec(b.stdout)?.[1];
    expect(doneA).toBeDefined();
    expect(doneA).toBe(doneB);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(1);
    const store = Store.open(home);
    expect(store.isValid(doneA!)).toBe(true);
    expect(await verifyStore(store, { checkContents: true })).toEqual([]);
  }, 60_000);
});
