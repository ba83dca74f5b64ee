/**
 * The VM stage: a configuration → a QEMU machine that boots it (what `cairn vm` runs, and what
 * VM tests start). The system is built with `virtualisation.vm` set; the toplevel's kernel and
 * initrd boot directly (no firmware or boot loader: the fastest start under emulation), the store
 * comes from a read-only disk of the closure, the root from a persistent state disk. With
 * `virtualisation.useBootLoader` it boots an image of the system under OVMF instead (see disks.ts).
 *
 * May touch: the store (the build), `$CAIRN_HOME/vm/` (store disks) and the state disk file.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CairnError } from '../errors.js';
import type { Store } from '../store/index.js';
import { buildSystem } from '../build/index.js';
import { evalConfigFile, type SystemEvaluation, type SystemSpec } from '../eval/index.js';
import { readBootspec } from '../toplevel/index.js';
import { entryOptions } from '../image/esp.js';
import { chooseAccelerator, qemuVersionText, tcgSmpRisk, type AcceleratorChoice } from './accel.js';
import { OVMF_VARS, QEMU, qemuArgs, type PortForward, type QemuOptions, type UserNetIpv4 } from './qemu.js';
import type { ModuleInput } from '../lib/index.js';
import { bootDiskImage, overlayDisk, stateDisk, storeDisk } from './disks.js';
import { directBootKernel } from './kernel-elf.js';

export { qemuArgs, parseForward, RunningMachine, FATAL_CONSOLE, OVMF_CODE, OVMF_VARS, QEMU, type PortForward, type QemuOptions, type UserNetIpv4 } from './qemu.js';
export { chooseAccelerator, type Accelerator, type AcceleratorChoice } from './accel.js';
export { storeDisk, stateDisk, bootDiskImage, overlayDisk } from './disks.js';
export { directBootKernel } from './kernel-elf.js';

export interface PrepareVmOptions {
  store: Store;
  /** The state disk file (made on first use). */
  state: string;
  /** Overrides of the configuration's `virtualisation.*`. */
  memoryMiB?: number;
  cpus?: number;
  forwards?: PortForward[];
  /** Console on the terminal (`cairn vm`) or captured (tests). */
  console?: 'stdio' | 'capture';
  qmpSocket?: string;
  /** Where the guest agent's port is reached, when the configuration enables `services.qemuGuest`. */
  guestAgentSocket?: string;
  /** The test driver's shell socket (the configuration should set `testing.enable`). */
  shellSocket?: string;
  /** More toplevels whose closures the store disk holds (generations a test switches to). */
  alsoInStore?: string[];
  onProgress?: (message: string) => void;
}

export interface PreparedVm {
  toplevel: string;
  accel: AcceleratorChoice;
  args: string[];
  options: QemuOptions;
  state: { path: string; created: boolean };
  /** The cached disk images the machine reads (store disk, or the image its state disk overlays): a cache that is pruned unless open. */
  cachedDisks: string[];
  warnings: string[];
  /** Why this QEMU may crash the guest (more than one CPU under an old TCG), also among `warnings`. */
  tcgRisk?: string;
}

/** The module a VM's configuration is evaluated with: its system is built to boot in QEMU. */
export const VM_MODULE: ModuleInput = { virtualisation: { vm: true } };

/** Evaluates a configuration file as `cairn vm` boots it (with `VM_MODULE`, then `extraModules`). */
export function evalVmConfig(file: string, extraModules: ModuleInput[] = []): Promise<SystemEvaluation> {
  return evalConfigFile(file, { extraModules: [VM_MODULE, ...extraModules] });
}

const ipNum = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const ipStr = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/**
 * The user network's layout for a configuration whose eth0 has a static IPv4 address: the same
 * subnet, QEMU's end at the default gateway (or the subnet's first address), so forwards reach
 * the address the machine is configured with. Undefined: QEMU's default 10.0.2.0/24 with DHCP.
 */
export function userNetFor(net: SystemSpec['vm']['network']): UserNetIpv4 | undefined {
  const a = net.eth0Ipv4;
  if (!a || a.prefixLength < 8 || a.prefixLength > 30 || !/^\d+\.\d+\.\d+\.\d+$/.test(a.address)) return undefined;
  const size = 2 ** (32 - a.prefixLength);
  const base = ipNum(a.address) - (ipNum(a.address) % size);
  const inNet = (x: string | undefined): x is string => x !== undefined && /^\d+\.\d+\.\d+\.\d+$/.test(x) && ipNum(x) - base >= 1 && ipNum(x) - base < size - 1 && x !== a.address;
  const gw = net.defaultGateway ?? undefined;
  const first = ipStr(base + 1) === a.address ? ipStr(base + 2) : ipStr(base + 1);
  const host = inNet(gw) ? gw : first;
  const dns = net.nameservers.find((d) => inNet(d) && d !== host);
  return { net: `${ipStr(base)}/${a.prefixLength}`, host, guest: a.address, ...(dns ? { dns } : {}) };
}

