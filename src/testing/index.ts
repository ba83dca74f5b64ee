/**
 * VM tests (`cairn test FILE`): a test file names machines (`nodes`: name → configuration) and a
 * `testScript` that drives them. The driver builds every machine first, joins them to their
 * virtual networks (`virtualisation.vlans`), runs the script and stops the machines whatever
 * happened. May touch: the store (builds), a work folder with state disks, sockets and logs.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CairnError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { loadModuleFile } from '../lib/loader.js';
import { SourcedModule } from '../lib/index.js';
import { removeTree, type Store } from '../store/index.js';
import { Machine, MachineError, type WaitOptions } from './machine.js';
import { Vlan, vlanModule } from './vlan.js';
import { BootCacheEntry, entryKey } from './boot-cache.js';
import { QEMU } from '../vm/index.js';
import { qemuVersionText } from '../vm/accel.js';

export { Machine, MachineError, DEFAULT_TIMEOUT, lastLine, stopReason, withoutConsoleTails, type WaitOptions } from './machine.js';

/** A configuration of a node: a file (relative to the test file) or a module value written inline. */
export type NodeConfig = string | Record<string, unknown>;

/** A node whose store also holds other systems (generations its test switches to: `machine.otherSystems`). */
export interface NodeSpec {
  configuration: NodeConfig;
  alsoInStore: NodeConfig[];
}

const isSpec = (n: NodeConfig | NodeSpec): n is NodeSpec => typeof n === 'object' && n !== null && 'alsoInStore' in n && 'configuration' in n;

export interface VmTestFile {
  /** Shown in reports; the file name by default. */
  name?: string;
  nodes: Record<string, NodeConfig | NodeSpec>;
  /** Seconds the test may take when a harness runs it under a limit (cairn's own VM test driver); unset: the harness's default. */
  timeout?: number;
  testScript: (machines: Record<string, Machine>, driver: DriverContext) => Promise<void>;
}

/** What a test script gets besides its machines. */
export interface DriverContext {
  log: (message: string) => void;
  /** The store the machines were built in (`CAIRN_HOME` for cairn commands the script runs). */
  storeHome: string;
  /** The command that runs this cairn: Node and its `bin/cairn.js` (tests of the CLI against machines). */
  cairn: [string, string];
  /**
   * Runs `fn` as a named part of the script (NixOS's `subtest`): its name and time are logged, a
   * failure names it. With `fresh`, every running machine first goes back to its 'booted'
   * snapshot, so the subtest sees nothing an earlier one did; the first fresh subtest takes that
   * snapshot (once multi-user.target is reached), so start the machines right before it.
   */
  subtest: (name: string, fn: () => Promise<void>, opts?: SubtestOptions) => Promise<void>;
}

export interface SubtestOptions {
  /** Restore every running machine to its 'booted' snapshot first (taken by the first fresh subtest). */
  fresh?: boolean;
}

/** A subtest's outcome, in the order they ran. */
export interface SubtestResult {
  name: string;
  passed: boolean;
  seconds: number;
}

/** A failed subtest: its name, then what failed. */
export class SubtestError extends CairnError {}

export interface TestResult {
  name: string;
  passed: boolean;
  seconds: number;
  error?: string;
  /** The console log of each machine. */
  consoles: Record<string, string>;
  /** The machines' folder, when kept. */
  workDir?: string;
  /** The subtests the script ran (driver.subtest). */
  subtests: SubtestResult[];
}

export interface RunTestOptions {
  store: Store;
  /** Keep the work folder (state disks, logs) instead of deleting it. */
  keepVmState?: boolean;
  workDir?: string;
  /** Instead of running the script: a REPL with the machines (and `testScript()`) in scope. */
  interactive?: boolean;
  /** Virtual CPUs of every machine instead of its `virtualisation.cores` (a harness running machines side by side). */
  cpus?: number;
  onProgress?: (message: string) => void;
  log?: (message: string) => void;
  /**
   * How a harness running several tests schedules each test's two phases: building its machines
   * (the host's CPU and the store) and running them (QEMU guests, then stopping them). Each wraps
   * its phase, e.g. to wait for a turn or to bound it; by default a phase runs at once.
   */
  phases?: { build?: Phase; run?: Phase };
  /**
   * A folder of booted machine states kept across runs (see boot-cache.ts): each machine's first
   * start comes from there when an earlier passing run of the same test, systems and QEMU saved
   * it, and such a run saves it otherwise.
   */
  bootCache?: string;
}

