/**
 * Store benchmark: building a buildenv of a few thousand files from scratch, against a no-op
 * rebuild of the same (already valid) derivation, measured in the same run.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildEnv, registerBuilder, removeTree, Store } from '../src/store/index.js';

const PACKAGES = 20;
const FILES_PER_PACKAGE = 200;

/** A package-like tree: usr/bin, usr/lib and usr/share/doc files of a few hundred bytes to a few KiB. */
registerBuilder('bench:package', async (ctx) => {
  const { pkg, files } = ctx.drv.args as { pkg: number; files: number };
  for (let i = 0; i < files; i++) {
    const dir = join(ctx.out, 'usr', ['bin', 'lib', 'share/doc'][i % 3]!, `p${pkg}`, `d${i % 8}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}`), `package ${pkg} file ${i}\n`.repeat(1 + (i % 64)));
  }
});

export async function run(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'cairn-bench-store-'));
  try {
    const store = Store.open(home);
    const pkgs = await store.buildAll(
      Array.from({ length: PACKAGES }, (_, pkg) => ({ name: `bench-pkg${pkg}-1.0`, builder: 'bench:package', args: { pkg, files: FILES_PER_PACKAGE }, inputs: [] })),
    );
    const drv = buildEnv('sw', pkgs);

    let t = performance.now();
    const out = await store.build(drv);
    const fresh = performance.now() - t;

    // A no-op rebuild as a new invocation would see it: a new Store object, the path already valid.
    t = performance.now();
    const again = await Store.open(home).build(drv);
    const noop = performance.now() - t;
    if (again !== out) throw new Error('no-op rebuild gave another path');

    const files = PACKAGES * FILES_PER_PACKAGE;
    const info = store.pathInfo(out);
    console.log(`store: buildenv of ${files} files from ${PACKAGES} packages (${(info.narSize / 1048576).toFixed(1)} MiB)`);
    console.log(`  from scratch:    ${fresh.toFixed(1)} ms`);
    console.log(`  no-op rebuild:   ${noop.toFixed(3)} ms`);
    console.log(`  ratio:           ${(fresh / noop).toFixed(0)}x`);
  } finally {
    removeTree(home); // store trees are read-only
  }
}

// Run directly: node --import tsx bench/store.ts
if (import.meta.url === `file://${process.argv[1]}`) await run();