/** Builds what a VM of a configuration (evaluated by `evalVmConfig`) needs and returns the QEMU command line that boots it. */
export async function prepareVm(system: SystemEvaluation, opts: PrepareVmOptions): Promise<PreparedVm> {
  const { store } = opts;
  const progress = opts.onProgress ?? (() => {});
  const v = system.spec.vm;
  // Without it the system would look for its root and store on disks the VM does not have.
  if (!v.enable) throw new CairnError('virtualisation.vm is not set: evaluate the configuration for a VM (evalVmConfig)');
  const built = await buildSystem(system, { store, onProgress: progress });
  const ipv4 = userNetFor(v.network);
  const spec = readBootspec(store, built.toplevel);
  let boot: Pick<QemuOptions, 'kernel' | 'drives' | 'uefiVars'>;
  let state: { path: string; created: boolean };
  let cachedDisk: string;
  if (v.useBootLoader) {
    // Firmware, loader and entries as on hardware: the state disk is an overlay of the system's image.
    const base = await bootDiskImage(store, built.toplevel, v.diskSize, progress, opts.alsoInStore);
    cachedDisk = base;
    state = await overlayDisk(opts.state, base);
    const efi = spec.loader?.efi != null;
    if (v.useEFIBoot && !efi) throw new CairnError('virtualisation.useEFIBoot is set, but the system has no UEFI boot loader (boot.loader.systemd-boot.enable is false)');
    if (!v.useEFIBoot && !spec.loader?.grub) throw new CairnError('virtualisation.useEFIBoot is false, but the system has no BIOS boot loader (boot.loader.grub.enable is false)');
    if (v.useEFIBoot) {
      const vars = `${state.path}.efivars.fd`;
      if (state.created || !existsSync(vars)) copyFileSync(OVMF_VARS, vars);
      boot = { drives: [{ file: state.path, format: 'qcow2' }], uefiVars: vars };
    } else {
      // No firmware given: QEMU's SeaBIOS boots GRUB from the disk's first sector.
      boot = { drives: [{ file: state.path, format: 'qcow2' }] };
    }
  } else {
    const storeImg = await storeDisk(store, built.toplevel, progress, opts.alsoInStore);
    cachedDisk = storeImg;
    state = await stateDisk(opts.state, v.diskSize, join(store.home, 'tmp'));
    boot = {
      kernel: { kernel: await directBootKernel(store, spec.kernel), initrd: store.realFile(spec.initrd), append: entryOptions(spec, 'ttyS0,115200') },
      drives: [
        { file: state.path, format: 'qcow2' },
        { file: storeImg, format: 'raw', readonly: true },
      ],
    };
  }
  progress('choosing the accelerator');
  const accel = await chooseAccelerator();
  const options: QemuOptions = {
    accel: accel.accel,
    memoryMiB: opts.memoryMiB ?? v.memorySize,
    cpus: opts.cpus ?? v.cores,
    ...boot,
    network: {
      forwards: [...v.forwardPorts.map((f) => ({ proto: f.proto, hostPort: f.hostPort, guestPort: f.guestPort })), ...(opts.forwards ?? [])],
      ...(ipv4 ? { ipv4 } : {}),
    },
    console: opts.console ?? 'capture',
    ...(opts.qmpSocket ? { qmpSocket: opts.qmpSocket } : {}),
    ...(opts.shellSocket ? { shellSocket: opts.shellSocket } : {}),
    ...(opts.guestAgentSocket && v.guestAgent ? { guestAgentSocket: opts.guestAgentSocket } : {}),
  };
  const risk = tcgSmpRisk(accel.accel, options.cpus, accel.accel === 'tcg' && options.cpus > 1 ? await qemuVersionText(QEMU) : '');
  return { toplevel: built.toplevel, accel, args: qemuArgs(options), options, state, cachedDisks: [resolve(cachedDisk)], warnings: [...built.warnings, ...(risk ? [risk] : [])], ...(risk ? { tcgRisk: risk } : {}) };
}
