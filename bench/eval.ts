import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { evalConfigFile, evalSystem, toPlain } from '../src/eval/index.js';
import { evalModules } from '../src/lib/index.js';
import { projectRoot } from '../src/paths.js';
import { generateEvalSet } from './eval-gen.js';

/** CPU time (user + system) and wall time of an async step, in milliseconds. */
async function measure<T>(fn: () => Promise<T>): Promise<{ cpu: number; wall: number; result: T }> {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const result = await fn();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000, wall: performance.now() - w0, result };
}

/**
 * 1,000 module files, each declaring 10 options (int, str, bool, lists, an attrsOf submodule) and
 * defining options of its neighbours with plain, mkDefault and mkForce priorities, list entries
 * from several modules, mkIf conditions reading config, and submodule entries.
 */
function generateModules(dir: string, count: number): string[] {
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const next = (i + 1) % count;
    const prev = (i + count - 1) % count;
    const src = `export default ({ lib, config }) => {
  const { mkOption, types, mkDefault, mkForce, mkIf, mkAfter } = lib;
  const item = types.submodule(({ name }) => ({ options: {
    port: mkOption({ type: types.port, default: 8000 }),
    label: mkOption({ type: types.str, default: name }),
  } }));
  return {
    options: { m${i}: {
      a: mkOption({ type: types.int, default: ${i} }),
      b: mkOption({ type: types.str, default: "b${i}" }),
      c: mkOption({ type: types.bool, default: false }),
      d: mkOption({ type: types.listOf(types.str), default: [] }),
      e: mkOption({ type: types.listOf(types.int), default: [] }),
      f: mkOption({ type: types.attrsOf(item), default: {} }),
      g: mkOption({ type: types.lines, default: "" }),
      h: mkOption({ type: types.nullOr(types.str), default: null }),
      i: mkOption({ type: types.enum(["x", "y", "z"]), default: "x" }),
      j: mkOption({ type: types.attrsOf(types.int), default: {} }),
    } },
    config: {
      m${next}: {
        a: mkDefault(${i * 2}),
        b: mkForce("forced${i}"),
        c: true,
        d: ["from${i}"],
        e: mkAfter([${i}, ${i + 1}]),
        f: { k${i}: { port: ${1000 + (i % 60000)} }, shared: { label: mkDefault("s${i}") } },
        g: "line from ${i}",
        j: { k${i}: ${i} },
      },
      m${prev}: mkIf(config.m${i}.c, { d: ["cond${i}"], h: "h${i}", i: "y" }),
    },
  };
};
`;
    const file = join(dir, `m${i}.mjs`);
    writeFileSync(file, src);
    files.push(file);
  }
  return files;
}

export async function run(): Promise<void> {
  const example = join(projectRoot, 'examples', 'server.yaml');
  // Warm the loaders once so (a) measures evaluation, as a running cairn pays it; then cold and warm.
  const a1 = await measure(async () => JSON.stringify(toPlain((await evalConfigFile(example)).config)));
  const a2 = await measure(async () => JSON.stringify(toPlain((await evalConfigFile(example)).config)));
  const none = await measure(async () => JSON.stringify(toPlain((await evalSystem([])).config)));
  console.log('eval (a): examples/server.yaml with all built-in modules, evaluated and forced to JSON');
  console.log(`  first in process: ${a1.cpu.toFixed(1)} ms CPU (${a1.wall.toFixed(1)} ms wall; includes loading YAML/ajv/esbuild)`);
  console.log(`  again:            ${a2.cpu.toFixed(1)} ms CPU (${a2.wall.toFixed(1)} ms wall)   target < 150 ms`);
  console.log(`  built-in modules alone: ${none.cpu.toFixed(1)} ms CPU`);

  const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-'));
  try {
    const files = generateModules(dir, 1000);
    const b = await measure(async () => {
      const ev = await evalModules({ modules: files });
      return JSON.stringify(toPlain(ev.config)).length;
    });
    const b2 = await measure(async () => {
      const ev = await evalModules({ modules: files });
      return JSON.stringify(toPlain(ev.config)).length;
    });
    console.log('eval (b): 1,000 generated modules, 10,000 options (priorities, lists, mkIf, submodules), forced to JSON');
    console.log(`  first (loads 1,000 files): ${b.cpu.toFixed(0)} ms CPU (${b.wall.toFixed(0)} ms wall), ${b.result} bytes of JSON`);
    console.log(`  again:                     ${b2.cpu.toFixed(0)} ms CPU (${b2.wall.toFixed(0)} ms wall)   target < 1500 ms`);
    console.log(`  ratio (b)/(a), warm: ${(b2.cpu / a2.cpu).toFixed(1)}×`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await againstNix();
}

/** CPU time (user + system) of the waited-for child processes so far, in milliseconds (Linux). */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // After the command name (in parentheses, which may hold spaces): cutime and cstime are fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
}

/** Runs a command to completion: its output, CPU time (user + system) and wall time. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): { stdout: string; cpu: number; wall: number } {
  const c0 = childrenCpuMs();
  const w0 = performance.now();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 1 << 28 });
  const wall = performance.now() - w0;
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { stdout: r.stdout, cpu: childrenCpuMs() - c0, wall };
}

/** The fastest of some runs (the machine's other work only ever adds time). */
function best(runs: { cpu: number; wall: number }[]): { cpu: number; wall: number } {
  return { cpu: Math.min(...runs.map((r) => r.cpu)), wall: Math.min(...runs.map((r) => r.wall)) };
}

const onPath = (cmd: string): boolean => (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));

