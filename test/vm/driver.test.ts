/**
 * The VM test driver, run on the VM tests in test/vm/cases/ (what `cairn test FILE` runs): the
 * server example reached by ssh and curl from the host, two machines on a vlan with block() and
 * unblock(), a failing unit seen at once, a state disk kept across crash() and start(), a
 * failing test reported with the failed call, its output and the machine's console; and the
 * generations cases on machines that boot like hardware: switching and boot entries, remote
 * deploys with magic rollback, power cuts during switches, cairn switching the machine it runs on.
 */
import { describe, it, type ExpectStatic } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store } from '../../src/store/index.js';
import { loadTestFile, runTest, withoutConsoleTails, type Phase } from '../../src/testing/index.js';
import { QEMU } from '../../src/vm/index.js';
import { GUEST_CPUS, queueForSlots } from './qemu-slots.js';

const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;
process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
/**
 * Booted machines kept across runs (warm caches): a case whose test file, systems and QEMU are
 * unchanged since a passing run restores its machines' first boots (those no machine outside
 * their group of starts ran beside) instead of booting them. The tests of booting itself (boot, image-boot, the installs,
 * power-cut's cuts, reboots) still boot.
 */
const BOOT_CACHE = join(STORE_HOME, 'boot-cache');
const CASES = resolve(import.meta.dirname, 'cases');
const CLI = resolve(import.meta.dirname, '../../bin/cairn.js');
const TIMEOUT = 900_000;
/** One vCPU per guest (see GUEST_CPUS). */
const CPUS = GUEST_CPUS;

/** The cases below with tests of their own, run through the CLI: left out of the loop over the others. */
const FAILING = 'failing.test.ts';
const INLINE = 'inline.test.yaml';

/**
 * Every other case in the folder, found by name (`*.test.ts`, `*.test.yaml`): a new case is a new
 * file. Loaded as `cairn test` loads it, for its own name and time limit; runTest's load of it
 * again gets the same module. Longest limit first (then by name): the long cases start at once
 * and the short ones fill the other slot meanwhile, instead of one long case running alone last.
 */
const cases = (
  await Promise.all(
    readdirSync(CASES)
      .filter((f) => /\.test\.(ts|yaml)$/.test(f) && f !== FAILING && f !== INLINE)
      .map(async (file) => ({ file, test: await loadTestFile(join(CASES, file)) })),
  )
).sort((a, b) => (b.test.timeout ?? 0) - (a.test.timeout ?? 0) || a.file.localeCompare(b.file));

const limitOf = (t: { timeout?: number }): number => (t.timeout !== undefined ? t.timeout * 1000 : TIMEOUT);
/**
 * A case's vitest limit also covers its waits for a build turn and for slots, which are at most
 * every other case's build and run: the case's own limit bounds its build, and its run from the
 * moment it has its slots.
 */
const WAIT_LIMIT = cases.reduce((sum, c) => sum + 2 * limitOf(c.test), 4 * TIMEOUT);

/** Runs `fn` within `limit` ms. */
async function withLimit<T>(limit: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: timed out after ${limit / 1000} s`)), limit);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn` once `machines` guests may run, within `limit` ms from then. */
async function inSlots<T>(machines: number, limit: number, what: string, fn: () => Promise<T>): Promise<T> {
  const release = await queueForSlots(machines);
  try {
    return await withLimit(limit, what, fn);
  } finally {
    release();
  }
}

/**
 * Cases build their machines one at a time, and before they queue for slots: a build takes the
 * host's CPU and the store, not a guest. A case that built while holding its slots kept a guest
 * from running meanwhile, and with it one of the two cores idle.
 */
let builds: Promise<unknown> = Promise.resolve();
const oneBuildAtATime =
  (limit: number, what: string): Phase =>
  (fn) => {
    const turn = builds.then(() => withLimit(limit, `${what}, building its machines,`, fn));
    builds = turn.catch(() => undefined);
    return turn;
  };

async function passes(file: string, machines: number, limit: number, expect: ExpectStatic): Promise<void> {
  // Cases run side by side: each log line says whose it is.
  const log = (m: string) => process.stderr.write(`${file}: ${m}\n`);
  const r = await runTest(join(CASES, file), {
    store: Store.open(STORE_HOME),
    cpus: CPUS,
    log,
    phases: { build: oneBuildAtATime(limit, file), run: (fn) => inSlots(machines, limit, file, fn) },
    bootCache: BOOT_CACHE,
  });
  process.stderr.write(`${r.name}: ${r.passed ? 'passed' : 'FAILED'} in ${r.seconds.toFixed(1)} s\n`);
  if (r.error !== undefined) {
    // The whole error here, with the machines' console tails; the assertion below, which ends the
    // run's output, says why without them (a long console would push the reason out of sight).
    process.stderr.write(`${file}: ${r.error}\n`);
    expect.fail(`${file} failed: ${withoutConsoleTails(r.error)}`);
  }
  expect(r.passed).toBe(true);
}

describe.skipIf(!hasQemu)('cairn test', () => {
  for (const { file, test } of cases) {
    const machines = Object.keys(test.nodes).length;
    it.concurrent(`${file}: ${test.name ?? file}`, ({ expect }) => passes(file, machines, limitOf(test), expect), WAIT_LIMIT);
  }

  it.concurrent('runs a YAML test whose script is inline JavaScript', async ({ expect }) => {
    const r = await inSlots(1, TIMEOUT, INLINE, () => execa('node', [CLI, 'test', join(CASES, INLINE), '--json'], { reject: false, env: { CAIRN_HOME: STORE_HOME } }));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'a YAML test', passed: true, error: null });
    expect(r.stderr).toContain('machines: machine');
  }, WAIT_LIMIT);

  it.concurrent('--interactive gives a REPL with the machines in scope instead of running the script', async ({ expect }) => {
    const r = await inSlots(1, TIMEOUT, FAILING, () =>
      execa('node', [CLI, 'test', join(CASES, FAILING), '--interactive'], {
        reject: false,
        env: { CAIRN_HOME: STORE_HOME },
        input: 'console.log("start is a " + typeof failer.start + ", machines: " + Object.keys(machines))\n.exit\n',
      }),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('start is a function, machines: failer');
  }, WAIT_LIMIT);

  it.concurrent('exits 1 for a failing test, naming the call, its output and the console, and writes a JUnit report', async ({ expect }) => {
    const junit = join(mkdtempSync(join(tmpdir(), 'cairn-junit-')), 'report.xml');
    const r = await inSlots(1, TIMEOUT, FAILING, () => execa('node', [CLI, 'test', join(CASES, FAILING), '--junit', junit], { reject: false, env: { CAIRN_HOME: STORE_HOME } }));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('failed: a failing test');
    expect(r.stderr).toContain('failer: succeed("echo \\"about to fail\\"; false") failed with exit status 1; its output:\nabout to fail');
    expect(r.stderr).toContain("--- last lines of failer's console ---");
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain('<testsuite name="cairn" tests="1" failures="1"');
    expect(xml).toContain('<failure message="failer: succeed(');
  }, WAIT_LIMIT);
});
