/**
 * VM benchmark: for a small configuration under the test driver, the time from start() to the
 * test shell answering and to multi-user.target, for a first boot (empty state disk) and a second
 * one (state kept), by direct kernel boot and under OVMF + systemd-boot (`useBootLoader`), plus
 * the time `cairn vm` preparation takes when nothing changed. Debian's initramfs-tools boot of a
 * debootstrap root is measured in the same run as the reference for the ratios.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Store } from '../src/store/index.js';
import { Machine } from '../src/testing/index.js';
import { seconds } from './build.js';
import { bootDebian, debianLabel, debianReference, describeBoot, measureBoots, OVMF_REFERENCE_SECONDS, ratioLine } from './boot.js';

export async function run(): Promise<void> {
  process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-bench-debian-cache');
  const work = mkdtempSync(join(tmpdir(), 'cairn-bench-vm-'));
  try {
    const config = join(work, 'bench.yaml');
    writeFileSync(config, 'networking:\n  hostName: bench\nsystem:\n  stateVersion: "0.1"\n');
    const store = Store.open(join(work, 'home'));
    const firstBoot: Record<string, number> = {};
    for (const [kind, extraModules] of [
      ['direct kernel boot', []],
      ['OVMF + systemd-boot', [{ virtualisation: { useBootLoader: true } }]],
    ] as const) {
      const machine = new Machine({ name: 'bench', config, store, dir: join(work, kind.replace(/\W+/g, '-')), extraModules: [...extraModules] });
      let t = process.hrtime.bigint();
      const prepared = await machine.build();
      console.log(`${kind}: build and disks of the machine (empty store, warm download cache): ${seconds(t).toFixed(1)} s (accelerator: ${prepared.accel.accel})`);
      for (const run of ['first boot (empty state disk)', 'second boot (state kept)']) {
        t = process.hrtime.bigint();
        await machine.start();
        const shell = seconds(t);
        await machine.waitForUnit('multi-user.target');
        const multiUser = seconds(t);
        firstBoot[kind] ??= multiUser;
        console.log(`${kind}, ${run}: start() to the test shell answering ${shell.toFixed(1)} s, to multi-user.target ${multiUser.toFixed(1)} s`);
        await machine.shutdown();
      }
      if (kind === 'direct kernel boot') {
        const again = new Machine({ name: 'bench', config, store, dir: join(work, kind.replace(/\W+/g, '-')) });
        t = process.hrtime.bigint();
        await again.build();
        console.log(`preparing the same machine again (no change): ${seconds(t).toFixed(2)} s`);
      }
    }

    const deb = await debianReference(work);
    if (deb) {
      const label = debianLabel(deb);
      const boots = await measureBoots([{ label, boot: () => bootDebian(deb) }]);
      const debian = boots.get(label)!;
      console.log(`QEMU start to multi-user.target, ${label}: ${describeBoot(debian)}`);
      console.log(ratioLine('boot ratio cairn test machine (direct kernel boot, first boot) / Debian initramfs-tools, same run', firstBoot['direct kernel boot']!, debian.best, 0.7));
    }
    console.log(ratioLine(`boot ratio cairn test machine (OVMF + systemd-boot, first boot) / fixed reference of ${OVMF_REFERENCE_SECONDS} s (not this run)`, firstBoot['OVMF + systemd-boot']!, OVMF_REFERENCE_SECONDS, 0.7));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
