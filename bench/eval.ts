import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evalConfigFile, evalSystem, toPlain } from '../src/eval/index.js';
import { evalModules } from '../src/lib/index.js';
import { projectRoot } from '../src/paths.js';

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
}