/** A wrapper that runs a test's phase when (and as) a harness decides. */
export type Phase = (fn: () => Promise<void>) => Promise<void>;

/** An async function made from the text of a YAML test's `testScript`: each machine is a variable. */
function scriptFunction(text: string, names: string[], file: string): VmTestFile['testScript'] {
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
  let fn: (...a: unknown[]) => Promise<void>;
  try {
    fn = new AsyncFunction('machines', 'driver', ...names, text);
  } catch (err) {
    throw new CairnError(`${file}: testScript: ${(err as Error).message}`);
  }
  return (machines, driver) => fn(machines, driver, ...names.map((n) => machines[n]));
}

/** Loads and checks a test file: a TypeScript/JavaScript module's default export, or YAML with an inline script. */
export async function loadTestFile(file: string): Promise<VmTestFile> {
  if (!/\.(ts|mts|js|mjs|ya?ml)$/.test(file)) throw new CairnError(`${file}: a VM test is a TypeScript, JavaScript or YAML file ({ nodes, testScript })`);
  // The module loader compiles TypeScript without a build step and reads YAML with positions.
  const loaded = await loadModuleFile(resolve(file), { file: resolve(file) });
  const mod = (loaded instanceof SourcedModule ? loaded.value : loaded) as Partial<VmTestFile> | undefined;
  if (/\.ya?ml$/.test(file) && mod && typeof mod === 'object') {
    const script = (mod as { testScript?: unknown }).testScript;
    if (typeof script !== 'string') throw new CairnError(`${file}: testScript: expected the script's text (JavaScript; each machine is a variable)`);
    const plain = JSON.parse(JSON.stringify(mod)) as { nodes?: Record<string, NodeConfig | NodeSpec>; name?: string };
    return loadChecked(file, { ...plain, testScript: scriptFunction(script, Object.keys(plain.nodes ?? {}), file) });
  }
  return loadChecked(file, mod);
}

function loadChecked(file: string, mod: Partial<VmTestFile> | undefined): VmTestFile {
  if (!mod || typeof mod !== 'object') throw new CairnError(`${file}: the default export must be an object { nodes, testScript }`);
  if (!mod.nodes || typeof mod.nodes !== 'object' || Object.keys(mod.nodes).length === 0) throw new CairnError(`${file}: nodes: name at least one machine (name → configuration)`);
  for (const name of Object.keys(mod.nodes)) {
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) throw new CairnError(`${file}: nodes.${name}: machine names are host names (lowercase letters, digits, '-')`);
  }
  if (mod.timeout !== undefined && !(typeof mod.timeout === 'number' && mod.timeout > 0)) throw new CairnError(`${file}: timeout: expected a number of seconds`);
  if (typeof mod.testScript !== 'function') throw new CairnError(`${file}: testScript: expected an async function of the machines`);
  return mod as VmTestFile;
}

/** Writes an inline node configuration as a JSON module whose imports are absolute. */
function nodeConfigFile(node: NodeConfig, testDir: string, workDir: string, name: string): string {
  if (typeof node === 'string') return isAbsolute(node) ? node : resolve(testDir, node);
  const imports = (node.imports as unknown[] | undefined)?.map((i) => (typeof i === 'string' && !isAbsolute(i) ? resolve(testDir, i) : i));
  const file = join(workDir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ ...node, ...(imports ? { imports } : {}) }, null, 2));
  return file;
}

