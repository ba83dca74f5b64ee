/**
 * The EFI system partition: systemd-boot as the removable-media loader (EFI/BOOT/BOOTX64.EFI, so
 * firmware with empty variables boots it), `loader/loader.conf`, and one Boot Loader
 * Specification Type #1 entry per generation. Kernels and initrds are copied under names made
 * of their store path's hash, so generations that share a kernel share one file.
 *
 * Written without mounting: `mkfs.vfat` into the disk image at the partition's offset, then
 * mtools. `--invariant`, a volume id derived from the image and every timestamp set to the
 * image's epoch make the partition byte-identical for the same inputs.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import type { Store } from '../store/index.js';
import { entryName, kernelCommandLine, loaderConfText, withConsole, type LoaderSettings } from '../build/loader.js';
import type { Bootspec } from '../toplevel/index.js';
import { grubCfgText, grubConsoleText, grubEntryWithConsole, grubEnvBlock } from '../build/grub.js';
import { grubModuleFiles } from './bios.js';

export { entryName };

export interface Generation {
  number: number;
  spec: Bootspec;
}

/** One file of the ESP: copied from the store (`source`, physical) or written (`text`). */
export type EspFile = { path: string; source: string } | { path: string; text: string };

/** The kernel command line of a directly booted generation, with a serial console. */
export function entryOptions(spec: Bootspec, serialConsole?: string): string {
  return withConsole(kernelCommandLine(spec.init, spec.root.device, spec.kernelParams), serialConsole);
}

/** `loader/loader.conf` with `settings`, naming `defaultGen`'s entry when given (tests pick entries so). */
export function loaderConf(settings: LoaderSettings, defaultGen?: number): string {
  return loaderConfText(settings, defaultGen === undefined ? undefined : entryName(defaultGen));
}

export interface EspPlan {
  files: EspFile[];
  /** Generations that got an entry (configurationLimit keeps the newest, and the current one). */
  entries: number[];
  /** The generation the menu starts on: the current one. */
  defaultGeneration: number;
  /** Bytes of the copied files. */
  bytes: number;
}

/**
 * A file of a toplevel's `boot/` folder, physical, its links followed through the store; an error
 * names a generation built before toplevels had one.
 */
function bootFile(store: Store, g: Generation, rel: string): string {
  const logical = `${g.spec.toplevel}/boot/${rel}`;
  try {
    lstatSync(store.toPhysical(logical));
  } catch {
    throw new CairnError(`generation ${g.number} (${g.spec.toplevel}) has no boot/${rel}: it was built by an older cairn; rebuild it`);
  }
  return store.realFile(logical);
}

/**
 * What the ESP holds for these generations (numbered): what each toplevel's `boot/` folder says
 * (see src/build/loader.ts), written as `bin/install-bootloader` writes it on a machine, so a
 * switch after the image finds the same files. The current generation (default: the newest)
 * decides the menu settings and the loader; entries of newer ones sort after it.
 */
