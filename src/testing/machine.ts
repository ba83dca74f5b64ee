/**
 * A machine of a VM test: a configuration booted in QEMU with the test instrumentation, driven
 * through a root shell on a virtio console (commands and output framed, binary-safe) and QMP.
 * Every wait has a default timeout that a call can override; a failing call says which call,
 * what the command printed and the last lines of the machine's console.
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { CairnError } from '../errors.js';
import { shellQuote } from '../shell.js';
import type { Store } from '../store/index.js';
import type { ModuleInput } from '../lib/index.js';
import { buildSystem } from '../build/index.js';
import { evalVmConfig, prepareVm, RunningMachine, QEMU, type PortForward, type PreparedVm } from '../vm/index.js';
import { QmpClient } from '../vm/qmp.js';
import { GuestShell, guestSleep, type ExecResult } from '../vm/shell.js';
import { BACKDOOR_READY, BOOTED_FLAG, SHELL_CHARDEV } from './constants.js';
import { copyInto, machineKeyParts, markSaved, partsKey, SAVED, type Arrival, type BootCacheEntry, type GroupDecision, type StartGroup } from './boot-cache.js';

/**
 * Timeouts in seconds: NixOS's driver's 900. A limit only bounds how long a broken test takes to
 * fail; a wait for something that does happen costs its time, not the limit. Under TCG on a busy
 * 2-core machine a boot or a Python program's start is several times slower than idle, so waits
 * for what must happen keep this default rather than a tight limit of their own.
 */
export const DEFAULT_TIMEOUT = 900;

/**
 * Before a snapshot: the guest's clock source becomes the HPET, and systemd's service watchdogs
 * (WatchdogSec=: journald, udevd, logind, networkd, resolved, … 3 min) go off. A guest restored
 * later runs on from the snapshot's moment, but QEMU keeps the emulated TSC (the clock source a
 * guest boots with) from going back: on the TSC, a restored guest's monotonic clock would jump
 * ahead by the time since the snapshot, every timer due within it would expire at once (systemd
 * killing watchdogged services, the kernel reporting RCU stalls, daemons' timeouts), and a machine
 * restored at each fresh subtest would go through that each time. The HPET is restored with the
 * snapshot, so the clock goes on without a jump; it is chosen only now, since a whole boot on it
 * is slower. The watchdogs' command is for a machine without an HPET: with them off, systemd ignores
 * a timer the jump expired, and restore() turns them on again.
 */
const BEFORE_SNAPSHOT = "cs=/sys/devices/system/clocksource/clocksource0; if grep -qw hpet $cs/available_clocksource; then echo hpet > $cs/current_clocksource; fi; systemctl service-watchdogs no";
const WATCHDOGS_ON = 'systemctl service-watchdogs yes';

const CONSOLE_TAIL_START = (machine: string): string => `--- last lines of ${machine}'s console ---`;

/** A console line without the kernel's timestamp (`[    5.83] `). */
const withoutTimestamp = (line: string): string => line.replace(/^\[[\s\d.]*\]\s*/, '').trim();

/**
 * Why a machine stopped by itself, from its console: the kernel's panic and the boot's error that
 * led to it (a stage-1 failure panics the kernel; with panic=1 it reboots, which ends QEMU under
 * -no-reboot), the kernel's own restart or power-off, or QEMU's last complaint. The panic's stack
 * trace pushes these out of the console's last lines; undefined when the console says none.
 */
export function stopReason(console: string): string | undefined {
  const lines = console.replace(/\r/g, '').split('\n');
  const panicAt = lines.findLastIndex((l) => l.includes('Kernel panic'));
  const before = panicAt >= 0 ? lines.slice(0, panicAt) : lines;
  const said = [
    before.findLast((l) => l.includes('cairn stage 1: error:')),
    panicAt >= 0 ? lines[panicAt] : lines.findLast((l) => /\breboot: (Restarting system|Power down)/.test(l)),
    lines.findLast((l) => l.startsWith(`${QEMU}:`)),
  ];
  const reason = said.flatMap((l) => (l ? [withoutTimestamp(l)] : []));
  return reason.length > 0 ? reason.join('; ') : undefined;
}

/** The console's last line with text (a boot that ended without a word: how far it got), timestamps stripped. */
export function lastLine(console: string): string {
  const line = console.replace(/\r/g, '').split('\n').findLast((l) => l.trim() !== '');
  return line === undefined ? '(the console is empty)' : JSON.stringify(withoutTimestamp(line).slice(0, 200));
}