/** Runs a VM test: builds all machines, runs the script, stops the machines. */
export async function runTest(file: string, opts: RunTestOptions): Promise<TestResult> {
  const test = await loadTestFile(file);
  const name = test.name ?? file;
  // With --keep-vm-state the folder is the same for every run of this file: state disks carry over.
  const kept = join(tmpdir(), `cairn-test-${createHash('sha256').update(resolve(file)).digest('hex').slice(0, 12)}`);
  const work = opts.workDir ?? (opts.keepVmState ? kept : mkdtempSync(join(tmpdir(), 'cairn-test-')));
  mkdirSync(work, { recursive: true });
  const names = Object.keys(test.nodes).sort();
  // Each vlan is a user-space switch; machines get 192.168.<vlan>.<n> in name order, and every
  // machine's /etc/hosts names them all.
  const vlans = new Map<number, Vlan>();
  const machines: Record<string, Machine> = {};
  // The test's time leaves out a harness's waits before its phases.
  const started = performance.now();
  let waited = 0;
  const inPhase = async (phase: Phase | undefined, fn: () => Promise<void>): Promise<void> => {
    const asked = performance.now();
    await (phase ?? ((f) => f()))(async () => {
      waited += performance.now() - asked;
      await fn();
    });
  };
  const subtests: SubtestResult[] = [];
  let error: string | undefined;
  let bootCache: BootCacheEntry | undefined;
  try {
    const testDir = dirname(resolve(file));
    const specOf = (n: string): NodeSpec => {
      const node = test.nodes[n]!;
      return isSpec(node) ? node : { configuration: node, alsoInStore: [] };
    };
    const nodeFiles = Object.fromEntries(names.map((n) => [n, nodeConfigFile(specOf(n).configuration, testDir, work, n)]));
    const otherFiles = Object.fromEntries(names.map((n) => [n, specOf(n).alsoInStore.map((c, i) => nodeConfigFile(c, testDir, work, `${n}-other-${i + 1}`))]));
    const plan = await vlanModule(names, nodeFiles);
    for (const v of plan.vlanNumbers) {
      const sw = new Vlan(v, join(work, `vlan${v}.sock`));
      await sw.listen();
      vlans.set(v, sw);
    }
    names.forEach((n) => {
      machines[n] = new Machine({
        name: n,
        config: nodeFiles[n]!,
        store: opts.store,
        dir: join(work, n),
        extraModules: [plan.modules[n]!],
        alsoInStore: otherFiles[n],
        extraArgs: plan.qemuArgs(n, (v) => vlans.get(v)!.socket),
        cpus: opts.cpus,
        onProgress: opts.onProgress ? (m) => opts.onProgress!(`${n}: ${m}`) : undefined,
      });
    });
    const log = opts.log ?? (() => {});
    // Builds one after the other (they share the store); the machines then start in parallel.
    await inPhase(opts.phases?.build, async () => {
      for (const n of names) await machines[n]!.build();
      if (opts.bootCache) {
        const keys: Record<string, string> = {};
        for (const n of names) keys[n] = await machines[n]!.bootKey(work);
        bootCache = new BootCacheEntry(opts.bootCache, entryKey(readFileSync(resolve(file), 'utf8'), await qemuVersionText(QEMU), keys));
        for (const n of names) machines[n]!.useBootCache(bootCache);
        // Which it is, in the output: a case that boots on every warm run has something in its
        // systems that changes from run to run (each saved state records its key's parts).
        log(bootCache.from ? `boot cache: the first boots saved in ${bootCache.from} are restored` : `boot cache: no entry ${bootCache.key}; the machines boot, and are saved if the test passes`);
      }
    });
    const driver: DriverContext = { log, storeHome: opts.store.home, cairn: [process.execPath, join(projectRoot, 'bin', 'cairn.js')], subtest: (n, fn, o) => runSubtest(machines, subtests, log, n, fn, o) };
    await inPhase(opts.phases?.run, async () => {
      try {
        if (opts.interactive) await repl(machines, () => test.testScript(machines, driver));
        else await test.testScript(machines, driver);
        if (subtests.length) log(`subtests of ${name}:\n${subtestSummary(subtests)}`);
      } finally {
        // Within the run phase: its guests are gone when it ends.
        await stopAll(machines);
      }
    });
  } catch (err) {
    error = err instanceof CairnError || err instanceof Error ? err.message : String(err);
    if (!(err instanceof MachineError) && !(err instanceof CairnError) && err instanceof Error && err.stack) error = err.stack;
    if (subtests.length) error += `\n${subtestSummary(subtests)}`;
  } finally {
    await stopAll(machines);
    for (const m of Object.values(machines)) m.release();
    // The serial console of each machine, as a log beside its disks.
    for (const [n, m] of Object.entries(machines)) writeFileSync(join(work, n, 'console.log'), m.console);
    for (const v of vlans.values()) v.close();
    bootCache?.finish(error === undefined);
  }
  const consoles = Object.fromEntries(Object.entries(machines).map(([n, m]) => [n, m.console]));
  const keep = Boolean(opts.keepVmState || opts.workDir);
  if (!keep) removeTree(work);
  return { name, passed: error === undefined, seconds: (performance.now() - started - waited) / 1000, ...(error ? { error } : {}), consoles, ...(keep ? { workDir: work } : {}), subtests };
}