export async function planEsp(store: Store, generations: Generation[], opts: { serialConsole?: string; current?: number; grubModulesDir?: string } = {}): Promise<EspPlan> {
  if (generations.length === 0) throw new CairnError('an image needs at least one generation');
  const sorted = [...generations].sort((a, b) => a.number - b.number);
  const current = sorted.find((g) => g.number === (opts.current ?? sorted[sorted.length - 1]!.number));
  if (!current) throw new CairnError(`generation ${opts.current} is not among the image's generations`);
  const loader = current.spec.loader;
  if (!loader) {
    throw new CairnError(`${current.spec.toplevel} has no boot loader (boot.loader.systemd-boot.enable and boot.loader.grub.enable are false): disk images boot through one`);
  }
  const sdboot = loader.efi !== null;
  const limit = loader.configurationLimit ?? sorted.length;
  const withEntries = sorted.filter((g, i) => i >= sorted.length - limit || g === current);
  const files: EspFile[] = [];
  let bytes = 0;
  const add = (path: string, source: string): void => {
    if (files.some((f) => f.path === path)) return;
    files.push({ path, source });
    bytes += statSync(source).size;
  };
  if (sdboot) add('EFI/BOOT/BOOTX64.EFI', bootFile(store, current, 'systemd-boot.efi'));
  const extra = opts.serialConsole ? `console=${opts.serialConsole}` : undefined;
  for (const g of withEntries) {
    for (const name of readdirSync(bootFile(store, g, 'efi')).sort()) add(`EFI/cairn/${name}`, bootFile(store, g, `efi/${name}`));
  }
  if (loader.grub) {
    // What install-bootloader writes (see src/build/grub.ts), plus GRUB's modules for commands the core image lacks.
    const entries = withEntries.map((g): [number, string] => [g.number, grubEntryWithConsole(readFileSync(bootFile(store, g, 'grub-entry.cfg'), 'utf8'), extra)]);
    const text = grubCfgText(readFileSync(bootFile(store, current, 'grub-head.cfg'), 'utf8'), current.number, entries, readFileSync(bootFile(store, current, 'grub-extra.cfg'), 'utf8'));
    files.push({ path: 'grub/grub.cfg', text });
    files.push({ path: 'grub/grubenv', text: grubEnvBlock() });
    if (opts.serialConsole) files.push({ path: 'grub/cairn-console.cfg', text: grubConsoleText(opts.serialConsole) });
    if (opts.grubModulesDir) for (const m of grubModuleFiles(opts.grubModulesDir)) add(`grub/i386-pc/${m.name}`, m.source);
  }
  for (const g of sdboot ? withEntries : []) {
    const text = readFileSync(bootFile(store, g, 'entry.conf'), 'utf8')
      .replaceAll('@generation@', String(g.number))
      .replace(/^sort-key .*$/m, `sort-key ${g.number > current.number ? 'cairn-newer' : 'cairn'}`)
      .replace(/^options (.*)$/m, (_, o: string) => `options ${withConsole(o, opts.serialConsole)}`);
    files.push({ path: `loader/entries/${entryName(g.number)}`, text });
  }
  if (sdboot) {
    files.push({ path: 'loader/loader.conf', text: readFileSync(bootFile(store, current, 'loader.conf'), 'utf8') });
    files.push({ path: 'loader/entries.srel', text: 'type1\n' });
  }
  // Switches on the machine add this to the entries they write, as the image did.
  if (extra) files.push({ path: 'loader/cairn-extra-options', text: `${extra}\n` });
  return { files, entries: withEntries.map((g) => g.number), defaultGeneration: current.number, bytes };
}

/**
 * Makes the FAT file system of `plan` in `image` at byte `offset` (size `bytes`), without mounting.
 * Files are staged in `work` with the image epoch as their time, then copied in by mcopy.
 */
export async function writeEsp(plan: EspPlan, opts: { image: string; offset: number; bytes: number; label: string; volumeId: string; epoch: number; work: string }): Promise<void> {
  const stage = join(opts.work, 'esp');
  const dirs = new Set<string>();
  for (const f of plan.files) {
    const dest = join(stage, f.path);
    mkdirSync(dirname(dest), { recursive: true });
    if ('text' in f) writeFileSync(dest, f.text);
    else copyFileSync(f.source, dest);
    utimesSync(dest, opts.epoch, opts.epoch);
    for (let d = dirname(f.path); d !== '.'; d = dirname(d)) dirs.add(d);
  }
  for (const d of dirs) utimesSync(join(stage, d), opts.epoch, opts.epoch);
  const sectors = opts.offset / 512;
  // The FAT type is chosen here: mkfs.vfat would judge by the whole disk file, not the partition.
  const fatBits = opts.bytes < 512 * 2 ** 20 ? '16' : '32';
  const mkfs = await execa('mkfs.vfat', ['-F', fatBits, '--invariant', '-i', opts.volumeId, '-n', opts.label.toUpperCase(), '--offset', String(sectors), opts.image, String(opts.bytes / 1024)], {
    reject: false,
    all: true,
  });
  if (mkfs.exitCode !== 0) throw new CairnError(`mkfs.vfat failed (exit ${mkfs.exitCode}): ${mkfs.all}`);
  const tops = [...new Set(plan.files.map((f) => f.path.split('/')[0]!))].sort();
  // -s recursive, -p keep modes, -m keep times, -Q stop at the first error; TZ fixed so times do not depend on the host.
  const mc = await execa('mcopy', ['-s', '-p', '-m', '-Q', '-i', `${opts.image}@@${opts.offset}`, ...tops, '::'], {
    cwd: stage,
    reject: false,
    all: true,
    env: { TZ: 'UTC', MTOOLS_SKIP_CHECK: '1' },
  });
  if (mc.exitCode !== 0) throw new CairnError(`mcopy into the ESP failed (exit ${mc.exitCode}): ${mc.all}`);
}

/** The size an `auto` ESP gets: room for the files twice over (future generations), at least `min`. */
export function autoEspBytes(plan: EspPlan, min: number): number {
  const mib = 2 ** 20;
  return Math.max(min, Math.ceil((plan.bytes * 2 + 8 * mib) / mib) * mib);
}

