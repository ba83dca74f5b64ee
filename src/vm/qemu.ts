/**
 * QEMU machines: the command line of a cairn VM (UEFI with OVMF, or a direct kernel boot), and a
 * running machine whose serial console is captured so that callers can wait for a line.
 */
import { execa, type ResultPromise } from 'execa';
import { CairnError } from '../errors.js';
import type { Accelerator } from './accel.js';
import { SHELL_CHARDEV, SHELL_PORT } from '../testing/constants.js';

export const QEMU = 'qemu-system-x86_64';
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export interface PortForward {
  proto: 'tcp' | 'udp';
  hostPort: number;
  guestPort: number;
}

/**
 * The user-mode network's IPv4 layout when the guest's first card has a static address: QEMU's
 * gateway and DHCP take the configuration's subnet, so the machine is reachable as configured.
 */
export interface UserNetIpv4 {
  /** `192.0.2.0/24` */
  net: string;
  /** QEMU's own address in it (the guest's gateway). */
  host: string;
  /** The guest's address: forwards go there. */
  guest: string;
  /** QEMU's DNS forwarder, when the configuration's name server is in the subnet. */
  dns?: string;
}

export interface QemuOptions {
  accel: Accelerator;
  memoryMiB: number;
  cpus: number;
  /** UEFI: OVMF's code read-only and this machine's own copy of the variable store. */
  uefiVars?: string;
  /** A direct kernel boot instead of firmware and boot loader. */
  kernel?: { kernel: string; initrd: string; append: string };
  drives: { file: string; format: 'raw' | 'qcow2'; readonly?: boolean }[];
  /** User-mode networking with these forwards (on 127.0.0.1); null: no network card. */
  network: { forwards: PortForward[]; ipv4?: UserNetIpv4 } | null;
  /** The test driver's shell: a virtio port named SHELL_PORT (src/testing/constants.ts) on this unix socket. */
  shellSocket?: string;
  /** The QEMU guest agent's virtio port (`org.qemu.guest_agent.0`) on this unix socket. */
  guestAgentSocket?: string;
  /** A QMP socket to control the machine. */
  qmpSocket?: string;
  /** The serial console: on stdio (interactive) or captured by the caller (default). */
  console?: 'stdio' | 'capture';
}

/** Parses `HOST:GUEST` or `tcp:HOST:GUEST`/`udp:HOST:GUEST`, as `cairn vm --forward` takes them. */
export function parseForward(text: string): PortForward {
  const m = /^(?:(tcp|udp):)?(\d+):(\d+)$/.exec(text);
  const port = (s: string): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CairnError(`--forward ${text}: ${s} is not a port (1-65535)`);
    return n;
  };
  if (!m) throw new CairnError(`--forward ${text}: expected HOST:GUEST, e.g. 2222:22 (or udp:5353:53)`);
  return { proto: (m[1] as 'tcp' | 'udp' | undefined) ?? 'tcp', hostPort: port(m[2]!), guestPort: port(m[3]!) };
}

/** The QEMU command line of a machine. */
export function qemuArgs(o: QemuOptions): string[] {
  const args = ['-machine', 'q35', '-accel', o.accel, '-m', String(o.memoryMiB), '-smp', String(o.cpus), '-nographic', '-nodefaults'];
  args.push('-serial', o.console === 'stdio' ? 'mon:stdio' : 'stdio');
  // Entropy from the host (virtio-rng; NixOS's qemu-guest profile loads its driver): the emulated CPU has no RDRAND,
  // and without it the guest's kernel makes its first random numbers from timer jitter, on the CPU,
  // while systemd-random-seed and the first key generation wait (~1.5 s of a boot under TCG).
  args.push('-device', 'virtio-rng-pci');
  if (o.uefiVars) {
    args.push('-drive', `if=pflash,format=raw,unit=0,file=${OVMF_CODE},readonly=on`, '-drive', `if=pflash,format=raw,unit=1,file=${o.uefiVars}`);
  }
  if (o.kernel) args.push('-kernel', o.kernel.kernel, '-initrd', o.kernel.initrd, '-append', o.kernel.append);
  for (const d of o.drives) args.push('-drive', `file=${d.file},if=virtio,format=${d.format}${d.readonly ? ',readonly=on' : ''}`);
  if (o.network) {
    const ip = o.network.ipv4;
    const fwd = o.network.forwards.map((f) => `,hostfwd=${f.proto}:127.0.0.1:${f.hostPort}-${ip?.guest ?? ''}:${f.guestPort}`).join('');
    const layout = ip ? `,net=${ip.net},host=${ip.host},dhcpstart=${ip.guest}${ip.dns ? `,dns=${ip.dns}` : ''}` : '';
    // Named, so that QMP can cut the link (set_link nic0) and add forwards (hostfwd_add user0).
    // No option ROM: machines boot from disk or a kernel, never the network, and the firmware
    // would otherwise run iPXE's ROM on every start (emulated, that is boot time).
    args.push('-netdev', `user,id=user0${layout}${fwd}`, '-device', 'virtio-net-pci,netdev=user0,id=nic0,romfile=');
  } else {
    args.push('-nic', 'none');
  }
  if (o.qmpSocket) args.push('-qmp', `unix:${o.qmpSocket},server=on,wait=off`);
  if (o.shellSocket) {
    args.push('-device', 'virtio-serial-pci,id=shell-serial', '-chardev', `socket,id=${SHELL_CHARDEV},path=${o.shellSocket},server=on,wait=off`, '-device', `virtserialport,bus=shell-serial.0,chardev=${SHELL_CHARDEV},name=${SHELL_PORT}`);
  }
  if (o.guestAgentSocket) {
    // A controller of its own: the test shell's is there only under `cairn test`. QEMU reads ',,' as a comma.
    args.push('-device', 'virtio-serial-pci,id=qga-serial', '-chardev', `socket,id=qga0,path=${o.guestAgentSocket.replace(/,/g, ',,')},server=on,wait=off`, '-device', 'virtserialport,bus=qga-serial.0,chardev=qga0,name=org.qemu.guest_agent.0');
  }
  return args;
}