/** Stops every machine still running (a hard stop: the test is over). */
async function stopAll(machines: Record<string, Machine>): Promise<void> {
  await Promise.all(Object.values(machines).map((m) => m.crash().catch(() => undefined)));
}

/** One line per subtest: how it ended and its time (slow ones stand out). */
export function subtestSummary(subtests: SubtestResult[]): string {
  return subtests.map((s) => `  ${s.passed ? 'ok' : 'FAILED'} ${s.seconds.toFixed(1).padStart(6)} s  ${s.name}`).join('\n');
}

/** driver.subtest: restores the machines if asked, runs fn, records and logs its time. */
export async function runSubtest(machines: Record<string, Machine>, results: SubtestResult[], log: (m: string) => void, name: string, fn: () => Promise<void>, opts: SubtestOptions = {}): Promise<void> {
  const t = performance.now();
  const seconds = (): number => (performance.now() - t) / 1000;
  log(`subtest: ${name}${opts.fresh ? ' (fresh)' : ''}`);
  try {
    if (opts.fresh) {
      await Promise.all(
        Object.values(machines)
          .filter((m) => m.isUp)
          .map(async (m) => {
            const since = (t0: number): string => ((performance.now() - t0) / 1000).toFixed(1);
            let t0 = performance.now();
            if (m.hasSnapshot('booted')) {
              await m.restore('booted');
              log(`subtest: ${name}: ${m.name}: 'booted' restored in ${since(t0)} s`);
              return;
            }
            // A first boot with many services (a database's initdb, Python daemons) under emulation on
            // a loaded machine reaches multi-user.target late: the default limit's patience, once per machine.
            await m.waitForUnit('multi-user.target');
            const waited = since(t0);
            // Taken once the boot's daemons have finished starting: otherwise every restore would
            // start them again from where the snapshot caught them, at each fresh subtest's cost.
            t0 = performance.now();
            const settled = await m.settle();
            const settling = since(t0);
            t0 = performance.now();
            await m.snapshot('booted');
            log(`subtest: ${name}: ${m.name}: multi-user.target after ${waited} s more, ${settled ? 'idle' : 'still busy'} ${settling} s later, 'booted' snapshot taken in ${since(t0)} s`);
          }),
      );
    }
    await fn();
  } catch (err) {
    results.push({ name, passed: false, seconds: seconds() });
    const why = err instanceof CairnError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    throw new SubtestError(`subtest ${JSON.stringify(name)} failed after ${seconds().toFixed(1)} s: ${why}`);
  }
  results.push({ name, passed: true, seconds: seconds() });
  log(`subtest: ${name}: passed in ${seconds().toFixed(1)} s`);
}

/** A REPL (top-level await works) with each machine by name, `machines` and `testScript()`. */
async function repl(machines: Record<string, Machine>, testScript: () => Promise<void>): Promise<void> {
  const { start } = await import('node:repl');
  process.stderr.write(`machines: ${Object.keys(machines).join(', ')} (e.g. await ${Object.keys(machines)[0]}.start()); testScript() runs the script; .exit ends\n`);
  const r = start({ prompt: 'cairn-test> ' });
  Object.assign(r.context, machines, { machines, testScript });
  await new Promise<void>((resolve) => r.on('exit', () => resolve()));
}
