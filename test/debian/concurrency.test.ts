/**
 * Several cairn processes at once on one download cache and one store, against the local signed
 * fixture archive: two first builds on an empty download cache, and a build racing `store gc`
 * in a loop. The processes stay up across runs and take one job a line, so 20 runs cost no process starts.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTree, Store, verifyStore } from '../../src/store/index.js';
import { sha256File } from '../../src/debian/cache.js';
import { makeArchive, type FixtureArchive } from './fixture-archive.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUNS = 20;
const PACKAGES = ['alpha', 'beta'];

let archive: FixtureArchive;
const CHILD = join(ROOT, 'test/debian/fixtures/child.ts');
let work: string;

beforeAll(async () => {
  archive = await makeArchive({
    fixture: [
      { name: 'alpha', version: '1.0-1', bytes: 128 * 1024 },
      { name: 'beta', version: '2.0-1', bytes: 128 * 1024, depends: 'alpha' },
    ],
  });
  work = mkdtempSync(join(tmpdir(), 'cairn-concurrency-'));
}, 120_000);

afterAll(async () => {
  await archive?.close();
  if (work) removeTree(work); // store trees are read-only
});

/** A child process and the lines it printed. */
interface Proc {
  /** Sends a line; returns the number of lines printed so far (where its answers will start). */
  send(line: string): number;
  /** The first line from index `since` on that matches, and its index. */
  line(re: RegExp, since: number): Promise<{ m: RegExpMatchArray; index: number }>;
  close(): Promise<{ code: number | null; stderr: string }>;
}

const running = new Set<() => void>();
afterAll(() => { for (const kill of running) kill(); });

function start(...args: string[]): Proc {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: ROOT, stdio: 'pipe' });
  const kill = (): void => { proc.kill('SIGKILL'); };
  running.add(kill);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let exited = false;
  const waiting = new Set<() => void>();
  const wake = (): void => { for (const w of [...waiting]) w(); };
  proc.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    wake();
  });
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.on('close', (code) => {
    exited = true;
    running.delete(kill);
    wake();
    resolve(code);
  }));
  return {
    send: (line) => {
      proc.stdin.write(line + '\n');
      return lines.length;
    },
    line: (re, since) => new Promise((ok, fail) => {
      let from = since;
      const check = (): void => {
        for (; from < lines.length; from++) {
          const m = re.exec(lines[from]!);
          if (m) {
            waiting.delete(check);
            ok({ m, index: from });
            return;
          }
        }
        if (exited) {
          waiting.delete(check);
          fail(new Error(`child exited before printing ${re}: ${stderr}`));
        }
      };
      waiting.add(check);
      check();
    }),
    close: async () => {
      proc.stdin.end();
      return { code: await exit, stderr };
    },
  };
}

const builder = (): Proc => start('build', JSON.stringify(archive.repo('fixture')), JSON.stringify(PACKAGES));

describe('two first builds on an empty download cache', () => {
  it(`both succeed, ${RUNS} runs`, async () => {
    // Slow enough that both processes' downloads of each .deb overlap.
    Object.assign(archive.throttle, { chunk: 16 * 1024, delayMs: 5 });
    const a = builder();
    const b = builder();
    try {
      for (let run = 0; run < RUNS; run++) {
        const home = join(work, `first-${run}`);
        const cache = join(work, `first-cache-${run}`);
        // Resolution and downloads, where the processes share the cache; the last run also unpacks
        // into their shared store (which store builds already serialise).
        const job = JSON.stringify({ run, home, cache, fetchOnly: run < RUNS - 1 });
        const answer = new RegExp(`^(done|failed) ${run} (.*)`);
        const [{ m: ra }, { m: rb }] = await Promise.all([a.line(answer, a.send(job)), b.line(answer, b.send(job))]);
        expect({ run, a: ra[1] === 'done' ? 'done' : ra[2], b: rb[1] === 'done' ? 'done' : rb[2] }).toEqual({ run, a: 'done', b: 'done' });
        expect(ra[2]).toBe(rb[2]); // the same system
        // Each .deb once, complete; nothing half-written left behind.
        const debs = readdirSync(join(cache, 'debs'));
        expect(debs).toHaveLength(PACKAGES.length);
        for (const f of debs) expect(`${await sha256File(join(cache, 'debs', f))}.deb`).toBe(f);
        expect(await verifyStore(Store.open(home), { checkContents: true })).toEqual([]);
      }
    } finally {
      Object.assign(archive.throttle, { chunk: 0, delayMs: 0 });
    }
    expect(await a.close()).toEqual({ code: 0, stderr: '' });
    expect(await b.close()).toEqual({ code: 0, stderr: '' });
  }, 120_000);
});

describe('a build racing store gc in a loop', () => {
  it(`both succeed, and gc keeps what the build checked, ${RUNS} runs`, async () => {
    const cache = join(work, 'gc-cache');
    const build = builder();
    const gc = start('gc');
    let marks = 0;
    /** Runs one build; between its check of the packages and their use, a whole gc pass. */
    const race = async (run: number, home: string, unroot: () => void): Promise<string> => {
      gc.send(`home ${home}`);
      const checked = await build.line(new RegExp(`^(checked ${run}|failed ${run} .*)$`), build.send(JSON.stringify({ run, home, cache, pause: true })));
      expect(checked.m[1]).toBe(`checked ${run}`);
      unroot();
      marks++;
      const pass = await gc.line(new RegExp(`^gc-start (\\d+) ${marks}$`), gc.send('mark'));
      await gc.line(new RegExp(`^gc-end ${pass.m[1]}$`), pass.index);
      const { m: r } = await build.line(new RegExp(`^(done|failed) ${run} (.*)`), build.send('go'));
      expect({ run, result: r[1] === 'done' ? 'done' : r[2] }).toEqual({ run, result: 'done' });
      return r[2]!;
    };
    // Run 0 unpacks into an empty store while gc runs in a loop.
    const first = join(work, 'gc-0');
    const top = await race(0, first, () => {});
    // The other runs find the packages valid in their store, kept by a root (an older generation's,
    // say) that goes away while the build runs: the build's check must keep them.
    const store0 = Store.open(first);
    const pkgs = store0.pathInfo(top).references;
    expect(pkgs).toHaveLength(PACKAGES.length);
    const template = join(work, 'gc-template');
    cpSync(first, template, { recursive: true, verbatimSymlinks: true, filter: (src) => {
      // The store and its metadata only: not the running processes' locks and temporary roots.
      const rel = src.slice(first.length);
      return !rel.startsWith('/var/') || rel === '/var/db' || rel.startsWith('/var/db/');
    } });
    for (let run = 1; run < RUNS; run++) {
      const home = join(work, `gc-${run}`);
      cpSync(template, home, { recursive: true, verbatimSymlinks: true });
      const store = Store.open(home);
      pkgs.forEach((p, n) => symlinkSync(store.toPhysical(p), join(home, 'gcroots', `pkg-${n}`)));
      expect(pkgs.every((p) => store.isValid(p))).toBe(true);
      await race(run, home, () => {
        for (const link of readdirSync(join(home, 'gcroots'))) if (link.startsWith('pkg-')) unlinkSync(join(home, 'gcroots', link));
      });
      expect(await verifyStore(store, { checkContents: true })).toEqual([]);
    }
    expect(await build.close()).toEqual({ code: 0, stderr: '' });
    expect(await gc.close()).toEqual({ code: 0, stderr: '' });
  }, 120_000);
});
