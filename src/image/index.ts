/**
 * The image stage: toplevels (generations) → a bootable disk image file.
 *
 *   1. read each generation's boot.json; the current one's loader settings apply
 *   2. plan the ESP (systemd-boot, loader.conf, one entry per generation, kernels by content hash)
 *   3. stage the root tree (closure, profile links, FHS links)
 *   4. size and lay out the GPT disk, write the table, the ESP and the ext4 root at their offsets
 *   5. convert (qcow2) and rename into place: the output appears whole or not at all
 *
 * Nothing needs root, a loop device or a mount. May touch: a work folder under the store's home
 * (removed at the end) and the output file.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { CairnError } from '../errors.js';
import { fsyncDir } from '../store/fsutil.js';
import { removeTree, type Store } from '../store/index.js';
import { readBootspec, readImageSettings } from '../toplevel/index.js';
import { planEsp, writeEsp, autoEspBytes, type Generation } from './esp.js';
import { stageRootTree, makeExt4Image, ext4Bytes, treeBytes, treeEntries } from './rootfs.js';
import { layoutDisk, writePartitionTable, convertToQcow2, derivedUuid, derivedVolumeId, MIB, FIRST_PARTITION_OFFSET, TAIL_BYTES, type DiskLayout } from './disk.js';
import { parseSize, type ImageFormat } from './format.js';
import { GRUB_I386_PC, installGrubBios } from './bios.js';

export { findFormat, builtinFormats, parseSize, type ImageFormat } from './format.js';
export { entryName, entryOptions, loaderConf, planEsp, type Generation } from './esp.js';
export { stageRootTree, makeExt4Image } from './rootfs.js';
export { derivedUuid, layoutDisk, sfdiskScript, PARTITION_TYPES } from './disk.js';

/** FAT cannot date anything before 1980. */
const FAT_EPOCH_MIN = 315532800;

