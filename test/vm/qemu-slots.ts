/**
 * A machine-wide limit on QEMU guests started by the test suite: at most QEMU_SLOTS at once
 * across vitest workers (and `cairn test` runs of the driver), and EXTRA_SLOTS more only while the
 * host's CPUs idle. TCG guests are CPU-bound when they boot: a third booting guest on a 2-core
 * machine only slows the others.
 *
 * A slot is a lock file `slot-N` (holding its owner's pid) under the test store home, created
 * exclusively. A slot whose owner died is taken over. Several slots are taken all at once or
 * not at all, so two takers of two slots never deadlock holding one each.
 *
 * Two kinds of takers: the VM test driver's cases (many, queued in order, the first that fits
 * goes: longest first, shorter ones fill a free slot) and the other VM test files (one guest at a
 * time each, hooks with a time limit). The latter mark themselves as waiting (`want-PID-N`) and
 * the driver starts no new case while such a mark exists, so their wait is one driver case.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from '../../src/store/lock.js';

export const QEMU_SLOTS = 2;
/**
 * One guest more while the host's CPUs idle. Guests wait a lot: for the host (a case's builds, ssh
 * copies of closures) and for their own timers and services. In a warm run here the two guests
 * used ~100% of the 200% the cores give through the run's second half (QEMU's CPU time per minute)
 * while cases queued for a slot. The third slot goes only when the host was at least
 * IDLE_FOR_EXTRA idle over the last IDLE_WINDOW_MS; should the guests all get busy afterwards,
 * three share two cores for a while, which the cases' limits allow for (the suite passes beside
 * another CPU-heavy job).
 */
export const EXTRA_SLOTS = 1;
const IDLE_WINDOW_MS = 20_000;
const IDLE_FOR_EXTRA = 0.45;
/**
 * vCPUs of every guest the suite starts: two guests at once (QEMU_SLOTS), one vCPU each. TCG runs
 * a vCPU as a host thread, so two single-vCPU guests fill both cores where two-vCPU ones would
 * fight over them, and a boot of the minimal configuration to multi-user.target costs about a
 * quarter less host CPU time with one vCPU than with two (measured: 51 s against 69 s of QEMU's
 * CPU time). One vCPU also keeps clear of multi-threaded TCG's cross-vCPU code patching: a
 * two-vCPU boot here once died at 1 s with "Oops: int3" in enqueue_timer, one vCPU running a
 * stale copy of code the other was patching (text_poke_bp).
 */
export const GUEST_CPUS = 1;
/** The lock folder: under the test store home, or CAIRN_TEST_QEMU_SLOTS (this helper's own test). */
const slotDir = (): string => process.env.CAIRN_TEST_QEMU_SLOTS ?? join(tmpdir(), 'cairn-test-store-home', 'qemu-slots');
const POLL_MS = 500;

export type Release = () => void;

/** The pid in a lock or mark file; undefined when it is gone or unreadable. */
function ownerOf(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Removes a lock or mark whose owner is no longer running (a killed worker's). */
function clearStale(file: string): void {
  const pid = ownerOf(file);
  if (pid !== undefined && !pidAlive(pid)) rmSync(file, { force: true });
}

/** The host's idle CPU time and all CPU time so far (/proc/stat, in clock ticks over all CPUs). */
function hostTicks(): { idle: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return undefined;
  }
}

const samples: { at: number; idle: number; total: number }[] = [];
function sample(): void {
  const t = hostTicks();
  if (!t) return;
  const at = Date.now();
  samples.push({ at, ...t });
  while (samples.length > 1 && samples[1]!.at <= at - IDLE_WINDOW_MS) samples.shift();
}
// Sampled from the start, so the first case that queues can be judged at once.
sample();
setInterval(sample, 2_000).unref();

/** The share of the host's CPU time that was idle over the last IDLE_WINDOW_MS; undefined before there is such a window. */
function recentIdle(): number | undefined {
  sample();
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  if (samples.length < 2 || last.at - first.at < IDLE_WINDOW_MS) return undefined;
  return last.total > first.total ? (last.idle - first.idle) / (last.total - first.total) : undefined;
}

let idleProbe: () => number | undefined = recentIdle;
/** For this helper's own test: what the host's recent idle share reads as. */
export function setIdleProbe(probe: (() => number | undefined) | undefined): void {
  idleProbe = probe ?? recentIdle;
}

/** Whether the extra slots may be taken now: the host has CPU to spare (and more than one core to share). */
const extraAllowed = (): boolean => cpus().length > 1 && (idleProbe() ?? 0) >= IDLE_FOR_EXTRA;

/** Takes `n` free slots at once, or none: a base slot, or an extra one while the host idles. */
function tryTake(n: number): string[] | undefined {
  const dir = slotDir();
  mkdirSync(dir, { recursive: true });
  const taken: string[] = [];
  const limit = QEMU_SLOTS + (extraAllowed() ? EXTRA_SLOTS : 0);
  for (let i = 0; i < limit && taken.length < n; i++) {
    const file = join(dir, `slot-${i}`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
        taken.push(file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        clearStale(file);
      }
    }
  }
  if (taken.length === n) return taken;
  for (const f of taken) rmSync(f, { force: true });
  return undefined;
}

/** Whether a test file of another process waits for a slot (its mark is live). */
function othersWaiting(): boolean {
  const dir = slotDir();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return false;
  }
  return names.some((f) => {
    if (!f.startsWith('want-')) return false;
    const file = join(dir, f);
    clearStale(file);
    const pid = ownerOf(file);
    return pid !== undefined && pid !== process.pid;
  });
}

const release = (files: string[]): Release => {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const f of files) rmSync(f, { force: true });
    // A freed slot goes to the next queued case at once, not at the next poll.
    schedule();
  };
};

interface Waiter {
  slots: number;
  resolve: (r: Release) => void;
}

/** This process's queued takers, in the order they asked: scanned in order, the first that fits goes. */
const pending: Waiter[] = [];
let timer: NodeJS.Timeout | undefined;

function schedule(): void {
  if (pending.length > 0 && !othersWaiting()) {
    for (let i = 0; i < pending.length; ) {
      const files = tryTake(pending[i]!.slots);
      if (!files) {
        i++;
        continue;
      }
      pending.splice(i, 1)[0]!.resolve(release(files));
    }
  }
  if (pending.length === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  } else if (pending.length > 0 && !timer) {
    timer = setInterval(schedule, POLL_MS);
  }
}

/**
 * Queues for `machines` slots (capped at QEMU_SLOTS: a case of more machines takes them all) and
 * resolves with their release once taken. For the driver's cases: callers earlier in the queue
 * go first when they fit.
 */
export function queueForSlots(machines: number): Promise<Release> {
  return new Promise((resolve) => {
    pending.push({ slots: Math.min(Math.max(1, machines), QEMU_SLOTS), resolve });
    schedule();
  });
}

let marks = 0;

/** Slots (one by default) for a test file that boots that many guests at a time; marked as waiting, so the driver lets it in next. */
export async function takeSlot(n = 1): Promise<Release> {
  const dir = slotDir();
  mkdirSync(dir, { recursive: true });
  const mark = join(dir, `want-${process.pid}-${++marks}`);
  writeFileSync(mark, `${process.pid}\n`);
  try {
    for (;;) {
      const files = tryTake(n);
      if (files) return release(files);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    rmSync(mark, { force: true });
  }
}

/** A limit for a hook that waits for a slot: a driver case or two may finish first. */
export const SLOT_WAIT_MS = 1_800_000;
