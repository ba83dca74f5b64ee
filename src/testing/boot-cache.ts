/**
 * The boot cache of VM tests: a machine's state right after its first boot (RAM and devices as
 * QEMU migrates them to a file, its state disk and UEFI variables, all taken while it is paused),
 * kept across runs of a test and restored instead of booting again. A test's machines form one
 * entry, saved by one run that passed, and are restored together or not at all: their boots may
 * have met (a key one machine made and another fetched), and their later states come from the
 * one test script. Machines started together are saved at one moment and run again together
 * (StartGroup). The entry's key holds everything that decides what a boot does: each machine's
 * QEMU command line (its own folder's paths and forwarded host ports left out), the identity of
 * every file that line names (the store disk or boot image, kernel, initrd, firmware), QEMU's
 * version (with Debian's package version) and the test file's text. A changed system has another closure, so another store disk
 * or image: it boots.
 *
 * May touch: the cache folder; reads the files a command line names.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import { removeTree } from '../store/index.js';
import { pidAlive } from '../store/lock.js';

/** The files of one machine's saved state in an entry. */
export const SAVED = { ram: 'ram', disk: 'disk.qcow2', vars: 'vars.fd', console: 'console.log', done: 'saved' } as const;

/** Entries kept: the least lately used go first beyond this many bytes. */
const KEEP_BYTES = 24 * 1024 ** 3;

/** A file's identity: its size, inode and birth, so that a file made again (another build) gets another. */
function identity(file: string): string {
  const st = statSync(file);
  return `${st.size}:${st.ino}:${Math.round(st.birthtimeMs || st.mtimeMs)}`;
}

/**
 * A machine's part of an entry's key: its QEMU command line with its own folder (sockets, state
 * disk) and forwarded host ports (chosen anew each run) left out, then the identity of each file
 * it names outside that folder, and the content of the small ones inside it (the firmware's
 * variables as first copied). The state disk is left out: only a machine whose state disk is new
 * has its boot cached.
 */
export function machineKey(args: string[], work: string, stateDisk: string, backing: string[] = []): string {
  return partsKey(machineKeyParts(args, work, stateDisk, backing));
}

export const partsKey = (parts: { line: string[]; ids: string[] }): string => createHash('sha256').update(JSON.stringify(parts)).digest('hex');

/**
 * What a machine's key is made of: its normalised command line and the files it names. Kept in the
 * machine's saved state, so that a run that did not restore a case can be compared with the one
 * that saved it.
 */
export function machineKeyParts(args: string[], work: string, stateDisk: string, backing: string[] = []): { line: string[]; ids: string[] } {
  const dir = realpathSync(work);
  // Files by their real paths: a test run reaches the shared store through a link of its own.
  const real = (f: string): string => (existsSync(f) ? realpathSync(f) : f);
  const files = new Set<string>(backing.map(real));
  const state = real(stateDisk);
  const line = args.map((a) =>
    a
      .replace(/(hostfwd=\w+:127\.0\.0\.1:)\d+/g, '$1@port')
      .split(/([,=])/)
      .map((part) => {
        if (!isAbsolute(part)) return part;
        const file = real(part);
        if (file !== state && existsSync(file) && statSync(file).isFile()) files.add(file);
        return file;
      })
      .join('')
      // (also where a path is not a whole part: unix:PATH)
      .split(`${dir}/`)
      .join('@dir/')
      .split(`${work}/`)
      .join('@dir/'),
  );
  const ids = [...files].sort().map((f) => (f.startsWith(`${dir}/`) ? `@dir/${f.slice(dir.length + 1)} ${createHash('sha256').update(readFileSync(f)).digest('hex')}` : `${f} ${identity(f)}`));
  return { line, ids };
}

/** The key of a test's entry: the test file's text, QEMU's version (Debian's package version with it), each machine's key. */
export function entryKey(testText: string, qemuVersion: string, machines: Record<string, string>): string {
  return createHash('sha256').update(JSON.stringify({ testText, qemuVersion, machines: Object.entries(machines).sort() })).digest('hex').slice(0, 32);
}

/** An entry of the cache: where a test's machines are restored from, or saved to while it runs. */
export class BootCacheEntry {
  /** The entry, when an earlier run saved one. */
  readonly from?: string;
  /** Where this run saves its machines' states, published when the test passes. */
  readonly to?: string;