/** The image epoch: SOURCE_DATE_EPOCH if set, else the start of FAT time (a fixed value either way). */
export function imageEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return FAT_EPOCH_MIN;
  if (!/^\d+$/.test(v)) throw new CairnError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got '${v}'`);
  return Number(v);
}

export interface BuildImageOptions {
  store: Store;
  format: ImageFormat;
  /** Toplevels, oldest first: they become generations 1…n (or `numbers`); the last is the default entry. */
  toplevels: string[];
  /** The generations' numbers (e.g. a profile's), increasing; default 1…n. */
  numbers?: number[];
  /** The current generation (the profile's `system`, the menu's first entry); default the newest. */
  current?: number;
  /** Store paths whose closures the image holds besides the generations' (a machine may switch to them). */
  alsoInStore?: string[];
  /** Output file (replaced atomically). */
  output: string;
  /** `auto`, or the whole disk's size such as `4G`. */
  size?: string;
  onProgress?: (message: string) => void;
}

export interface BuiltImage {
  output: string;
  format: string;
  bytes: number;
  generations: { number: number; toplevel: string; entry: boolean }[];
  defaultGeneration: number;
  layout: DiskLayout;
  rootFs: { uuid: string; label: string };
}

/** Builds the disk image of `opts.toplevels` (see the file comment). */
export async function buildImage(opts: BuildImageOptions): Promise<BuiltImage> {
  const { store, format } = opts;
  const progress = opts.onProgress ?? (() => {});
  const epoch = imageEpoch();
  if (opts.toplevels.length === 0) throw new CairnError('an image needs at least one generation');
  const numbers = opts.numbers ?? opts.toplevels.map((_, i) => i + 1);
  if (numbers.length !== opts.toplevels.length || numbers.some((n, i) => i > 0 && n <= numbers[i - 1]!)) throw new CairnError('generation numbers must increase, one per toplevel');
  const generations: Generation[] = opts.toplevels.map((t, i) => ({ number: numbers[i]!, spec: readBootspec(store, t) }));
  const current = generations.find((g) => g.number === (opts.current ?? numbers[numbers.length - 1]))!;
  if (!current) throw new CairnError(`generation ${opts.current} is not among the image's generations (${numbers.join(', ')})`);

  // Every generation must find its root on this image's root file system.
  const root = current.spec.root;
  if (!['ext4', 'auto'].includes(root.fsType)) {
    throw new CairnError(`${current.spec.toplevel}: fileSystems."/".fsType is ${root.fsType}, but image formats build an ext4 root`);
  }
  for (const g of generations) {
    if (g.spec.root.device !== root.device) {
      throw new CairnError(`generation ${g.number} (${g.spec.toplevel}) expects its root at ${g.spec.root.device}, the image's current generation at ${root.device}: one image has one root file system`);
    }
  }
  const seed = createHash('sha256')
    .update(JSON.stringify({ format: format.name, toplevels: generations.map((g) => g.spec.toplevel), size: opts.size ?? 'auto', current: current.number, also: opts.alsoInStore ?? [] }))
    .digest('hex');
  let label = 'root';
  let uuid = derivedUuid(seed, 'root-fs');
  if (root.device.startsWith('LABEL=')) label = root.device.slice('LABEL='.length);
  else if (root.device.startsWith('UUID=')) uuid = root.device.slice('UUID='.length);

  const work = join(store.home, 'tmp', `image-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(work, { recursive: true });
  const output = resolve(opts.output);
  mkdirSync(dirname(output), { recursive: true });
  const tmpOut = join(dirname(output), `.${basename(output)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const raw = format.output === 'raw' ? tmpOut : join(work, 'disk.raw');
  try {
    progress('planning the boot partition');
    const espSpec = format.partitions.find((p) => p.role === 'esp')!;
    const biosSpec = format.partitions.find((p) => p.role === 'bios');
    const loader = current.spec.loader;
    if (biosSpec && !loader?.grub) throw new CairnError(`image format ${format.name} boots from BIOS through GRUB: set boot.loader.grub.enable (${current.spec.toplevel} has no GRUB)`);
    if (!biosSpec && loader && loader.efi === null) {
      throw new CairnError(`${current.spec.toplevel} boots through GRUB only (boot.loader.systemd-boot.enable is false): build a BIOS image (--format raw-bios), or enable systemd-boot too for UEFI`);
    }
    const plan = await planEsp(store, generations, { serialConsole: format.serialConsole, current: current.number, ...(biosSpec ? { grubModulesDir: GRUB_I386_PC } : {}) });

    progress('staging the root file system');
    const tree = join(work, 'root');
    const staged = await stageRootTree(store, {
      dir: tree,
      generations: generations.map((g) => ({ number: g.number, toplevel: g.spec.toplevel })),
      current: current.number,
      alsoInStore: opts.alsoInStore,
      mountPoints: current.spec.loader?.esp ? [current.spec.loader.esp] : [],
      epoch,
    });

    const settings = readImageSettings(store, current.spec.toplevel);
    const espWanted = espSpec.size !== 'auto' ? parseSize(espSpec.size, `image format ${format.name}: esp size`) : settings.espSize !== 'auto' ? parseSize(settings.espSize, 'image.espSize') : undefined;
    const espBytes = espWanted !== undefined ? Math.ceil(espWanted / MIB) * MIB : autoEspBytes(plan, espSpec.minSize ? parseSize(espSpec.minSize, `image format ${format.name}: esp minSize`) : 64 * MIB);
    if (espBytes < plan.bytes + 2 * MIB) throw new CairnError(`the EFI system partition (${espBytes / MIB} MiB) cannot hold the boot files (${Math.ceil(plan.bytes / MIB)} MiB)`);
    const biosBytes = biosSpec ? Math.ceil(parseSize(biosSpec.size, `image format ${format.name}: bios size`) / MIB) * MIB : 0;
    const [treeSize, entries] = [await treeBytes(tree), await treeEntries(tree)];
    const needRoot = ext4Bytes(treeSize, entries, 0);
    let rootBytes: number;
    if (opts.size === undefined || opts.size === 'auto') {
      rootBytes = ext4Bytes(treeSize, entries, parseSize(settings.headroom, 'image.headroom'));
    } else {
      const total = Math.floor(parseSize(opts.size, '--size') / MIB) * MIB;
      rootBytes = total - FIRST_PARTITION_OFFSET - espBytes - biosBytes - TAIL_BYTES;
      if (rootBytes < needRoot) {
        throw new CairnError(`--size ${opts.size} is too small: the system needs at least ${Math.ceil((needRoot + espBytes + biosBytes + FIRST_PARTITION_OFFSET + TAIL_BYTES) / MIB)} MiB`);
      }
    }
    // In the format's order: a BIOS boot partition usually comes first.
    const bytesOf = { esp: espBytes, root: rootBytes, bios: biosBytes };
    const layout = layoutDisk(
      seed,
      format.partitions.map((p) => ({ name: p.role, role: p.role, bytes: bytesOf[p.role] })),
    );
    const espPart = layout.partitions.find((p) => p.role === 'esp')!;
    const rootPart = layout.partitions.find((p) => p.role === 'root')!;

    progress(`writing a ${Math.round(layout.bytes / MIB)} MiB disk`);
    // A sparse file of the final size: the table goes in first, then each file system at its offset.
    closeSync(openSync(raw, 'w', 0o644));
    truncateSync(raw, layout.bytes);
    await writePartitionTable(raw, layout);
    const espLabel = espSpec.label ?? 'ESP';
    await writeEsp(plan, { image: raw, offset: espPart.offset, bytes: espPart.bytes, label: espLabel, volumeId: derivedVolumeId(seed), epoch: Math.max(epoch, FAT_EPOCH_MIN), work });
    if (biosSpec) {
      progress('installing GRUB for BIOS boot');
      await installGrubBios(raw, { espPartition: layout.partitions.indexOf(espPart) + 1 });
    }
    progress('writing the root file system');
    await makeExt4Image({
      dir: tree,
      image: raw,
      offset: rootPart.offset,
      sizeBytes: rootPart.bytes,
      label,
      uuid,
      hashSeed: derivedUuid(seed, 'root-hash-seed'),
      epoch,
      specialModes: staged.specialModes,
      ownedByRoot: staged.ownedByRoot,
      onProgress: progress,
    });
    removeTree(tree);

    if (format.output === 'qcow2') {
      progress('converting to qcow2');
      await convertToQcow2(raw, tmpOut);
    }
    progress('flushing the image to disk');
    const out = openSync(tmpOut, 'r+');
    try {
      fsyncSync(out);
    } finally {
      closeSync(out);
    }
    renameSync(tmpOut, output);
    fsyncDir(dirname(output));
    return {
      output,
      format: format.name,
      bytes: layout.bytes,
      generations: generations.map((g) => ({ number: g.number, toplevel: g.spec.toplevel, entry: plan.entries.includes(g.number) })),
      defaultGeneration: plan.defaultGeneration,
      layout,
      rootFs: { uuid, label },
    };
  } finally {
    rmSync(tmpOut, { force: true });
    removeTree(work);
  }
}
