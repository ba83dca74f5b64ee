/**
 * The EFI system partition: systemd-boot as the removable-media loader (EFI/BOOT/BOOTX64.EFI, so
 * firmware with empty variables boots it), `loader/loader.conf`, and one Boot Loader
 * Specification Type #1 entry per generation. Kernels and initrds are copied under names made
 * of their content hash, so generations that share a kernel share one file.
 *
 * Written without mounting: `mkfs.vfat` into the disk image at the partition's offset, then
 * mtools. `--invariant`, a volume id derived from the image and every timestamp set to the
 * image's epoch make the partition byte-identical for the same inputs.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, statSync, utimesSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { toNixBase32 } from '../store/hash.js';
import type { Store } from '../store/index.js';
import type { Bootspec, LoaderSettings } from './bootspec.js';

export interface Generation {
  number: number;
  spec: Bootspec;
}

/** One file of the ESP: copied from the store (`source`, physical) or written (`text`). */
export type EspFile = { path: string; source: string } | { path: string; text: string };

/** Entry file name of a generation (also what `default` and boot counting refer to). */
export function entryName(gen: number): string {
  return `cairn-generation-${gen}.conf`;
}

async function contentHash(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return toNixBase32(h.digest().subarray(0, 20));
}

/** The kernel command line of an entry: the generation, its root, its own parameters, the format's console. */
export function entryOptions(spec: Bootspec, serialConsole?: string): string {
  const params = [`init=${spec.init}`, `root=${spec.root.device}`, ...spec.kernelParams];
  const tty = serialConsole?.split(',')[0];
  if (serialConsole && !spec.kernelParams.some((p) => p === `console=${serialConsole}` || p.startsWith(`console=${tty},`) || p === `console=${tty}`)) {
    params.push(`console=${serialConsole}`);
  }
  return params.join(' ');
}

/** `loader/loader.conf`: the default entry, the menu timeout, the editor (off unless asked). */
export function loaderConf(settings: LoaderSettings, defaultGen: number): string {
  const timeout = settings.timeout === null ? 'menu-force' : String(settings.timeout);
  return [`default ${entryName(defaultGen)}`, `timeout ${timeout}`, `editor ${settings.editor ? 'yes' : 'no'}`, 'console-mode keep', ''].join('\n');
}

export interface EspPlan {
  files: EspFile[];
  /** Generations that got an entry (configurationLimit keeps the newest). */
  entries: number[];
  defaultGeneration: number;
  /** Bytes of the copied files. */
  bytes: number;
}

/**
 * What the ESP holds for these generations (numbered, oldest first). The newest generation's
 * loader settings and systemd-boot binary apply: it is the one the machine boots by default.
 */
export async function planEsp(store: Store, generations: Generation[], opts: { serialConsole?: string } = {}): Promise<EspPlan> {
  if (generations.length === 0) throw new CairnError('an image needs at least one generation');
  const sorted = [...generations].sort((a, b) => a.number - b.number);
  const newest = sorted[sorted.length - 1]!;
  const loader = newest.spec.loader;
  if (!loader) {
    throw new CairnError(`${newest.spec.toplevel} has no boot loader (boot.loader.systemd-boot.enable is false): disk images boot through systemd-boot`);
  }
  const limit = loader.configurationLimit ?? sorted.length;
  const withEntries = sorted.slice(-limit);
  const files: EspFile[] = [];
  const copied = new Map<string, string>(); // physical source → ESP path
  let bytes = 0;
  const copy = async (logical: string, suffix: string): Promise<string> => {
    const source = store.realFile(logical);
    const known = copied.get(source);
    if (known) return known;
    const path = `EFI/cairn/${await contentHash(source)}-${suffix}.efi`;
    if (!files.some((f) => f.path === path)) {
      files.push({ path, source });
      bytes += statSync(source).size;
    }
    copied.set(source, path);
    return path;
  };
  const bootx64 = store.realFile(loader.efi);
  files.push({ path: 'EFI/BOOT/BOOTX64.EFI', source: bootx64 });
  bytes += statSync(bootx64).size;
  for (const g of withEntries) {
    const linux = await copy(g.spec.kernel, `vmlinuz-${g.spec.kernelVersion}`);
    const initrd = await copy(g.spec.initrd, `initrd-${g.spec.kernelVersion}`);
    const text = [
      `title ${g.spec.label}`,
      `version Generation ${g.number}`,
      'sort-key cairn',
      `linux /${linux}`,
      `initrd /${initrd}`,
      `options ${entryOptions(g.spec, opts.serialConsole)}`,
      '',
    ].join('\n');
    files.push({ path: `loader/entries/${entryName(g.number)}`, text });
  }
  files.push({ path: 'loader/loader.conf', text: loaderConf(loader, newest.number) });
  files.push({ path: 'loader/entries.srel', text: 'type1\n' });
  return { files, entries: withEntries.map((g) => g.number), defaultGeneration: newest.number, bytes };
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

