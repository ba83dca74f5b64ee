/**
 * Several cairn processes at once on one download cache and one store, against the local signed
 * fixture archive: two first builds on an empty cache, and a build racing `store gc` in a loop.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, verifyStore } from '../../src/store/index.js';
import { compileEntry } from '../store/helpers.js';
import { makeArchive, type FixtureArchive } from './fixture-archive.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUNS = 20;
const PACKAGES = ['alpha', 'beta', 'gamma'];

let archive: FixtureArchive;
let child: { js: string; cleanup: () => void };
let work: string;

beforeAll(async () => {
  child = compileEntry('test/debian/fixtures/child.ts');
  archive = await makeArchive({
    fixture: [
      { name: 'alpha', version: '1.0-1', bytes: 256 * 1024 },
      { name: 'beta', version: '2.0-1', bytes: 256 * 1024, depends: 'alpha' },
      { name: 'gamma', version: '0.5-2', bytes: 64 * 1024 },
    ],
  });
  work = mkdtempSync(join(tmpdir(), 'cairn-concurrency-'));
}, 120_000);

afterAll(async () => {
  await archive?.close();
  child?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Proc {
  proc: ChildProcessWithoutNullStreams;
  stdout: () => string;
  /** Resolves once stdout holds a line matching. */
  line: (re: RegExp) => Promise<RegExpMatchArray>;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function run(args: Record<string, unknown>): Proc {
  const proc = spawn(process.execPath, [child.js, JSON.stringify({ repo: archive.repo('fixture'), packages: PACKAGES, ...args })], { cwd: ROOT, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  const waiting: { re: RegExp; ok: (m: RegExpMatchArray) => void; fail: (e: Error) => void }[] = [];
  const check = (): void => {
    for (const w of [...waiting]) {
      const m = stdout.match(w.re);
      if (m) {
        waiting.splice(waiting.indexOf(w), 1);
        w.ok(m);
      }
    }
  };
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); check(); });
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => proc.on('close', (code) => {
    for (const w of waiting.splice(0)) w.fail(new Error(`child exited (${code}) before printing ${w.re}: ${stderr}`));
    resolve({ code, stdout, stderr });
  }));
  return {
    proc,
    stdout: () => stdout,
    line: (re) => new Promise((ok, fail) => { waiting.push({ re, ok, fail }); check(); }),
    exit,
  };
}

describe('two first builds on an empty download cache', () => {
  it(`both succeed, ${RUNS} runs`, async () => {
    // Slow enough that the two downloads of each .deb overlap whatever the processes' start-up times.
    Object.assign(archive.throttle, { chunk: 16 * 1024, delayMs: 10 });
    try {
      for (let i = 0; i < RUNS; i++) {
        const home = join(work, `first-${i}`);
        const cache = join(work, `first-cache-${i}`);
        const [a, b] = await Promise.all([run({ mode: 'build', home, cache }).exit, run({ mode: 'build', home, cache }).exit]);
        expect({ run: i, code: a.code, stderr: a.stderr }).toEqual({ run: i, code: 0, stderr: '' });
        expect({ run: i, code: b.code, stderr: b.stderr }).toEqual({ run: i, code: 0, stderr: '' });
        expect(a.stdout).toBe(b.stdout);
        // Every .deb once, complete, and nothing half-written left behind.
        expect(readdirSync(join(cache, 'debs')).sort()).toHaveLength(PACKAGES.length);
        expect(readdirSync(join(cache, 'debs')).every((f) => /^[0-9a-f]{64}\.deb$/.test(f))).toBe(true);
        expect(await verifyStore(Store.open(home), { checkContents: true })).toEqual([]);
        rmSync(home, { recursive: true, force: true });
      }
    } finally {
      Object.assign(archive.throttle, { chunk: 0, delayMs: 0 });
    }
  }, 120_000);
});

describe('a build racing store gc in a loop', () => {
  it(`both succeed, and gc keeps what the build checked, ${RUNS} runs`, async () => {
    const home = join(work, 'gc');
    const cache = join(work, 'gc-cache');
    const roots = join(home, 'gcroots');
    mkdirSync(roots, { recursive: true });
    const gc = run({ mode: 'gc', home, cache });
    let marks = 0;
    try {
      for (let i = 0; i < RUNS; i++) {
        // Run 1 unpacks into an empty store while gc runs; later runs find the packages valid,
        // kept by a root (a previous generation's, say) that goes away while the build runs.
        const build = run({ mode: 'build', home, cache, pause: true });
        await build.line(/^checked$/m);
        for (const link of readdirSync(roots)) if (link.startsWith('pkg-')) unlinkSync(join(roots, link));
        // A whole gc pass that began after the build had checked its packages.
        gc.proc.stdin.write('mark\n');
        marks++;
        const started = await gc.line(new RegExp(`^gc-start (\\d+) ${marks}$`, 'm'));
        await gc.line(new RegExp(`^gc-end ${started[1]}$`, 'm'));
        build.proc.stdin.write('go\n');
        const done = build.line(/^done (\S+)$/m);
        const finished = await Promise.race([done, build.exit.then((e) => e)]);
        expect({ run: i, finished: Array.isArray(finished) ? 'done' : finished }).toEqual({ run: i, finished: 'done' });
        const store = Store.open(home);
        const paths = store.pathInfo((finished as RegExpMatchArray)[1]!).references;
        expect(paths).toHaveLength(PACKAGES.length);
        paths.forEach((p, n) => symlinkSync(store.toPhysical(p), join(roots, `pkg-${n}`)));
        build.proc.stdin.write('exit\n');
        expect((await build.exit).code).toBe(0);
      }
    } finally {
      gc.proc.stdin.end();
    }
    const end = await gc.exit;
    expect({ code: end.code, stderr: end.stderr }).toEqual({ code: 0, stderr: '' });
    expect(end.stdout.split('\n').filter((l) => l.startsWith('gc-end')).length).toBeGreaterThan(RUNS);
    expect(await verifyStore(Store.open(home), { checkContents: true })).toEqual([]);
  }, 120_000);
});