/** Why waiting for a console line ended. */
export interface WaitResult {
  matched: boolean;
  /** Seconds since the machine started. */
  seconds: number;
  /** Set when a fatal line appeared or QEMU exited first. */
  reason?: string;
}

/** Console lines after which waiting for anything else is pointless. */
export const FATAL_CONSOLE = /Kernel panic|cairn stage 1: error|Freezing execution|You are in emergency mode/;

/** A QEMU process whose console (serial on stdout) is captured. */
export class RunningMachine {
  private log = '';
  private readonly started = performance.now();
  /** How QEMU ended, once it has (its exit status or the signal that killed it, and when). */
  private ending?: string;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly process: ResultPromise) {
    const onData = (chunk: Buffer): void => {
      this.log += chunk.toString('utf8');
      for (const l of this.listeners) l();
    };
    process.stdout?.on('data', onData);
    process.stderr?.on('data', onData);
    void process.then(
      (r) => this.onExit(r.signal ? `killed by ${r.signal}` : `exit status ${r.exitCode ?? '?'}`),
      (err: Error) => this.onExit(err.message),
    );
  }

  private onExit(ending: string): void {
    this.ending = `${ending} after ${this.seconds.toFixed(1)} s`;
    for (const l of this.listeners) l();
  }

  /** Starts QEMU with these arguments, capturing its serial console. */
  static start(args: string[], qemu = QEMU): RunningMachine {
    const p = execa(qemu, args, { reject: false, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: false, forceKillAfterDelay: 2000 });
    return new RunningMachine(p);
  }

  /** Adds a line of the host's to the console log (e.g. where a snapshot was restored). */
  note(text: string): void {
    this.log += `${this.log === '' || this.log.endsWith('\n') ? '' : '\n'}${text}\n`;
  }

  /** Whether QEMU has ended. */
  get hasExited(): boolean {
    return this.ending !== undefined;
  }

  /** How QEMU ended and when (`exit status 0 after 41.2 s`, `killed by SIGKILL after …`); undefined while it runs. */
  get exitDescription(): string | undefined {
    return this.ending;
  }

  /** Everything the console printed so far. */
  get console(): string {
    return this.log;
  }

  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  /**
   * Waits until the console matches `pattern`, a fatal line appears (`fatal`), QEMU exits or
   * `timeoutMs` passes. Only text after `from` (an offset into the console) counts.
   */
  waitForConsole(pattern: RegExp, timeoutMs: number, opts: { fatal?: RegExp; from?: number } = {}): Promise<WaitResult> {
    const fatal = opts.fatal ?? FATAL_CONSOLE;
    const from = opts.from ?? 0;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let grace: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (r: Omit<WaitResult, 'seconds'>): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(grace);
        this.listeners.delete(check);
        resolve({ ...r, seconds: this.seconds });
      };
      const check = (): void => {
        const text = this.log.slice(from);
        if (pattern.test(text)) finish({ matched: true });
        else if (this.hasExited) finish({ matched: false, reason: 'QEMU exited' });
        else if (!grace && fatal.test(text)) {
          // Let the rest of the message reach the log (it may still match) before giving up.
          grace = setTimeout(() => finish({ matched: false, reason: `the console showed: ${fatal.exec(this.log.slice(from))?.[0]}` }), 2000);
        }
      };
      timer = setTimeout(() => finish({ matched: false, reason: `no match within ${timeoutMs / 1000} s` }), timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /** Stops QEMU (SIGTERM, then SIGKILL) and waits for it to exit. */
  async stop(): Promise<void> {
    if (!this.hasExited) this.process.kill('SIGTERM');
    await this.process;
  }
}