  constructor(
    readonly cache: string,
    readonly key: string,
  ) {
    const entry = join(cache, key);
    if (existsSync(entry)) {
      this.from = entry;
      // Used now: the last to be evicted.
      const now = new Date();
      utimesSync(entry, now, now);
    } else {
      mkdirSync(cache, { recursive: true });
      this.to = join(cache, `.new-${key}-${process.pid}`);
    }
  }

  /** The folder of a machine's saved state in the earlier run's entry, when it has one. */
  restoreFrom(machine: string): string | undefined {
    return this.from && existsSync(join(this.from, machine, SAVED.done)) ? join(this.from, machine) : undefined;
  }

  /**
   * The machines saved at one moment with `machine` (those started together), when the entry has
   * all of their states; else none. Older entries name none but it.
   */
  savedGroup(machine: string): string[] {
    const dir = this.restoreFrom(machine);
    if (!dir) return [];
    let group: string[];
    try {
      const named = (JSON.parse(readFileSync(join(dir, SAVED.done), 'utf8')) as { group?: unknown }).group;
      group = Array.isArray(named) ? named.map(String).sort() : [machine];
    } catch {
      return [];
    }
    return group.every((m) => m === machine || this.restoreFrom(m) !== undefined) ? group : [];
  }

  /** Where a machine's state goes in this run's entry (none when the entry exists already). */
  saveTo(machine: string): string | undefined {
    return this.to && join(this.to, machine);
  }

  /**
   * The test's machines whose QEMU runs now, and the group of first starts under way. Only boots
   * that no machine outside their group ran beside are saved or restored, and a group's machines
   * are saved at one moment and restored together: machines that ran together may have met
   * (pebble's ACME server and the machine whose certificate it signed), and states saved at
   * different moments would not fit together when restored (the restored server would be in the
   * middle of an order the restored CA never saw). Machines started after a group boot in every
   * run, meeting it as they did when it was saved.
   */
  private readonly running = new Map<string, number>();
  private open?: StartGroup;

  /**
   * A machine's first start begins (called before anything of it awaits): it joins the group of
   * first starts under way, or begins one when no machine of the test runs. Undefined: machines
   * run that are in no open group (they have passed their first start), so this boot is not cached.
   */
  join(machine: string): StartGroup | undefined {
    if (this.open && !this.open.closed) return this.open.add(machine);
    if ([...this.running.values()].some((n) => n > 0)) return undefined;
    this.open = new StartGroup();
    return this.open.add(machine);
  }

  /** A machine's QEMU started: a group under way that it is not in has company, and is not saved. */
  launched(machine: string): void {
    // Counted, not a flag: a restarted machine's new QEMU may start before its old one's end is seen.
    this.running.set(machine, (this.running.get(machine) ?? 0) + 1);
    if (this.open && !this.open.closed && !this.open.members.has(machine)) this.open.spoiled = true;
  }

  /** A machine's QEMU ended. */
  ended(machine: string): void {
    this.running.set(machine, Math.max(0, (this.running.get(machine) ?? 0) - 1));
  }

  /** Why a machine's state could not be saved: the entry is then not kept. */
  private spoiled?: string;

  spoil(why: string): void {
    this.spoiled ??= why;
  }

  /** After the test: a passed test's states become the entry; otherwise they are dropped. */
  finish(passed: boolean): void {
    if (!this.to || !existsSync(this.to)) return;
    const entry = join(this.cache, this.key);
    if (passed && this.spoiled === undefined && !existsSync(entry)) {
      try {
        renameSync(this.to, entry);
      } catch {
        // another run published the same entry first
      }
    }
    removeTree(this.to);
    evict(this.cache);
  }
}

/**
 * How a machine of a group goes on once every machine of its group has arrived: its boot is saved
 * (`save`), its loaded state runs (`restore`), its loaded state is dropped and it boots (`boot`),
 * or it goes on as it is (`none`).
 */
export type GroupDecision = 'save' | 'restore' | 'boot' | 'none';

/**
 * What a machine of a group has done when it arrives: booted to multi-user.target to be saved,
 * loaded a saved state (paused, waiting for the others), or neither (its boot is not cached: a
 * state disk that was there before, no place to save it, or its start failed).
 */
export type Arrival = 'booted' | 'loaded' | 'other';

