/**
 * The toplevel's file contract, in one place: what a system's toplevel records about itself for
 * the stages after the build, written here (by the build) and read here (by images, generations,
 * switches, VMs). Any toplevel cairn built, old or new, is read through these functions.
 *
 *   boot.json           a generation as a boot loader sees it: kernel, initrd, init, kernel
 *                       parameters, root file system, loader settings (`org.cairn.bootspec.v1`)
 *   configuration.json  the lock's hash and the evaluated configuration without paths of the
 *                       building machine, for options the bootspec does not carry (image sizes)
 *
 * `@out@` in boot.json stands for the toplevel itself (its path is known only once built).
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { CairnError } from '../errors.js';
import { projectRoot } from '../paths.js';
import type { Store } from '../store/index.js';

export const BOOT_JSON = 'boot.json';
export const CONFIGURATION_JSON = 'configuration.json';
const BOOTSPEC_KEY = 'org.cairn.bootspec.v1';

/** The loader settings a toplevel records (boot.json `loader`). */
export interface LoaderSettings {
  /** `systemd-boot` (also when GRUB is there too: a hybrid), or `grub` alone. */
  type: 'systemd-boot' | 'grub';
  /** Logical path of systemd-bootx64.efi; null: no systemd-boot. */
  efi: string | null;
  timeout: number | null;
  editor: boolean;
  configurationLimit: number | null;
  /** Boots a new default generation gets before it is abandoned; 0: no boot counting. */
  tries: number;
  /** Where the machine mounts its ESP; null: it has none (a directly booted VM). */
  esp: string | null;
  /** GRUB for BIOS boot; absent: none (written only when enabled, so other toplevels keep their hash). */
  grub?: GrubSettings;
}

/** What boot.json records of `boot.loader.grub`. */
export interface GrubSettings {
  timeout: number | null;
  configurationLimit: number;
  devices: string[];
}

/** What the build writes into boot.json (paths may contain `@out@`). */
export interface BootRecord {
  label: string;
  kernel: string | null;
  kernelVersion: string | null;
  initrd: string | null;
  kernelParams: string[];
  root: { device: string; fsType: string } | null;
  loader: LoaderSettings | null;
}

/** The text of `boot.json`. */
export function bootJsonText(b: BootRecord): string {
  // Key order is part of the file (and so of the toplevel's hash): keep it.
  const spec = {
    label: b.label,
    kernel: b.kernel,
    kernelVersion: b.kernelVersion,
    initrd: b.initrd,
    init: '@out@/init',
    kernelParams: b.kernelParams,
    system: 'x86_64-linux',
    toplevel: '@out@',
    // What boot entries and images need besides the kernel: the root file system, and the
    // loader's settings (the newest generation's apply to the whole menu).
    root: b.root,
    loader: b.loader,
  };
  return JSON.stringify({ [BOOTSPEC_KEY]: spec }, null, 2) + '\n';
}

/**
 * The configuration (a plain copy: `toPlain` of the evaluation's) without paths of this machine:
 * strings under the configuration's folder become `./…` relative to it, those under cairn's own
 * checkout `<cairn>/…`. The contents of such files are in the derivations; their location is not.
 */
export function portableConfig(plain: unknown, configDir: string): unknown {
  const prefixes: [string, string][] = [
    [configDir + '/', './'],
    [projectRoot + '/', '<cairn>/'],
  ];
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      for (const [p, r] of prefixes) if (v.startsWith(p)) return r + v.slice(p.length);
      return v;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(plain);
}

/** The text of `configuration.json`: the lock's sha256 (hex) and the portable configuration. */
export function configurationJsonText(lockSha256: string, plainConfig: unknown, configDir: string): string {
  return JSON.stringify({ lock: `sha256:${lockSha256}`, config: portableConfig(plainConfig, configDir) }, null, 1) + '\n';
}

export interface Bootspec {
  /** Logical store path of the toplevel. */
  toplevel: string;
  label: string;
  /** Logical paths (through the toplevel's links resolved to store objects). */
  kernel: string;
  kernelVersion: string;
  initrd: string;
  init: string;
  kernelParams: string[];
  /** `LABEL=root`, `UUID=…` or a device path, and its type. */
  root: { device: string; fsType: string };
  loader: LoaderSettings | null;
}

/** Reads and checks `<toplevel>/boot.json`; an error names the toplevel when it cannot boot. */
export function readBootspec(store: Store, toplevel: string): Bootspec {
  const top = store.parse(toplevel).logical;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(store.toPhysical(`${top}/${BOOT_JSON}`), 'utf8'))[BOOTSPEC_KEY];
  } catch (err) {
    throw new CairnError(`${top} is not a system built by cairn (no readable ${BOOT_JSON}): ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object') throw new CairnError(`${top}/${BOOT_JSON} has no ${BOOTSPEC_KEY} section`);
  const fill = (v: unknown): string => String(v).replaceAll('@out@', top);
  if (!raw.kernel || !raw.initrd) throw new CairnError(`${top} has no kernel or initrd (boot.kernelPackage is null?): it cannot boot from a disk image`);
  const root = raw.root as { device: string; fsType: string } | null | undefined;
  if (!root) throw new CairnError(`${top} declares no root file system (fileSystems."/"), or was built by an older cairn: rebuild it`);
  return {
    toplevel: top,
    label: String(raw.label),
    kernel: fill(raw.kernel),
    kernelVersion: String(raw.kernelVersion),
    initrd: fill(raw.initrd),
    init: fill(raw.init),
    kernelParams: (raw.kernelParams as unknown[]).map(String),
    root,
    loader: (raw.loader as LoaderSettings | null | undefined) ?? null,
  };
}

/** The raw `configuration.json` of a toplevel. */
function readConfigurationFile(store: Store, toplevel: string): Buffer {
  const top = store.parse(toplevel).logical;
  try {
    return readFileSync(store.toPhysical(`${top}/${CONFIGURATION_JSON}`));
  } catch (err) {
    throw new CairnError(`${top} is not a system built by cairn (no readable ${CONFIGURATION_JSON}): ${(err as Error).message}`);
  }
}

/** The evaluated configuration a toplevel records (portable: see `portableConfig`). */
export function readConfiguration(store: Store, toplevel: string): Record<string, unknown> {
  const top = store.parse(toplevel).logical;
  try {
    return (JSON.parse(readConfigurationFile(store, toplevel).toString('utf8')) as { config: Record<string, unknown> }).config;
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw new CairnError(`${top} is not a system built by cairn (no readable ${CONFIGURATION_JSON}): ${(err as Error).message}`);
  }
}

/** sha256 (hex) of a toplevel's configuration record, or null for a toplevel without one. */
export function configurationHash(store: Store, toplevel: string): string | null {
  let text: Buffer;
  try {
    text = readConfigurationFile(store, toplevel);
  } catch {
    return null;
  }
  return createHash('sha256').update(text).digest('hex');
}

/** The image sizes a toplevel records (`image.*`, whose defaults the module declares). */
export function readImageSettings(store: Store, toplevel: string): { headroom: string; espSize: string } {
  const image = readConfiguration(store, toplevel).image as { headroom?: unknown; espSize?: unknown } | undefined;
  if (typeof image?.headroom !== 'string' || typeof image.espSize !== 'string') {
    throw new CairnError(`${store.parse(toplevel).logical}/${CONFIGURATION_JSON} records no image.headroom and image.espSize (built by an older cairn?): rebuild it`);
  }
  return { headroom: image.headroom, espSize: image.espSize };
}
