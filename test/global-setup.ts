/**
 * Every temporary folder of a test run goes in one folder of its own, removed when the run ends:
 * TMPDIR points there for the test workers and all they start (cairn, QEMU, tools), so a test
 * that stops half-way, or a cairn process killed on purpose, leaves nothing behind in the
 * machine's temporary folder. The caches runs share (stores with built systems, downloaded
 * packages) stay where later runs find them, linked into the run's folder under their usual names.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Kept across runs (warm caches): named `join(tmpdir(), NAME)` by the tests. */
const SHARED = ['cairn-test-store-home', 'cairn-test-debian-cache', 'cairn-test-vm-home'];

export default function setup(): () => void {
  const machine = tmpdir();
  const run = mkdtempSync(join(machine, 'cairn-test-run-'));
  // As the machine's own: checks that run as an unprivileged user make their folders here too.
  chmodSync(run, 0o1777);
  for (const name of SHARED) {
    mkdirSync(join(machine, name), { recursive: true });
    symlinkSync(join(machine, name), join(run, name));
  }
  process.env.TMPDIR = run;
  // The VM driver's boot cache knows a machine's disks by their files: kept, not made again, from
  // one run to the next (a full run makes about 30).
  process.env.CAIRN_VM_DISKS_KEPT ??= '64';
  return () => {
    // Store paths are read-only trees: writable first, for a run that is not root's.
    spawnSync('chmod', ['-R', 'u+w', run], { stdio: 'ignore' });
    rmSync(run, { recursive: true, force: true });
  };
}
