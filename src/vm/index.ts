/**
 * The VM stage: a configuration → a QEMU machine that boots it (what `cairn vm` runs, and what
 * VM tests start). The system is built with `virtualisation.vm` set; the toplevel's kernel and
 * initrd boot directly (no firmware or boot loader: the fastest start under emulation), the store
 * comes from a read-only disk of the closure, the root from a persistent state disk.
 *
 * May touch: the store (the build), `$CAIRN_HOME/vm/` (store disks) and the state disk file.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Store } from '../store/index.js';
import { buildSystem } from '../build/index.js';
import { readBootspec } from '../image/bootspec.js';
import { entryOptions } from '../image/esp.js';
import { chooseAccelerator, type AcceleratorChoice } from './accel.js';
import { qemuArgs, type PortForward, type QemuOptions } from './qemu.js';
import { stateDisk, storeDisk } from './disks.js';

export { qemuArgs, parseForward, RunningMachine, FATAL_CONSOLE, OVMF_CODE, OVMF_VARS, QEMU, type PortForward, type QemuOptions } from './qemu.js';
export { chooseAccelerator, type Accelerator, type AcceleratorChoice } from './accel.js';
export { storeDisk, stateDisk } from './disks.js';

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
  onProgress?: (message: string) => void;
}

export interface PreparedVm {
  toplevel: string;
  accel: AcceleratorChoice;
  args: string[];
  options: QemuOptions;
  state: { path: string; created: boolean };
  warnings: string[];
}

interface VirtualisationConfig {
  memorySize: number;
  cores: number;
  diskSize: string;
  forwardPorts: PortForward[];
}

/** Builds what a VM of `configPath` needs and returns the QEMU command line that boots it. */
export async function prepareVm(configPath: string, opts: PrepareVmOptions): Promise<PreparedVm> {
  const { store } = opts;
  const progress = opts.onProgress ?? (() => {});
  const built = await buildSystem(configPath, { store, onProgress: progress, extraModules: [{ virtualisation: { vm: true } }] });
  const rec = JSON.parse(readFileSync(store.toPhysical(`${built.toplevel}/configuration.json`), 'utf8')) as { config: { virtualisation: VirtualisationConfig } };
  const v = rec.config.virtualisation;
  const spec = readBootspec(store, built.toplevel);
  const storeImg = await storeDisk(store, built.toplevel, progress);
  const state = await stateDisk(opts.state, v.diskSize, join(store.home, 'tmp'));
  progress('choosing the accelerator');
  const accel = await chooseAccelerator();
  const options: QemuOptions = {
    accel: accel.accel,
    memoryMiB: opts.memoryMiB ?? v.memorySize,
    cpus: opts.cpus ?? v.cores,
    kernel: { kernel: store.realFile(spec.kernel), initrd: store.realFile(spec.initrd), append: entryOptions(spec, 'ttyS0,115200') },
    drives: [
      { file: state.path, format: 'qcow2' },
      { file: storeImg, format: 'raw', readonly: true },
    ],
    network: { forwards: [...v.forwardPorts.map((f) => ({ proto: f.proto, hostPort: f.hostPort, guestPort: f.guestPort })), ...(opts.forwards ?? [])] },
    console: opts.console ?? 'capture',
    ...(opts.qmpSocket ? { qmpSocket: opts.qmpSocket } : {}),
  };
  return { toplevel: built.toplevel, accel, args: qemuArgs(options), options, state, warnings: built.warnings };
}