/** A value with the keys of every object sorted (Nix prints attributes sorted, cairn in declaration order). */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
}

/** The first path at which two JSON values differ, or undefined. */
function firstDifference(a: unknown, b: unknown, path = 'bench'): string | undefined {
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
  }
  return `${path}: cairn ${JSON.stringify(a)?.slice(0, 200)}, nix ${JSON.stringify(b)?.slice(0, 200)}`;
}

/**
 * eval (c): the whole `cairn eval --json` process on 1,000 generated TypeScript modules against
 * `nix-instantiate --eval --strict --json` of the same modules written for nixpkgs' lib.evalModules
 * (NIXPKGS_LIB names its lib folder). Both print the same values, or the benchmark fails.
 */
async function againstNix(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'cairn-bench-nix-'));
  try {
    const set = generateEvalSet(join(work, 'set'), 1000);
    // cairn's cache of compiled modules, empty at first: the first run bundles the modules.
    const env = { ...process.env, CAIRN_HOME: join(work, 'home') };
    const cairn = (config = set.config): { stdout: string; cpu: number; wall: number } => timed(process.execPath, [join(projectRoot, 'bin', 'cairn.js'), 'eval', '--json', config], env);
    const first = cairn();
    const runs = [cairn(), cairn(), cairn()];
    const c = best(runs);
    // The same process on a configuration of no modules of its own: what every `cairn eval` pays
    // (Node, the CLI, the built-in modules, the system's assertions), which Nix's side does not.
    const empty = join(work, 'empty.ts');
    writeFileSync(empty, 'export default {};\n');
    const e = best([cairn(empty), cairn(empty), cairn(empty)]);
    console.log('eval (c): 1,000 generated TypeScript modules, whole `cairn eval --json` process');
    console.log(`  first (bundles the modules): ${first.cpu.toFixed(0)} ms CPU (${first.wall.toFixed(0)} ms wall)`);
    console.log(`  cached (best of 3):          ${c.cpu.toFixed(0)} ms CPU (${c.wall.toFixed(0)} ms wall)`);
    console.log(`  an empty configuration:      ${e.cpu.toFixed(0)} ms CPU (${e.wall.toFixed(0)} ms wall), the built-in system alone`);
    const lib = process.env.NIXPKGS_LIB;
    const skip = !lib ? 'NIXPKGS_LIB is not set (a nixpkgs lib folder, such as the lib/ of nix-community/nixpkgs.lib)' : !existsSync(join(lib, 'default.nix')) ? `NIXPKGS_LIB (${lib}) has no default.nix` : !onPath('nix-instantiate') ? 'nix-instantiate is not installed (Debian: nix-bin)' : undefined;
    if (skip) {
      console.log(`  Nix comparison skipped: ${skip}`);
      return;
    }
    const nix = (file = set.nix) => timed('nix-instantiate', ['--eval', '--strict', '--json', '--readonly-mode', file, '--argstr', 'nixpkgsLib', lib!], process.env);
    const nixRuns = [nix(), nix(), nix()];
    const n = best(nixRuns);
    const ours = canonical((JSON.parse(runs[0]!.stdout) as { bench: unknown }).bench);
    const theirs = canonical(JSON.parse(nixRuns[0]!.stdout));
    const diff = firstDifference(ours, theirs);
    if (diff) throw new Error(`cairn and Nix disagree on the generated configuration: ${diff}`);
    console.log(`  nix-instantiate --eval --strict --json (best of 3): ${n.cpu.toFixed(0)} ms CPU (${n.wall.toFixed(0)} ms wall)`);
    console.log(`  values identical (${JSON.stringify(theirs).length} bytes of JSON)`);
    console.log(`  ratio cairn/nix: ${(c.cpu / n.cpu).toFixed(2)} CPU, ${(c.wall / n.wall).toFixed(2)} wall   target <= 0.33`);
    // Nix's side with no modules: its own start and nixpkgs' lib.
    const none = join(work, 'none.nix');
    writeFileSync(none, '{ nixpkgsLib }: ((import nixpkgsLib).evalModules { modules = [ ]; }).config\n');
    const z = best([nix(none), nix(none), nix(none)]);
    console.log(`  nix-instantiate of no modules: ${z.cpu.toFixed(0)} ms CPU (${z.wall.toFixed(0)} ms wall)`);
    console.log(`  the 1,000 modules' part (each less its empty run): cairn ${(c.wall - e.wall).toFixed(0)} ms, nix ${(n.wall - z.wall).toFixed(0)} ms wall, ratio ${((c.wall - e.wall) / (n.wall - z.wall)).toFixed(2)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