/** A failure's message without the console tails MachineError puts in it (for a short summary). */
export function withoutConsoleTails(message: string): string {
  return message.replace(/\n--- last lines of [^\n]*'s console ---\n[\s\S]*?\n---(?=\n|$)/g, '\n(the console is in the output above)');
}

/**
 * The guest command that reports a unit's state for waitForUnit. Each report is a `systemctl` (a
 * quarter of a second of a TCG guest's CPU, with the shell's own work more), so polling every
 * second took a third of the CPU from a booting machine. While the machine boots (the testing
 * module's flag, made once multi-user.target is reached, is not there yet) and the unit is not
 * active yet, the command first waits for the flag, at most 30 s, in bash's own `read -t` (no
 * process), and reads the unit again then. After the boot, reports are immediate.
 */
export function unitStateCommand(unit: string, booted = BOOTED_FLAG): string {
  const show = `systemctl show --property=ActiveState,SubState,LoadState -- ${shellQuote(unit)}`;
  return [
    `out=$(${show})`,
    `case "$out" in`,
    `  *ActiveState=active*|*ActiveState=failed*|*LoadState=not-found*) ;;`,
    `  *) if [ ! -e ${shellQuote(booted)} ]; then`,
    `       for ((i = 0; i < 60; i++)); do [ -e ${shellQuote(booted)} ] && break; ${guestSleep(0.5)}; done`,
    `       out=$(${show})`,
    `     fi ;;`,
    `esac`,
    `printf '%s\\n' "$out"`,
  ].join('\n');
}

/** A failed machine call: which call, its output, the console's last lines. */
export class MachineError extends CairnError {}

export interface MachineOptions {
  name: string;
  /** The machine's configuration (a file), evaluated with the test instrumentation. */
  config: string;
  store: Store;
  /** Folder for the state disk, sockets and console log. */
  dir: string;
  forwards?: PortForward[];
  /** More QEMU arguments (virtual networks). */
  extraArgs?: string[];
  extraModules?: ModuleInput[];
  /** Configurations built like this machine's, whose systems its store holds too (to switch to). */
  alsoInStore?: string[];
  /** Virtual CPUs instead of the configuration's `virtualisation.cores`. */
  cpus?: number;
  onProgress?: (message: string) => void;
}

export interface WaitOptions {
  /** Seconds. */
  timeout?: number;
}

export class Machine {
  readonly name: string;
  private prepared?: PreparedVm;
  private vm?: RunningMachine;
  private shell?: GuestShell;
  private qmp?: QmpClient;
  /** Console text of earlier runs of this machine (a crash and start keeps the log). */
  private pastConsole = '';
  private readonly shellSocket: string;
  private readonly qmpSocket: string;
  /** Snapshots taken by this object (the state disk may hold older ones). */
  private readonly snapshots = new Set<string>();
  private jobs = 0;
  /** Starts so far: only the first, on a new state disk, may come from or go to the boot cache. */
  private starts = 0;
  /** The boot cache's entry of this machine's test (runTest sets it once the machines are built). */
  private bootCache?: BootCacheEntry;
  /** What this machine's boot cache key was made of (kept with its saved state). */
  private bootKeyParts?: ReturnType<typeof machineKeyParts>;

  constructor(private readonly opts: MachineOptions) {
    this.name = opts.name;
    mkdirSync(opts.dir, { recursive: true });
    this.shellSocket = join(opts.dir, 'shell.sock');
    this.qmpSocket = join(opts.dir, 'qmp.sock');
  }

  /** Toplevels of `alsoInStore`, in order: `/cairn/store/…/bin/switch-to-configuration` in the guest. */
  readonly otherSystems: string[] = [];

  /**
   * The machine's store as folders on the host: the closure of its system and of `alsoInStore`,
   * which is what its store disk holds. A search of the whole store (e.g. for a secret that must
   * not be there) runs here at the host's speed instead of through the emulated disk.
   */
  async storeOnHost(): Promise<string[]> {
    const { toplevel } = await this.build();
    return this.opts.store.closure([toplevel, ...this.otherSystems]).map((p) => this.opts.store.toPhysical(p));
  }

  /** Builds the machine's system and disks (start does it too; tests build all machines first). */
  async build(): Promise<PreparedVm> {
    if (this.prepared) return this.prepared;
    const modules = [{ testing: { enable: true } }, ...(this.opts.extraModules ?? [])];
    for (const c of this.opts.alsoInStore ?? []) {
      this.otherSystems.push((await buildSystem(await evalVmConfig(c, modules), { store: this.opts.store, onProgress: this.opts.onProgress })).toplevel);
    }
    this.prepared ??= await prepareVm(await evalVmConfig(this.opts.config, modules), {
      alsoInStore: this.otherSystems,
      store: this.opts.store,
      state: join(this.opts.dir, 'state.qcow2'),
      forwards: this.opts.forwards,
      qmpSocket: this.qmpSocket,
      shellSocket: this.shellSocket,
      guestAgentSocket: join(this.opts.dir, 'qga.sock'),
      cpus: this.opts.cpus,
      onProgress: this.opts.onProgress,
    });
    if (this.prepared.tcgRisk) this.opts.onProgress?.(`warning: ${this.prepared.tcgRisk}`);
    // Held open while this object lives, so that the disk cache's pruning (other builds, other
    // tests) leaves them alone between this machine's starts.
    this.heldDisks ??= this.prepared.cachedDisks.map((f) => openSync(f, 'r'));
    return this.prepared;
  }

  private heldDisks?: number[];

  /** Lets go of the cached disks (the test is over). */
  release(): void {
    for (const fd of this.heldDisks ?? []) closeSync(fd);
    this.heldDisks = [];
  }

  get isUp(): boolean {
    return this.vm !== undefined;
  }

  /** Everything the serial console printed, this run and earlier ones. */
  get console(): string {
    return this.pastConsole + (this.vm?.console ?? '');
  }

  private consoleTail(lines = 30): string {
    return this.console.replace(/\r/g, '').split('\n').slice(-lines).join('\n');
  }

  private error(call: string, detail: string): MachineError {
    return new MachineError(`${this.name}: ${call} ${detail}\n${CONSOLE_TAIL_START(this.name)}\n${this.consoleTail()}\n---`);
  }

  /**
   * The key of this machine's part of a boot cache entry (see boot-cache.ts); `work` is the test's
   * folder, whose paths (sockets, disks) change from run to run.
   */
  async bootKey(work: string): Promise<string> {
    const prepared = await this.build();
    this.bootKeyParts = machineKeyParts([...prepared.args, ...(this.opts.extraArgs ?? [])], work, prepared.state.path, prepared.cachedDisks);
    return partsKey(this.bootKeyParts);
  }

  /** Lets the machine's first start come from the boot cache, or its boot go into it. */
  useBootCache(entry: BootCacheEntry): void {
    this.bootCache = entry;
  }

  /**
   * Starts the machine and waits until its test shell answers. With a boot cache (runTest's
   * `bootCache`), its first start on a new state disk ends past multi-user.target, either way: a
   * restore of the booted state an earlier run saved, or a boot that waits for multi-user.target and
   * saves it (see saveBoot). First starts under way together (Promise.all) are saved at one moment
   * and restored together (see StartGroup).
   */
  async start(opts: WaitOptions = {}): Promise<void> {
    if (this.vm) return;
    // Joined before anything here awaits: starts begun together are one group.
    const group = this.starts === 0 ? this.bootCache?.join(this.name) : undefined;
    // Once: what this start did when it came to the group (a later call gets that).
    let arrived: Promise<GroupDecision> | undefined;
    const arrive = (a: Arrival, from?: string[]): Promise<GroupDecision> => (arrived ??= group!.arrive(this.name, a, from));
    try {
      await this.startWith(opts, group, arrive);
    } finally {
      // A start that failed: the others of its group do not wait for it.
      if (group) void arrive('other');
    }
  }

  private async startWith(opts: WaitOptions, group: StartGroup | undefined, arrive: (a: Arrival, from?: string[]) => Promise<GroupDecision>): Promise<void> {
    const prepared = await this.build();
    // A display card nobody sees, for screenshots; -no-reboot: a reboot is a shutdown and start here.
    const args = [...prepared.args, '-device', 'VGA', '-no-reboot', ...(this.opts.extraArgs ?? [])];
    const first = this.starts++ === 0 && prepared.state.created;
    const cache = first ? this.bootCache : undefined;
    // Cached only in a group (see BootCacheEntry.join); restored when all the machines saved with
    // it can be restored too (savedGroup gives none otherwise).
    const cached = cache && group ? cache : undefined;
    const from = cached ? cached.savedGroup(this.name) : [];
    const saved = from.length > 0 ? cached!.restoreFrom(this.name) : undefined;
    // Where this start saves its boot: it boots, and no entry had it.
    let saveTo = cached && !saved ? cached.saveTo(this.name) : undefined;
    const deadline = Date.now() + (opts.timeout ?? DEFAULT_TIMEOUT) * 1000;
    if (saved) {
      if (await this.startFromCache(args, saved, deadline, () => arrive('loaded', from))) return;
      // What the cache had could not be restored: this start boots, and the test goes on as one that did.
      saveTo = undefined;
    }
    // Not cached: the others of its group do not wait for its boot.
    if (group && !saveTo) void arrive('other');
    const vm = this.launch(args);
    this.qmp = await this.connect('QMP', this.qmpSocket, () => QmpClient.connect(this.qmpSocket, 2000), deadline);
    this.shell = await this.connect('the test shell', this.shellSocket, () => GuestShell.connect(this.shellSocket), deadline);
    try {
      await this.shell.waitForText(BACKDOOR_READY, Math.max(1, deadline - Date.now()));
    } catch (err) {
      // A machine that stopped during its boot says why in the message itself (a run's summary
      // shows the message, not the console).
      // The shell's socket may close before QEMU's exit is seen: a moment for it.
      await Promise.race([vm.process, delay(5000)]);
      const stopped = vm.hasExited ? `: the machine stopped (QEMU: ${vm.exitDescription}; ${stopReason(vm.console) ?? `the console's last line: ${lastLine(vm.console)}`})` : '';
      throw this.error('start()', `did not get a test shell: ${(err as Error).message}${stopped}`);
    }
    // A first start with a boot cache ends past multi-user.target whether it was restored, is saved
    // or is not cached: the same start on a cold and a warm run.
    if (cache) {
      await this.waitForUnit('multi-user.target', { timeout: Math.max(1, Math.round((deadline - Date.now()) / 1000)) });
      if (saveTo) {
        // What the boot started has finished starting before the group's machines are saved.
        await this.settle({ timeout: 60 });
        if ((await arrive('booted')) === 'save') await this.saveBoot(saveTo, group!);
        else vm.note(`--- cairn: ${this.name}: the boot is not saved in the boot cache: a machine not started together with it ran beside it, or one started with it is not cached ---`);
      }
    }
  }

  private launch(args: string[]): RunningMachine {
    const vm = RunningMachine.start(args, QEMU);
    this.vm = vm;
    this.bootCache?.launched(this.name);
    void vm.process.then(() => {
      this.bootCache?.ended(this.name);
      if (this.vm === vm) this.forget();
    });
    return vm;
  }

  /**
   * Restores the booted state saved in `saved`: its state disk and UEFI variables in place of the
   * new ones, then QEMU started with the saved RAM and devices as an incoming migration. False (the
   * new disks back in place) when QEMU could not load it; the machine then boots.
   */
  private async startFromCache(args: string[], saved: string, deadline: number, loaded: () => Promise<GroupDecision>): Promise<boolean> {
    const prepared = this.prepared!;
    const vars = prepared.options.uefiVars;
    const put = [
      { file: prepared.state.path, from: join(saved, SAVED.disk) },
      ...(vars ? [{ file: vars, from: join(saved, SAVED.vars) }] : []),
    ];
    const putBack = (): void => {
      for (const p of put) if (existsSync(`${p.file}.new`)) renameSync(`${p.file}.new`, p.file);
    };
    try {
      for (const p of put) {
        renameSync(p.file, `${p.file}.new`);
        copyInto(p.from, p.file);
      }
    } catch {
      // (an entry evicted meanwhile)
      putBack();
      return false;
    }
    const vm = this.launch([...args, '-incoming', `file:${join(saved, SAVED.ram)}`]);
    // The log begins with the console of the boot restored.
    const booted = existsSync(join(saved, SAVED.console)) ? readFileSync(join(saved, SAVED.console), 'utf8') : '';
    vm.note(`${booted}--- cairn: ${this.name}: the boot above is an earlier run's, from the boot cache ---`);
    try {
      this.qmp = await this.connect('QMP', this.qmpSocket, () => QmpClient.connect(this.qmpSocket, 2000), deadline);
      // The test shell is connected, and QEMU has it, before the guest runs. The saved guest's port
      // has the host connected; a guest that ran on before the connection was told the host had
      // gone, and its shell read end of file and ended (a restored machine then never answered).
      this.shell = await this.connect('the test shell', this.shellSocket, () => GuestShell.connect(this.shellSocket), deadline);
      await this.shellAccepted(deadline);
      // The machine was saved paused, and is loaded so: it runs once loaded whole, when the others
      // of its group are loaded too (they were saved together: none runs on before the others).
      let decision: GroupDecision | undefined;
      for (;;) {
        const status = (await this.qmp.execute<{ status: string }>('query-status')).status;
        if (status === 'running') break;
        if (status === 'paused' && (await this.qmp.execute<{ status?: string }>('query-migrate')).status === 'completed') {
          // (Asked once: a second `cont` is only for a status read before the first took effect.)
          decision ??= await loaded();
          if (decision !== 'restore') throw new Error('the machines saved with it did not start together with it as they did then');
          await this.qmp.execute('cont');
          continue;
        }
        if (status !== 'inmigrate') throw new Error(`QEMU is ${status} after loading it`);
        if (Date.now() > deadline) throw new Error('QEMU did not finish loading it');
        await delay(100);
      }
    } catch (err) {
      vm.note(`--- cairn: ${this.name}: the boot cache's state could not be restored (${(err as Error).message}); booting ---`);
      await this.crash();
      for (const p of put) rmSync(p.file, { force: true });
      putBack();
      return false;
    }
    // A host slow to go on once the guest runs (a loaded machine), made so by the boot cache's test.
    const lag = Number(process.env.CAIRN_TEST_RESTORE_LAG_MS ?? 0);
    if (lag > 0) await delay(lag);
    await this.resumeAfterRestore('start()', Math.max(1, Math.round((deadline - Date.now()) / 1000)), `its boot restored from the boot cache (${saved})`);
    return true;
  }

  /** Waits until QEMU has accepted the test shell's connection (a client's connect returns before). */
  private async shellAccepted(deadline: number): Promise<void> {
    for (;;) {
      const devices = await this.requireQmp('start()').execute<{ label: string; filename: string }[]>('query-chardev');
      const shell = devices.find((d) => d.label === SHELL_CHARDEV);
      if (shell && !shell.filename.startsWith('disconnected:')) return;
      if (Date.now() > deadline) throw new Error('QEMU did not take the test shell\'s connection');
      await delay(20);
    }
  }

  /** Retries a connection to a QEMU socket until QEMU has made it. */
  private async connect<T>(what: string, socket: string, fn: () => Promise<T>, deadline: number): Promise<T> {
    for (;;) {
      if (!this.vm) throw this.error('start()', `QEMU exited before ${what} was up`);
      if (existsSync(socket)) {
        try {
          return await fn();
        } catch {
          // not listening yet
        }
      }
      if (Date.now() > deadline) throw this.error('start()', `could not connect to ${what}`);
      await delay(50);
    }
  }

  /** QEMU has exited: drop the connections, keep the console. */
  private forget(): void {
    this.pastConsole += this.vm?.console ?? '';
    this.shell?.close();
    this.qmp?.close();
    this.vm = undefined;
    this.shell = undefined;
    this.qmp = undefined;
  }

  private requireShell(call: string): GuestShell {
    if (!this.shell) throw this.error(call, 'needs a running machine: call start() first');
    return this.shell;
  }

  /** Runs a shell command as root: its exit status and stdout (stderr goes to the console). */
  async execute(command: string, opts: WaitOptions = {}): Promise<ExecResult> {
    const shell = this.requireShell(`execute(${JSON.stringify(command)})`);
    try {
      return await shell.execute(command, { timeoutSeconds: opts.timeout ?? DEFAULT_TIMEOUT });
    } catch (err) {
      throw this.error(`execute(${JSON.stringify(command)})`, `lost the test shell: ${(err as Error).message}`);
    }
  }

  /** Runs a command that must succeed; returns its stdout. */
  async succeed(command: string, opts: WaitOptions = {}): Promise<string> {
    const r = await this.execute(command, opts);
    if (r.status !== 0) throw this.error(`succeed(${JSON.stringify(command)})`, `failed with exit status ${r.status}; its output:\n${r.stdout}`);
    return r.stdout;
  }

  /** Runs a command that must fail; returns its stdout. */
  async fail(command: string, opts: WaitOptions = {}): Promise<string> {
    const r = await this.execute(command, opts);
    if (r.status === 0) throw this.error(`fail(${JSON.stringify(command)})`, `succeeded; its output:\n${r.stdout}`);
    return r.stdout;
  }

  /** Polls (every second) until `test` returns a value; the last failure explains a timeout. */
  private async poll<T>(call: string, timeout: number, test: () => Promise<{ done: true; value: T } | { done: false; why: string }>): Promise<T> {
    const deadline = Date.now() + timeout * 1000;
    let why = '';
    for (;;) {
      const r = await test();
      if (r.done) return r.value;
      why = r.why;
      if (Date.now() >= deadline) throw this.error(call, `timed out after ${timeout} s: ${why}`);
      await delay(1000);
    }
  }

  waitUntilSucceeds(command: string, opts: WaitOptions = {}): Promise<string> {
    return this.poll(`waitUntilSucceeds(${JSON.stringify(command)})`, opts.timeout ?? DEFAULT_TIMEOUT, async () => {
      const r = await this.execute(command, { timeout: opts.timeout });
      return r.status === 0 ? { done: true, value: r.stdout } : { done: false, why: `last exit status ${r.status}, output:\n${r.stdout}` };
    });
  }

  waitUntilFails(command: string, opts: WaitOptions = {}): Promise<string> {
    return this.poll(`waitUntilFails(${JSON.stringify(command)})`, opts.timeout ?? DEFAULT_TIMEOUT, async () => {
      const r = await this.execute(command, { timeout: opts.timeout });
      return r.status !== 0 ? { done: true, value: r.stdout } : { done: false, why: `it still succeeds, output:\n${r.stdout}` };
    });
  }

  /**
   * Waits until the guest's CPU was idle (not waiting on its disks either) for at least half of a
   * 2-second window: what the boot started has finished starting (multi-user.target is reached
   * while Type=simple daemons, a Python one say, are still loading). Returns whether it settled;
   * after `timeout` (default 300 s) it gives up quietly, for a machine whose services never rest.
   */
  async settle(opts: WaitOptions = {}): Promise<boolean> {
    // /proc/stat's first line: user nice system idle iowait irq softirq steal (ticks of all CPUs).
    // Waiting on the disks (iowait) counts as busy: a daemon reading its files is still starting.
    const ticks = 'read -r _ u n s i w q o t _ < /proc/stat; echo $((u + n + s + w + q + o + t)) $((i))';
    const window = `set -- $(${ticks}); sleep 2; set -- "$@" $(${ticks}); busy=$(($3 - $1)); idle=$(($4 - $2)); [ $((idle * 2)) -ge $((busy + idle)) ]`;
    return this.waitUntilSucceeds(window, { timeout: opts.timeout ?? 300 }).then(
      () => true,
      () => false,
    );
  }

  /** Waits until a unit is active; fails at once, with the unit's journal, when it enters `failed`. */
  async waitForUnit(unit: string, opts: WaitOptions = {}): Promise<void> {
    const call = `waitForUnit(${JSON.stringify(unit)})`;
    await this.poll(call, opts.timeout ?? DEFAULT_TIMEOUT, async () => {
      const out = (await this.execute(unitStateCommand(unit))).stdout;
      const prop = (k: string): string => new RegExp(`^${k}=(.*)$`, 'm').exec(out)?.[1] ?? '';
      if (prop('LoadState') === 'not-found') throw this.error(call, `there is no unit ${unit}`);
      if (prop('ActiveState') === 'failed') {
        // A unit that failed early in boot may have logged while journald moves the journal from
        // /run to /var (systemd-journal-flush): a read then can find nothing yet. Asked again until
        // it finds the unit's entries (a failed unit has some: systemd's own), for a few seconds.
        const read = `journalctl --no-pager -n 40 -u ${shellQuote(unit)}`;
        const journal = (await this.execute(`for i in 1 2 3 4 5 6 7 8 9 10; do out=$(${read} 2>&1); case "$out" in ''|*'-- No entries --'*) sleep 0.5 ;; *) break ;; esac; done; printf '%s\n' "$out"`)).stdout;
        throw this.error(call, `the unit failed (${prop('SubState')}); its journal:\n${journal}`);
      }
      if (prop('ActiveState') === 'active') return { done: true, value: undefined };
      return { done: false, why: `it is ${prop('ActiveState')} (${prop('SubState')})` };
    });
  }

  /**
   * Saves the machine's first boot into the boot cache (see boot-cache.ts), once it has settled:
   * paused, its state disk and UEFI variables copied, its RAM and devices migrated to a file, then
   * resumed. Saved on the HPET with the watchdogs off, as a snapshot is (BEFORE_SNAPSHOT). A save
   * that fails spoils the entry (the test's machines are cached together or not at all), not the test.
   */
  private async saveBoot(to: string, group: StartGroup): Promise<void> {
    const prepared = this.prepared!;
    const qmp = this.requireQmp('saving the boot');
    const t0 = performance.now();
    let failure: string | undefined;
    let paused = false;
    try {
      await this.execute(BEFORE_SNAPSHOT);
      await qmp.execute('stop');
      paused = true;
    } catch (err) {
      failure = (err as Error).message;
    }
    // Taken once all of the group are paused (or could not be).
    await group.pausedForSave(this.name);
    if (paused) {
      try {
        mkdirSync(to, { recursive: true });
        copyFileSync(prepared.state.path, join(to, SAVED.disk));
        if (prepared.options.uefiVars) copyFileSync(prepared.options.uefiVars, join(to, SAVED.vars));
        await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 1e12 });
        await qmp.execute('migrate', { uri: `file:${join(to, SAVED.ram)}` });
        for (;;) {
          const m = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
          if (m.status === 'completed') break;
          if (m.status === 'failed' || m.status === 'cancelled') throw new Error(m['error-desc'] ?? `migration ${m.status}`);
          await delay(50);
        }
      } catch (err) {
        failure = (err as Error).message;
      } finally {
        await qmp.execute('cont');
      }
    }
    await this.execute(WATCHDOGS_ON);
    if (failure !== undefined) this.bootCache?.spoil(`${this.name}: ${failure}`);
    else {
      // The boot's console, for a later run's log (its restored machine printed none).
      writeFileSync(join(to, SAVED.console), this.vm?.console ?? '');
      markSaved(to, { machine: this.name, group: [...group.members].sort(), saved: new Date().toISOString(), key: this.bootKeyParts });
    }
    this.vm?.note(`--- cairn: ${this.name}: ${failure === undefined ? `boot saved in the boot cache in ${((performance.now() - t0) / 1000).toFixed(1)} s${group.members.size > 1 ? ` with ${[...group.members].filter((m) => m !== this.name).sort().join(', ')}, started together` : ''}` : `the boot could not be saved in the boot cache: ${failure}`} ---`);
  }

  waitForFile(path: string, opts: WaitOptions = {}): Promise<string> {
    return this.waitUntilSucceeds(`test -e ${shellQuote(path)}`, opts);
  }

  /** Waits until something listens on a TCP port of the guest (connects from inside it). */
  waitForOpenPort(port: number, opts: WaitOptions & { address?: string } = {}): Promise<string> {
    return this.waitUntilSucceeds(`timeout 2 bash -c ${shellQuote(`exec 3<>/dev/tcp/${opts.address ?? '127.0.0.1'}/${port}`)}`, opts);
  }

  waitForClosedPort(port: number, opts: WaitOptions & { address?: string } = {}): Promise<string> {
    return this.waitUntilFails(`timeout 2 bash -c ${shellQuote(`exec 3<>/dev/tcp/${opts.address ?? '127.0.0.1'}/${port}`)}`, opts);
  }

  /** Waits until the serial console (of this run) matches. */
  async waitForConsoleText(pattern: RegExp, opts: WaitOptions = {}): Promise<void> {
    if (!this.vm) throw this.error(`waitForConsoleText(${pattern})`, 'needs a running machine');
    const r = await this.vm.waitForConsole(pattern, (opts.timeout ?? DEFAULT_TIMEOUT) * 1000, { fatal: /$^/ });
    if (!r.matched) throw this.error(`waitForConsoleText(${pattern})`, r.reason ?? 'no match');
  }

  systemctl(args: string, opts: WaitOptions = {}): Promise<ExecResult> {
    return this.execute(`systemctl ${args}`, opts);
  }

  /** Powers off cleanly and waits for QEMU to exit. */
  async shutdown(opts: WaitOptions = {}): Promise<void> {
    const vm = this.vm;
    if (!vm) return;
    this.shell?.socketWrite('poweroff\n');
    const timeout = (opts.timeout ?? DEFAULT_TIMEOUT) * 1000;
    // The timer is cancelled once QEMU exits: left running, it would keep `cairn test` alive for
    // the rest of the timeout after the test passed.
    const timer = new AbortController();
    const expired = delay(timeout, false, { signal: timer.signal }).catch(() => false);
    const exited = await Promise.race([vm.process.then(() => true), expired]);
    timer.abort();
    if (!exited) throw this.error('shutdown()', `QEMU did not exit within ${timeout / 1000} s of poweroff`);
  }

  /** Stops the machine at once, as pulling the plug would (QMP quit). */
  async crash(): Promise<void> {
    const vm = this.vm;
    if (!vm) return;
    await this.qmp?.execute('quit').catch(() => undefined);
    await vm.stop();
  }

  /** Reboots and waits for the test shell again. */
  async reboot(opts: WaitOptions = {}): Promise<void> {
    await this.shutdown(opts);
    await this.start(opts);
  }

  private requireQmp(call: string): QmpClient {
    if (!this.qmp) throw this.error(call, 'needs a running machine');
    return this.qmp;
  }

  /** Cuts the machine's network links (its cards stay, the cable is pulled). */
  async block(): Promise<void> {
    for (const nic of this.nics()) await this.requireQmp('block()').execute('set_link', { name: nic, up: false });
  }

  async unblock(): Promise<void> {
    for (const nic of this.nics()) await this.requireQmp('unblock()').execute('set_link', { name: nic, up: true });
  }

  /** The ids of the machine's network cards in its QEMU command line. */
  private nics(): string[] {
    const args = [...(this.prepared?.args ?? []), ...(this.opts.extraArgs ?? [])];
    return args.flatMap((a) => [...a.matchAll(/(?:^|,)id=(nic\d+)/g)].map((m) => m[1]!));
  }

  /** Forwards 127.0.0.1:hostPort into the guest's guestPort (TCP), while the machine runs. */
  async forwardPort(hostPort: number, guestPort: number): Promise<void> {
    const guest = this.prepared?.options.network?.ipv4?.guest ?? '';
    const out = await this.requireQmp('forwardPort()').execute<string>('human-monitor-command', { 'command-line': `hostfwd_add user0 tcp:127.0.0.1:${hostPort}-${guest}:${guestPort}` });
    if (out.trim()) throw this.error(`forwardPort(${hostPort}, ${guestPort})`, out.trim());
  }

  /** Copies a host file into the guest (through the test shell; fine for files up to a few MB). */
  async copyToMachine(hostPath: string, guestPath: string): Promise<void> {
    const data = readFileSync(hostPath).toString('base64');
    await this.succeed(`mkdir -p "$(dirname ${shellQuote(guestPath)})" && base64 -d > ${shellQuote(guestPath)} <<'CAIRN_EOF'\n${data.replace(/.{1,76}/g, '$&\n')}CAIRN_EOF`);
  }

  async copyFromMachine(guestPath: string, hostPath: string): Promise<void> {
    const b64 = await this.succeed(`base64 -w 0 ${shellQuote(guestPath)}`);
    writeFileSync(hostPath, Buffer.from(b64.trim(), 'base64'));
  }

  /**
   * The machine's writable qcow2 disks (QEMU's node names): where a snapshot goes, the RAM and
   * device state into the first (the state disk). The read-only store disk and UEFI's raw
   * variable store cannot hold snapshots and are left out (neither changes under a test).
   */
  private async snapshotDisks(call: string): Promise<{ node: string; snapshots: string[] }[]> {
    const blocks = await this.requireQmp(call).execute<QmpBlock[]>('query-block');
    const disks = blocks.flatMap((b) => (b.inserted && !b.inserted.ro && b.inserted.drv === 'qcow2' ? [{ node: b.inserted['node-name'], snapshots: (b.inserted.image?.snapshots ?? []).map((x) => x.name) }] : []));
    if (disks.length === 0) throw this.error(call, 'has no writable qcow2 disk to keep a snapshot in');
    return disks;
  }

  /** Runs a QMP job (snapshot-save, -load, -delete) to its end; its error becomes a MachineError. */
  private async runJob(call: string, command: string, args: Record<string, unknown>): Promise<void> {
    const qmp = this.requireQmp(call);
    const id = `cairn-${command}-${++this.jobs}`;
    await qmp.execute(command, { 'job-id': id, ...args });
    for (;;) {
      const job = (await qmp.execute<{ id: string; status: string; error?: string }[]>('query-jobs')).find((j) => j.id === id);
      if (!job) throw this.error(call, `lost QEMU's job ${id}`);
      if (job.status === 'concluded' || job.status === 'null') {
        await qmp.execute('job-dismiss', { id }).catch(() => undefined);
        if (job.error) throw this.error(call, job.error);
        return;
      }
      await delay(50);
    }
  }

  /**
   * Saves the running machine (RAM, devices, disks) as snapshot \`name\` in its state disk,
   * replacing one of that name. The machine runs on afterwards. Take it between commands.
   */
  async snapshot(name = 'booted'): Promise<void> {
    const call = `snapshot(${JSON.stringify(name)})`;
    if (!this.vm) throw this.error(call, 'needs a running machine');
    const disks = await this.snapshotDisks(call);
    const devices = disks.map((d) => d.node);
    if (disks.some((d) => d.snapshots.includes(name))) await this.runJob(call, 'snapshot-delete', { tag: name, devices });
    // Saved on the HPET with systemd's service watchdogs off (see BEFORE_SNAPSHOT); they are on
    // again in this machine at once and in a restored one by restore().
    await this.execute(BEFORE_SNAPSHOT);
    try {
      await this.runJob(call, 'snapshot-save', { tag: name, vmstate: devices[0], devices });
    } finally {
      // A shell that is gone must not hide why the job failed.
      await this.execute(WATCHDOGS_ON).catch(() => undefined);
    }
    this.snapshots.add(name);
    this.vm.note(`--- cairn: ${this.name}: snapshot '${name}' saved ---`);
  }

  /**
   * Puts the running machine back as it was at \`snapshot(name)\`: memory, processes and disks.
   * Then the test shell is resynchronised and the guest's clock set to the host's (it would stand
   * at the snapshot's time). Port forwards live in QEMU, not the guest, and stay as they are.
   */
  async restore(name = 'booted', opts: WaitOptions = {}): Promise<void> {
    const call = `restore(${JSON.stringify(name)})`;
    if (!this.vm) throw this.error(call, 'needs a running machine');
    const disks = await this.snapshotDisks(call);
    const known = disks[0]!.snapshots;
    if (!known.includes(name)) throw this.error(call, `there is no snapshot ${JSON.stringify(name)} (${known.length ? `the machine has: ${known.map((k) => JSON.stringify(k)).join(', ')}` : 'the machine has none'}); take one with snapshot(name)`);
    await this.runJob(call, 'snapshot-load', { tag: name, vmstate: disks[0]!.node, devices: disks.map((d) => d.node) });
    await this.resumeAfterRestore(call, opts.timeout ?? DEFAULT_TIMEOUT, `snapshot '${name}' restored`);
  }

  /**
   * A restored machine, made current: the test shell resynchronised, the guest's time of day set to
   * the host's (it stands at the saved moment: TLS, timers and logs of later tests depend on it),
   * systemd's watchdogs on again. Its timers are stopped while the clock moves and started again:
   * a calendar timer (OnCalendar=) whose next time the jump passed would otherwise fire at once, as
   * every daily one would on a boot restored a day later; started now, each waits for its next time
   * from now, as on a machine that booted now.
   */
  private async resumeAfterRestore(call: string, timeout: number, what: string): Promise<void> {
    const shell = this.requireShell(call);
    const timer = new AbortController();
    try {
      await Promise.race([shell.resync(timeout), delay(timeout * 1000, undefined, { signal: timer.signal }).then(() => Promise.reject(new Error(`no answer within ${timeout} s`)))]);
    } catch (err) {
      throw this.error(call, `the test shell did not answer after the restore: ${(err as Error).message}`);
    } finally {
      timer.abort();
    }
    const [guestTime, ...timers] = (await this.succeed('date +%s.%N; systemctl list-units --type=timer --state=active --plain --no-legend | cut -d" " -f1')).split('\n').filter(Boolean);
    const behind = Date.now() / 1000 - Number(guestTime);
    const units = timers.map(shellQuote).join(' ');
    // The host's time as the command starts, plus what the guest spent before setting it (bash's
    // EPOCHREALTIME, no process); the snapshot has the watchdogs off (see BEFORE_SNAPSHOT): had
    // the clock jumped (no HPET), systemd has by now seen every watchdog's time pass and ignored it.
    const hostUsec = Math.round(Date.now() * 1000);
    await this.succeed(
      [
        'a=${EPOCHREALTIME/./}',
        ...(units ? [`systemctl stop ${units}`] : []),
        `t=$((${hostUsec} + \${EPOCHREALTIME/./} - a))`,
        'date -u -s "@$((t / 1000000)).$(printf %06d $((t % 1000000)))" > /dev/null',
        ...(units ? [`systemctl start ${units}`] : []),
        WATCHDOGS_ON,
      ].join('\n'),
    );
    this.vm?.note(`--- cairn: ${this.name}: ${what} (its clock was ${behind.toFixed(1)} s behind the host's, now set) ---`);
  }

  /** Whether this run of the driver took snapshot \`name\` (one of an earlier run's may belong to another build). */
  hasSnapshot(name = 'booted'): boolean {
    return this.snapshots.has(name);
  }

  /**
   * Runs a command of the QEMU guest agent (machines with `services.qemuGuest.enable`), e.g.
   * `guest-get-host-name`, and returns its `return` value. A fresh connection each time, synced
   * first (guest-sync) so that a reply left over from an earlier one is not taken for this one's.
   */
  async guestAgent<T = unknown>(command: string, args?: Record<string, unknown>, opts: WaitOptions = {}): Promise<T> {
    const call = `guestAgent(${JSON.stringify(command)})`;
    if (!this.vm) throw this.error(call, 'needs a running machine');
    if (!this.prepared?.options.guestAgentSocket) throw this.error(call, 'has no guest agent port: enable services.qemuGuest');
    const sock = createConnection(this.prepared.options.guestAgentSocket);
    sock.setEncoding('utf8');
    let buffer = '';
    const replies: Record<string, unknown>[] = [];
    let wake: (() => void) | undefined;
    let failed: Error | undefined;
    sock.on('data', (d: string) => {
      buffer += d;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const raw = buffer.slice(0, nl);
        // guest-sync-delimited's answer comes after a 0xff byte; anything before a '{' is noise.
        const line = raw.slice(Math.max(0, raw.indexOf('{'))).trim();
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('{')) {
          try {
            replies.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            // a partial line from before the sync
          }
        }
      }
      wake?.();
    });
    sock.on('error', (e) => {
      failed = e;
      wake?.();
    });
    const deadline = Date.now() + (opts.timeout ?? 60) * 1000;
    const next = async (): Promise<Record<string, unknown>> => {
      while (replies.length === 0) {
        if (failed) throw this.error(call, `the agent's socket failed: ${failed.message}`);
        if (Date.now() > deadline) throw this.error(call, 'the guest agent did not answer (is qemu-guest-agent.service running?)');
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 500);
        });
      }
      return replies.shift()!;
    };
    try {
      const id = Math.floor(Math.random() * 2 ** 31);
      sock.write(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } })}\n`);
      while ((await next()).return !== id);
      sock.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
      const reply = await next();
      const err = reply.error as { desc?: string } | undefined;
      if (err) throw this.error(call, `the agent refused: ${err.desc ?? JSON.stringify(err)}`);
      return reply.return as T;
    } finally {
      sock.destroy();
    }
  }

  /**
   * Grows a disk of the running machine to \`bytes\`, as if it were a bigger disk: the \`index\`-th
   * writable drive (0: the state disk). The guest's kernel sees the new size at once.
   */
  async resizeDisk(index: number, bytes: number): Promise<void> {
    const call = `resizeDisk(${index}, ${bytes})`;
    const qmp = this.requireQmp(call);
    const blocks = (await qmp.execute('query-block')) as QmpBlock[];
    const node = blocks.filter((b) => b.inserted && !b.inserted.ro)[index]?.inserted?.['node-name'];
    if (!node) throw this.error(call, `the machine has no writable drive number ${index}`);
    await qmp.execute('block_resize', { 'node-name': node, size: bytes });
  }

  /** Saves the screen as PNG (the VM has a display card, shown nowhere). */
  async screenshot(file: string): Promise<void> {
    await this.requireQmp('screenshot()').execute('screendump', { filename: file, format: 'png' });
  }

  /** Presses keys, e.g. `ctrl-alt-delete`, `ret` (QEMU key names joined by `-` press together). */
  async sendKeys(...keys: string[]): Promise<void> {
    for (const k of keys) {
      await this.requireQmp('sendKeys()').execute('send-key', { keys: k.split('-').map((q) => ({ type: 'qcode', data: q })) });
    }
  }

  /** Types text on the keyboard. */
  async sendChars(text: string): Promise<void> {
    for (const ch of text) await this.sendKeys(...charKeys(ch));
  }
}

/** What \`query-block\` tells of a drive (the fields used here). */
interface QmpBlock {
  device: string;
  inserted?: { 'node-name': string; ro: boolean; drv: string; image?: { snapshots?: { name: string }[] } };
}

/** QEMU key codes that type one character on a US keyboard. */
function charKeys(ch: string): string[] {
  const named: Record<string, string> = { '\n': 'ret', ' ': 'spc', '\t': 'tab', '-': 'minus', '=': 'equal', '/': 'slash', '.': 'dot', ',': 'comma', ';': 'semicolon', "'": 'apostrophe', '\\': 'backslash', '`': 'grave_accent', '[': 'bracket_left', ']': 'bracket_right' };
  const shifted: Record<string, string> = { _: 'minus', '+': 'equal', '?': 'slash', '>': 'dot', '<': 'comma', ':': 'semicolon', '"': 'apostrophe', '|': 'backslash', '~': 'grave_accent', '{': 'bracket_left', '}': 'bracket_right', '!': '1', '@': '2', '#': '3', $: '4', '%': '5', '^': '6', '&': '7', '*': '8', '(': '9', ')': '0' };
  if (named[ch]) return [named[ch]!];
  if (shifted[ch]) return [`shift-${shifted[ch]}`];
  if (/[a-z0-9]/.test(ch)) return [ch];
  if (/[A-Z]/.test(ch)) return [`shift-${ch.toLowerCase()}`];
  throw new CairnError(`sendChars: cannot type ${JSON.stringify(ch)}`);
}