/**
 * First starts of a test's machines that were under way together (e.g. Promise.all of starts):
 * they are cached together or not at all. The group is open until every machine in it has
 * arrived; a first start that begins meanwhile joins it. Once all have arrived it closes, and
 * decides for all of them at once (see decide).
 */
export class StartGroup {
  readonly members = new Set<string>();
  closed = false;
  /** A machine outside the group started while it was open. */
  spoiled = false;
  private readonly arrivals = new Map<string, Arrival>();
  /** The saved group each loaded machine came from. */
  private readonly loadedFrom = new Map<string, string[]>();
  private readonly decided: ((d: Map<string, GroupDecision>) => void)[] = [];
  private readonly stopped = new Set<string>();
  private readonly allStopped: (() => void)[] = [];

  add(machine: string): this {
    this.members.add(machine);
    return this;
  }

  /**
   * A machine arrives; resolves once all have, with its decision. `from`: the machines saved
   * together with the state it loaded.
   */
  arrive(machine: string, arrival: Arrival, from: string[] = []): Promise<GroupDecision> {
    this.arrivals.set(machine, arrival);
    if (arrival === 'loaded') this.loadedFrom.set(machine, from);
    const p = new Promise<GroupDecision>((resolve) => this.decided.push((d) => resolve(d.get(machine)!)));
    if ([...this.members].every((m) => this.arrivals.has(m))) {
      this.closed = true;
      const d = this.decide();
      for (const r of this.decided.splice(0)) r(d);
    }
    return p;
  }

  /**
   * All booted and meant to be saved, with no machine outside the group beside them: all are
   * saved. All loaded from states saved together as exactly this group, with no machine outside
   * it beside them: all run. Anything else: the loaded ones boot instead (a restored machine would
   * meet machines its saved state never met), and none is saved.
   */
  private decide(): Map<string, GroupDecision> {
    const all = [...this.members];
    const names = all.slice().sort().join('\0');
    const every = (a: Arrival): boolean => all.every((m) => this.arrivals.get(m) === a);
    const out = new Map<string, GroupDecision>();
    if (!this.spoiled && every('booted')) for (const m of all) out.set(m, 'save');
    else if (!this.spoiled && every('loaded') && all.every((m) => this.loadedFrom.get(m)!.join('\0') === names)) for (const m of all) out.set(m, 'restore');
    else for (const m of all) out.set(m, this.arrivals.get(m) === 'loaded' ? 'boot' : 'none');
    return out;
  }

  /**
   * A machine being saved is paused (or could not be): resolves when all of the group are (a group
   * is saved whole or not at all), so that none runs on while another's state is taken (what it
   * sent then would be in the other's saved state and not in its own).
   */
  pausedForSave(machine: string): Promise<void> {
    this.stopped.add(machine);
    const p = new Promise<void>((resolve) => this.allStopped.push(resolve));
    if ([...this.members].every((m) => this.stopped.has(m))) for (const r of this.allStopped.splice(0)) r();
    return p;
  }
}

/** Copies a saved file into place (a new file, then renamed over the target). */
export function copyInto(from: string, to: string): void {
  const tmp = `${to}.boot-cache-${process.pid}`;
  copyFileSync(from, tmp);
  renameSync(tmp, to);
}

/** Writes an entry's mark that a machine's state is whole (the last of its files). */
export function markSaved(dir: string, what: Record<string, unknown>): void {
  writeFileSync(join(dir, SAVED.done), `${JSON.stringify(what)}\n`);
}

function bytesOf(dir: string): number {
  let sum = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    sum += e.isDirectory() ? bytesOf(p) : statSync(p).size;
  }
  return sum;
}

/** Removes the least lately used entries beyond KEEP_BYTES, and unfinished ones of runs that are gone. */
export function evict(cache: string, keep = KEEP_BYTES): void {
  const entries = readdirSync(cache, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => ({ path: join(cache, e.name), name: e.name, t: statSync(join(cache, e.name)).mtimeMs }));
  for (const e of entries) {
    const pid = /^\.new-.*-(\d+)$/.exec(e.name)?.[1];
    if (pid !== undefined && !pidAlive(Number(pid))) removeTree(e.path);
  }
  let total = 0;
  for (const e of entries.filter((x) => !x.name.startsWith('.')).sort((a, b) => b.t - a.t)) {
    total += bytesOf(e.path);
    if (total > keep) rmSync(e.path, { recursive: true, force: true });
  }
}

