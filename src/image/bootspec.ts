/**
 * A generation as a boot loader sees it: what `<toplevel>/boot.json` says (kernel, initrd, init,
 * kernel parameters, root file system, loader settings). Images and switches read only this file,
 * so any toplevel cairn built, old or new, can get a boot entry.
 */
import { readFileSync } from 'node:fs';
import { CairnError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { LoaderSettings } from '../build/loader.js';

export type { LoaderSettings };

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
    raw = JSON.parse(readFileSync(store.toPhysical(`${top}/boot.json`), 'utf8'))['org.cairn.bootspec.v1'];
  } catch (err) {
    throw new CairnError(`${top} is not a system built by cairn (no readable boot.json): ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object') throw new CairnError(`${top}/boot.json has no org.cairn.bootspec.v1 section`);
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

/**
 * The evaluated configuration a toplevel records (`<toplevel>/configuration.json`), for the stages
 * after the build that need an option the bootspec does not carry (image sizes, VM settings).
 */
export function readConfiguration(store: Store, toplevel: string): Record<string, unknown> {
  const top = store.parse(toplevel).logical;
  try {
    return (JSON.parse(readFileSync(store.toPhysical(`${top}/configuration.json`), 'utf8')) as { config: Record<string, unknown> }).config;
  } catch (err) {
    throw new CairnError(`${top} is not a system built by cairn (no readable configuration.json): ${(err as Error).message}`);
  }
}
