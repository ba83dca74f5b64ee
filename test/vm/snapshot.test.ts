/**
 * Snapshots of a running machine (Machine.snapshot/restore, QEMU's snapshot jobs over QMP): what
 * a test wrote after a snapshot is gone once it is restored, the test shell answers at once, the
 * guest's monotonic clock goes on from the snapshot without jumping over the pause, its time of day
 * is the host's again, snapshots of several names coexist, and an unknown name is
 * refused. Prints how long a boot, a snapshot and a restore took (TCG here).
 */
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, MachineError } from '../../src/testing/index.js';
import { removeTree, Store } from '../../src/store/index.js';
import { QEMU } from '../../src/vm/index.js';
import { SLOT_WAIT_MS, takeSlot, type Release } from './qemu-slots.js';

const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;
process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
// The VM driver's store: its store disks are reused.
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const TIMEOUT = 900_000;

const work = mkdtempSync(join(tmpdir(), 'cairn-snapshot-'));
const config = join(work, 'machine.json');
// journald under a watchdog of 15 s (its own is 3 min), which it pings from its main loop.
const journald = { overrideStrategy: 'asDropin', serviceConfig: { WatchdogSec: '15s' } };
writeFileSync(config, JSON.stringify({ networking: { hostName: 'snappy' }, system: { stateVersion: '0.1' }, systemd: { services: { 'systemd-journald': journald } } }));
let machine: Machine | undefined;

afterAll(async () => {
  await machine?.crash();
  removeTree(work);
});

const seconds = (t: number): string => ((performance.now() - t) / 1000).toFixed(1);

describe.skipIf(!hasQemu)('snapshots of a running machine', () => {
  // Its guest counts against the machine-wide limit of QEMU guests (the VM test driver's run beside it).
  let releaseSlot: Release | undefined;
  beforeAll(async () => {
    releaseSlot = await takeSlot();
  }, SLOT_WAIT_MS);
  afterAll(async () => {
    await machine?.crash();
    machine = undefined;
    releaseSlot?.();
  });

  it('restores memory and disk, answers, sets the clock; refuses an unknown name', async () => {
    const m = new Machine({ name: 'snappy', config, store: Store.open(STORE_HOME), dir: join(work, 'snappy') });
    machine = m;
    await m.build();
    let t = performance.now();
    await m.start();
    await m.waitForUnit('multi-user.target');
    const boot = seconds(t);

    const journaldState = 'systemctl show -p WatchdogUSec -p MainPID -p NRestarts systemd-journald.service';
    const journaldBefore = await m.succeed(journaldState);
    expect(journaldBefore).toContain('WatchdogUSec=15s\n');
    expect(journaldBefore).toContain('NRestarts=0\n');
    t = performance.now();
    await m.snapshot('booted');
    const save = seconds(t);
    const snapped = performance.now();
    const uptimeAtSnapshot = Number((await m.succeed('cut -d" " -f1 /proc/uptime')).trim());
    expect(m.hasSnapshot('booted')).toBe(true);
    // The running machine has its watchdogs back on after the snapshot.
    expect(await m.succeed('systemctl show -P ServiceWatchdogs')).toBe('yes\n');

    // Written after the snapshot: on the state disk, in tmpfs and in a running process.
    await m.succeed('echo later > /var/lib/after-snapshot && sync && echo later > /run/after-snapshot');
    await m.succeed('(sleep 10000 & echo $! > /run/sleeper.pid) >/dev/null 2>&1');
    // Time passes between the snapshot and the restore: the guest's clock would lag by as much. It
    // is longer than journald's watchdog, whose time a restored guest's monotonic clock on the TSC
    // would jump over.
    const pause = 25;
    await delay(pause * 1000);

    t = performance.now();
    await m.restore('booted');
    const load = seconds(t);
    // The monotonic clock went on from the snapshot's moment: since then it counted the restore's
    // own time, not the pause (on the TSC it jumped by the whole pause and more).
    const uptime = Number((await m.succeed('cut -d" " -f1 /proc/uptime')).trim());
    const sinceSnapshot = (performance.now() - snapped) / 1000;
    expect(uptime - uptimeAtSnapshot, `uptime ${uptimeAtSnapshot} s at the snapshot, ${uptime} s after the restore, ${sinceSnapshot.toFixed(1)} s later`).toBeLessThan(sinceSnapshot - pause / 2);
    expect(await m.succeed('cat /sys/devices/system/clocksource/clocksource0/current_clocksource')).toBe('hpet\n');
    expect(await m.execute('test -e /var/lib/after-snapshot')).toMatchObject({ status: 1 });
    expect(await m.execute('test -e /run/after-snapshot')).toMatchObject({ status: 1 });
    expect((await m.succeed('pgrep -x sleep || true')).trim()).toBe('');
    expect(await m.succeed('echo "$((6 * 7))"')).toBe('42\n');
    // systemd did not kill journald for the jump (the same process, never restarted), and the
    // watchdogs are on again.
    expect(await m.succeed(journaldState)).toBe(journaldBefore);
    expect(await m.succeed("journalctl -b -u systemd-journald.service -o cat | grep -c 'Watchdog timeout' || true")).toBe('0\n');
    expect(await m.succeed('systemctl show -P ServiceWatchdogs')).toBe('yes\n');
    const before = Date.now() / 1000;
    const guest = Number(await m.succeed('date +%s.%N'));
    const after = Date.now() / 1000;
    expect(guest).toBeGreaterThan(before - 3);
    expect(guest).toBeLessThan(after + 3);
    // The guest's time is in the snapshot and goes on from it on the HPET: the restore finds it
    // behind by about the pause above, sets it (above: the host's time within 3 s) and says by how much.
    const behind = /snapshot 'booted' restored \(its clock was (-?\d+\.\d) s behind/.exec(m.console);
    expect(behind, 'restore() notes the clock it corrected in the console log').not.toBeNull();

    // A second snapshot beside the first; each restores its own state.
    await m.succeed('echo second > /var/lib/marker && sync');
    await m.snapshot('second');
    await m.restore('booted');
    expect(await m.execute('test -e /var/lib/marker')).toMatchObject({ status: 1 });
    await m.restore('second');
    expect(await m.succeed('cat /var/lib/marker')).toBe('second\n');

    const err = await m.restore('no-such-snapshot').then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(MachineError);
    expect(err!.message).toContain('snappy: restore("no-such-snapshot") there is no snapshot "no-such-snapshot"');
    expect(err!.message).toContain('"booted"');
    // The machine is unharmed by the refusal.
    expect(await m.succeed('cat /var/lib/marker')).toBe('second\n');
    process.stderr.write(`snapshot timings (TCG): boot to multi-user.target ${boot} s, snapshot ${save} s, restore ${load} s; guest clock was ${behind![1]} s behind\n`);
  }, TIMEOUT);
});
