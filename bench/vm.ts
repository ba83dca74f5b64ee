/**
 * VM benchmark: for a small configuration under the test driver, the time from start() to the
 * test shell answering and to multi-user.target, for a first boot (empty state disk) and a second
 * one (state kept), plus the time `cairn vm` preparation takes when nothing changed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Store } from '../src/store/index.js';
import { Machine } from '../src/testing/index.js';
import { seconds } from './build.js';

export async function run(): Promise<void> {
  process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-bench-debian-cache');
  const work = mkdtempSync(join(tmpdir(), 'cairn-bench-vm-'));
  try {
    const config = join(work, 'bench.yaml');
    writeFileSync(config, 'networking:\n  hostName: bench\nsystem:\n  stateVersion: "0.1"\n');
    const store = Store.open(join(work, 'home'));
    const machine = new Machine({ name: 'bench', config, store, dir: join(work, 'bench') });
    let t = process.hrtime.bigint();
    const prepared = await machine.build();
    console.log(`build and disks of the machine (empty store, warm download cache): ${seconds(t).toFixed(1)} s (accelerator: ${prepared.accel.accel})`);
    for (const run of ['first boot (empty state disk)', 'second boot (state kept)']) {
      t = process.hrtime.bigint();
      await machine.start();
      const shell = seconds(t);
      await machine.waitForUnit('multi-user.target');
      const multiUser = seconds(t);
      console.log(`${run}: start() to the test shell answering ${shell.toFixed(1)} s, to multi-user.target ${multiUser.toFixed(1)} s`);
      await machine.shutdown();
    }
    const again = new Machine({ name: 'bench', config, store, dir: join(work, 'bench') });
    t = process.hrtime.bigint();
    await again.build();
    console.log(`preparing the same machine again (no change): ${seconds(t).toFixed(2)} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
