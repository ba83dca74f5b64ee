/**
 * The machine-wide limit on QEMU guests of the test suite: two at once (a third while the host
 * idles), the driver's cases in their order with a free slot going to the first that fits, a dead
 * owner's slot taken over, and another file's waiting guest let in before the next case.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTree } from '../../src/store/index.js';
import { queueForSlots, setIdleProbe, takeSlot, type Release } from './qemu-slots.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-qemu-slots-'));
  process.env.CAIRN_TEST_QEMU_SLOTS = dir;
  // A busy host unless a test says otherwise: this machine's own idleness must not decide them.
  setIdleProbe(() => 0);
});
afterEach(() => {
  setIdleProbe(undefined);
  delete process.env.CAIRN_TEST_QEMU_SLOTS;
  removeTree(dir);
});

/** A promise's release, once it has one (the scheduler answers synchronously when slots are free). */
function track(p: Promise<Release>): { release?: Release } {
  const t: { release?: Release } = {};
  void p.then((r) => (t.release = r));
  return t;
}
const settle = () => new Promise((r) => setImmediate(r));

describe('QEMU slots', () => {
  it('lets two guests run, queues the rest in order, and gives a freed slot to the first case that fits', async () => {
    const a = track(queueForSlots(1));
    const b = track(queueForSlots(1));
    const pair = track(queueForSlots(2));
    const c = track(queueForSlots(1));
    await settle();
    expect([!!a.release, !!b.release, !!pair.release, !!c.release]).toEqual([true, true, false, false]);
    expect(readdirSync(dir).sort()).toEqual(['slot-0', 'slot-1']);

    // One slot free: the two-machine case does not fit, the one-machine case after it goes.
    a.release!();
    await settle();
    expect([!!pair.release, !!c.release]).toEqual([false, true]);

    b.release!();
    c.release!();
    await settle();
    expect(pair.release).toBeDefined();
    pair.release!();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('lets a third guest in only while the host has been idle, and never a fourth', async () => {
    const a = track(queueForSlots(1));
    const b = track(queueForSlots(1));
    const c = track(queueForSlots(1));
    await settle();
    expect([!!a.release, !!b.release, !!c.release]).toEqual([true, true, false]);

    // Half the host's CPU time idle over the window: the queued case gets the extra slot, a fourth waits.
    setIdleProbe(() => 0.5);
    const d = track(queueForSlots(1));
    await settle();
    expect([!!c.release, !!d.release]).toEqual([true, false]);
    expect(readdirSync(dir).sort()).toEqual(['slot-0', 'slot-1', 'slot-2']);

    // Busy again: the freed extra slot is not taken, a freed base slot is.
    setIdleProbe(() => 0.2);
    c.release!();
    await settle();
    expect(d.release).toBeUndefined();
    a.release!();
    await settle();
    expect(d.release).toBeDefined();

    // No window measured yet counts as busy.
    setIdleProbe(() => undefined);
    const e = track(queueForSlots(1));
    await settle();
    expect(e.release).toBeUndefined();
    b.release!();
    await settle();
    expect(e.release).toBeDefined();
    d.release!();
    e.release!();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('takes over a slot whose owner has died', async () => {
    const dead = (await execa('sh', ['-c', 'echo $$'])).stdout.trim();
    writeFileSync(join(dir, 'slot-0'), `${dead}\n`);
    writeFileSync(join(dir, 'slot-1'), `${process.ppid}\n`);
    const t = track(queueForSlots(1));
    await settle();
    expect(t.release).toBeDefined();
    t.release!();
    expect(existsSync(join(dir, 'slot-0'))).toBe(false);
    expect(existsSync(join(dir, 'slot-1'))).toBe(true);
  });

  it("starts no driver case while another file's guest waits for a slot", async () => {
    writeFileSync(join(dir, 'want-other'), `${process.ppid}\n`);
    const t = track(queueForSlots(1));
    await settle();
    expect(t.release).toBeUndefined();

    // That file got its slot and took its mark away: the case goes next.
    const release = await takeSlot();
    rmSync(join(dir, 'want-other'));
    await new Promise<void>((resolve) => {
      const check = () => (t.release ? resolve() : setTimeout(check, 50));
      check();
    });
    expect(readdirSync(dir).sort()).toEqual(['slot-0', 'slot-1']);
    release();
    t.release!();
  });
});
