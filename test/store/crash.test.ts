/**
 * Crash safety and concurrency, with real processes: builds killed with SIGKILL at random moments
 * and at each step of committing a path, and two processes building the same derivation at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store, verifyStore } from '../../src/store/index.js';
import { BUILD_FAILPOINTS } from '../../src/store/store.js';
import { CANONICAL_MTIME } from '../../src/store/nar.js';
import { manyFilesDrv } from './fixtures/drv.js';
import type { ManyFilesArgs } from './fixtures/builders.js';
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
  /** performance.now() when this process saw the builder's `started` and the child's `finished` lines. */
  times: { started?: number; finished?: number };
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  kill: () => void;
}

function runChild(home: string, env: Record<string, string> = {}, args: Partial<ManyFilesArgs> = {}): ChildRun {
  const proc = spawn(process.execPath, [child.js, home, JSON.stringify(args)], {
    cwd: ROOT,
    env: { ...process.env, CAIRN_TEST_ANNOUNCE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const times: ChildRun['times'] = {};
  let onStart: () => void = () => {};
  const started = new Promise<void>((r) => (onStart = r));
  proc.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (times.started === undefined && stdout.includes('started')) {
      times.started = performance.now();
      onStart();
    }
    if (times.finished === undefined && stdout.includes('finished')) times.finished = performance.now();
  });
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.on('exit', (code, signal) => {
      onStart();
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { started, times, exit, kill: () => proc.kill('SIGKILL') };
}

/** The derivation the child builds, and its output path, as seen from this process. */
async function expected(store: Store, args: Partial<ManyFilesArgs> = {}): Promise<{ out: string; drv: ReturnType<typeof manyFilesDrv> }> {
  const dep = await store.addText('dep-1.0', 'a dependency\n');
  const drv = manyFilesDrv(dep, args);
  return { drv, out: store.outputPath(drv) };
}

/** What a crash left is either nothing valid or a complete path; afterwards a build succeeds and clears the garbage. */
async function checkAfterCrash(home: string, args: Partial<ManyFilesArgs> = {}): Promise<'valid' | 'invalid'> {
  const store = Store.open(home);
  const { drv, out } = await expected(store, args);
  const state = store.isValid(out) ? 'valid' : 'invalid';
  // A valid path is not built again, so the verification below checks what the killed process left.
  expect(await store.build(drv)).toBe(out);
  expect(store.isValid(out)).toBe(true);
  expect(await verifyStore(store, { checkContents: true })).toEqual([]);
  expect(readdirSync(store.dir).filter((e) => e.startsWith('.'))).toEqual([]);
  expect(readdirSync(store.infoDir).filter((e) => !existsSync(join(store.dir, e.replace(/\.json$/, ''))))).toEqual([]);
  return state;
}

/**
 * What a killed build left, before anything cleans it up, i.e. the phase the kill landed in:
 * nothing yet (`none`), a partial output (`builder`), an output being canonicalised and hashed
 * (`hashing`: some files not yet at the canonical mtime), a canonical output being synced while
 * its metadata is written (`sync`), metadata without the path (`metadata`), or the valid path.
 */
function leftBehind(home: string, args: Partial<ManyFilesArgs>): string {
  const store = Store.open(home);
  const base = readdirSync(store.infoDir).find((e) => e.endsWith('-crashy-1.0.json'))?.replace(/\.json$/, '');
  if (base !== undefined) return existsSync(join(store.dir, base)) ? 'valid' : 'metadata';
  const tmp = readdirSync(store.dir).find((e) => e.startsWith('.build-'));
  if (tmp === undefined) return 'none';
  const files = readdirSync(join(store.dir, tmp), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  if (files.length < (args.n ?? 100)) return 'builder';
  const canonical = files.filter((e) => lstatSync(join(e.parentPath, e.name)).mtimeMs === CANONICAL_MTIME * 1000).length;
  return canonical < files.length ? 'hashing' : 'sync';
}

describe('crash safety', () => {
  it('survives SIGKILL at 20 random moments of a build', async () => {
    // Big enough that a build lasts several hundred ms (builder, canonicalise and hash, sync and
    // metadata, then the rename), so kills can land in each of its phases.
    const args: Partial<ManyFilesArgs> = { n: 1000, size: 1000 };
    const TRIALS = 20;

    // Calibration: unkilled builds, timed from the builder's `started` to the child's `finished`
    // (printed once build() has returned and the path is valid); the trials then run one at a
    // time, like these, so each kill finds the build going at the pace measured here.
    const calibration: number[] = [];
    for (let i = 0; i < 2; i++) {
      const home = tempHome();
      const run = runChild(home, {}, args);
      const res = await run.exit;
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      calibration.push(run.times.finished! - run.times.started!);
      expect(await checkAfterCrash(home, args)).toBe('valid');
    }
    // Two runs (the first one also warms the disk cache); the shorter errs towards kills mid-build.
    const duration = Math.min(...calibration);

    // Each kill moment is uniform over [0, duration): trial i draws from the i-th twentieth of it
    // (stratified), so together the moments also cover the whole build.
    const outcomes: { at: number; exit: string; left: string; state: 'valid' | 'invalid' }[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const home = tempHome();
      const run = runChild(home, {}, args);
      await run.started;
      await new Promise((r) => setTimeout(r, ((i + Math.random()) / TRIALS) * duration));
      const at = performance.now() - run.times.started!;
      run.kill();
      const res = await run.exit;
      expect(res.stderr).toBe('');
      const left = leftBehind(home, args);
      const state = await checkAfterCrash(home, args);
      outcomes.push({ at: Math.round(at), exit: String(res.signal ?? res.code), left, state });
    }
    const summary = `build ${calibration.map(Math.round).join('/')} ms; kills (ms after start → what was left): ${outcomes
      .map((o) => `${o.at}→${o.left}`)
      .join(', ')}`;
    console.log(summary);
    expect(outcomes).toHaveLength(TRIALS);
    // Not vacuous: kills landed before the path became valid, mid-build, leaving garbage behind. Only
    // a kill after the final rename finds the path valid, and the first twentieth of the build alone
    // (trial 0's kill) is well before it.
    expect(outcomes.filter((o) => o.state === 'invalid').length, summary).toBeGreaterThan(0);
    expect(outcomes.filter((o) => ['builder', 'hashing', 'sync', 'metadata'].includes(o.left)).length, summary).toBeGreaterThan(0);
    // A child that was not killed finished its build: then its path is valid, never the reverse.
    for (const o of outcomes) if (o.exit !== 'SIGKILL') expect(o, summary).toMatchObject({ exit: '0', state: 'valid' });
    // 22 builds of 1000 files, each checked: 30 s idle, over two minutes beside another CPU-heavy job.
  }, 600_000);

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
