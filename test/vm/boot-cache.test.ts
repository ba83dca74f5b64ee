/**
 * The boot cache of VM tests (runTest's `bootCache`, `cairn test --boot-cache`): a first run boots
 * two machines started together and saves their booted states at one moment; a second run of the
 * same test restores both instead of booting (the same boot ids), without what the first run did
 * after the save, with the host's time, the watchdogs on and the timers waiting, the two reaching
 * each other on their vlan, and each console log begins with the saved boot's; a host slow to go on
 * once they run does not lose their test shells.
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTest } from '../../src/testing/index.js';
import { removeTree, Store } from '../../src/store/index.js';
import { QEMU } from '../../src/vm/index.js';
import { GUEST_CPUS, SLOT_WAIT_MS, takeSlot, type Release } from './qemu-slots.js';

const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;
process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
// The VM driver's store: its store disks are reused.
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const TIMEOUT = 900_000;

const work = mkdtempSync(join(tmpdir(), 'cairn-boot-cache-'));
const cache = join(work, 'cache');
const file = join(work, 'cached.test.ts');
const report = (run: number): string => join(work, `report-${run}.json`);
writeFileSync(
  file,
  `import { writeFileSync } from 'node:fs';
export default {
  name: 'two machines from the boot cache',
  nodes: {
    machine: { networking: { hostName: 'cached' }, system: { stateVersion: '0.1' }, environment: { systemPackages: ['iputils-ping'] } },
    peer: { networking: { hostName: 'peer' }, system: { stateVersion: '0.1' } },
  },
  testScript: async ({ machine, peer }) => {
    // Started together: one group, saved at one moment and restored together.
    await Promise.all([machine.start(), peer.start()]);
    await machine.waitForUnit('multi-user.target');
    const got = {
      bootId: (await machine.succeed('cat /proc/sys/kernel/random/boot_id')).trim(),
      peerBootId: (await peer.succeed('cat /proc/sys/kernel/random/boot_id')).trim(),
      earlierWrite: (await machine.execute('cat /var/lib/written-after-the-save')).status,
      clock: Number(await machine.succeed('date +%s.%N')) - Date.now() / 1000,
      watchdogs: (await machine.succeed('systemctl show -P ServiceWatchdogs')).trim(),
      timers: (await machine.succeed('systemctl list-units --type=timer --state=active --plain --no-legend | cut -d" " -f1 | sort')).trim(),
    };
    // The two reach each other over their vlan.
    await machine.waitUntilSucceeds('ping -c 1 -W 2 peer', { timeout: 60 });
    await machine.succeed('echo written > /var/lib/written-after-the-save && sync');
    writeFileSync(process.env.CAIRN_BOOT_CACHE_REPORT, JSON.stringify(got));
  },
};
`,
);

describe.skipIf(!hasQemu)('the boot cache', () => {
  let releaseSlot: Release | undefined;
  beforeAll(async () => {
    releaseSlot = await takeSlot(2);
  }, SLOT_WAIT_MS);
  afterAll(() => {
    releaseSlot?.();
    removeTree(work);
  });

  it('restores booted machines started together, saved by an earlier run of the same test', async () => {
    const runOnce = async (n: number) => {
      process.env.CAIRN_BOOT_CACHE_REPORT = report(n);
      const logs: string[] = [];
      const r = await runTest(file, { store: Store.open(STORE_HOME), cpus: GUEST_CPUS, bootCache: cache, log: (m) => logs.push(m) });
      expect(r.error).toBeUndefined();
      return { r, logs, got: JSON.parse(readFileSync(report(n), 'utf8')) as { bootId: string; peerBootId: string; earlierWrite: number; clock: number; watchdogs: string; timers: string } };
    };
    const first = await runOnce(1);
    expect(first.r.consoles.machine).toMatch(/--- cairn: machine: boot saved in the boot cache in [\d.]+ s with peer, started together ---/);
    expect(first.r.consoles.peer).toMatch(/--- cairn: peer: boot saved in the boot cache in [\d.]+ s with machine, started together ---/);
    expect(readdirSync(cache)).toHaveLength(1);
    // The output says the machines booted; the saved state says what its key was made of (to be
    // compared with a later run that did not restore it).
    expect(first.logs).toContainEqual(expect.stringMatching(/^boot cache: no entry [0-9a-f]+; the machines boot/));
    const saved = JSON.parse(readFileSync(join(cache, readdirSync(cache)[0]!, 'machine', 'saved'), 'utf8')) as { group: string[]; key: { line: string[]; ids: string[] } };
    expect(saved.group).toEqual(['machine', 'peer']);
    expect(saved.key.line).toContain('-kernel');
    expect(saved.key.ids.some((id) => /\/vmlinux \d+:\d+:\d+$/.test(id))).toBe(true);

    const second = await runOnce(2);
    expect(second.logs).toContainEqual(expect.stringMatching(/^boot cache: the first boots saved in .* are restored/));
    const log = second.r.consoles.machine!;
    expect(log).toMatch(/--- cairn: machine: its boot restored from the boot cache \(.*\) \(its clock was [\d.]+ s behind the host's, now set\) ---/);
    // The log holds the saved boot's console, then says so.
    expect(log).toContain('Welcome to');
    expect(log).toContain("the boot above is an earlier run's, from the boot cache");
    expect(second.r.consoles.peer).toContain("the boot above is an earlier run's, from the boot cache");
    // The same boots, restored: not booted again.
    expect(second.got.bootId).toBe(first.got.bootId);
    expect(second.got.peerBootId).toBe(first.got.peerBootId);
    // What the first run did after the save is not there.
    expect(first.got.earlierWrite).not.toBe(0);
    expect(second.got.earlierWrite).not.toBe(0);
    expect(Math.abs(second.got.clock)).toBeLessThan(3);
    expect(second.got.watchdogs).toBe('yes');
    expect(second.got.timers).not.toBe('');
    expect(second.got.timers).toBe(first.got.timers);

    // A host slow to go on once the restored guests run (as on a loaded machine): their test shells
    // were connected before, so the guests never saw the host's side of the port closed (their
    // shells would read end of file and end, and the machine never answer).
    process.env.CAIRN_TEST_RESTORE_LAG_MS = '3000';
    try {
      const third = await runOnce(3);
      expect(third.logs).toContainEqual(expect.stringMatching(/^boot cache: the first boots saved in .* are restored/));
      expect(third.got.bootId).toBe(first.got.bootId);
    } finally {
      delete process.env.CAIRN_TEST_RESTORE_LAG_MS;
    }
  }, TIMEOUT);
});
