/**
 * GPT disk images in plain files: the partition table by sfdisk, the file systems written at
 * their partitions' offsets (mkfs.vfat --offset, mkfs.ext4 -E offset), no loop device, no mount.
 * Identifiers (disk and partition GUIDs, file system UUID and volume id) are derived from a seed,
 * so the same inputs give the same bytes.
 */
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { CairnError } from '../errors.js';

/** Discoverable Partitions Specification type GUIDs. */
export const PARTITION_TYPES = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  root: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', // root, x86-64
  bios: '21686148-6449-6E6F-744E-656564454649', // BIOS boot partition (GRUB's core image)
} as const;

export const MIB = 2 ** 20;
/** Partitions start on MiB boundaries; the first after the primary GPT. */
export const FIRST_PARTITION_OFFSET = MIB;
/** Room left at the end for the backup GPT (33 sectors), kept at a MiB for alignment. */
export const TAIL_BYTES = MIB;

/** A version-4-shaped UUID derived from `seed` and `purpose` (same inputs, same UUID). */
export function derivedUuid(seed: string, purpose: string): string {
  const b = createHash('sha256').update(`cairn-image:${seed}:${purpose}`).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A FAT volume id (8 hex digits) derived from `seed`. */
export function derivedVolumeId(seed: string): string {
  return createHash('sha256').update(`cairn-image:${seed}:esp-volume-id`).digest('hex').slice(0, 8);
}

export interface PartitionLayout {
  name: string;
  role: keyof typeof PARTITION_TYPES;
  offset: number;
  bytes: number;
  uuid: string;
}

export interface DiskLayout {
  bytes: number;
  diskGuid: string;
  partitions: PartitionLayout[];
}

/** Lays partitions out one after the other from 1 MiB; sizes must be whole MiB. */
export function layoutDisk(seed: string, parts: { name: string; role: keyof typeof PARTITION_TYPES; bytes: number }[]): DiskLayout {
  let offset = FIRST_PARTITION_OFFSET;
  const partitions = parts.map((p) => {
    if (p.bytes % MIB !== 0 || p.bytes <= 0) throw new CairnError(`partition ${p.name}: ${p.bytes} bytes is not a positive whole number of MiB`);
    const laid = { ...p, offset, uuid: derivedUuid(seed, `partition-${p.name}`) };
    offset += p.bytes;
    return laid;
  });
  return { bytes: offset + TAIL_BYTES, diskGuid: derivedUuid(seed, 'disk'), partitions };
}

/** The sfdisk script of a layout. */
export function sfdiskScript(layout: DiskLayout): string {
  const lines = ['label: gpt', `label-id: ${layout.diskGuid}`, 'unit: sectors', 'sector-size: 512', `first-lba: ${FIRST_PARTITION_OFFSET / 512}`, ''];
  for (const p of layout.partitions) {
    lines.push(`start=${p.offset / 512}, size=${p.bytes / 512}, type=${PARTITION_TYPES[p.role]}, uuid=${p.uuid}, name="${p.name}"`);
  }
  return lines.join('\n') + '\n';
}

/** Writes the partition table of `layout` into `image` (which already has the layout's size). */
export async function writePartitionTable(image: string, layout: DiskLayout): Promise<void> {
  const r = await execa('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', '--wipe', 'never', image], { input: sfdiskScript(layout), reject: false, all: true });
  if (r.exitCode !== 0) throw new CairnError(`sfdisk failed (exit ${r.exitCode}): ${r.all}`);
}

/** `qemu-img convert` of a raw image into qcow2. */
export async function convertToQcow2(raw: string, out: string): Promise<void> {
  const r = await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, out], { reject: false, all: true });
  if (r.exitCode !== 0) throw new CairnError(`qemu-img convert failed (exit ${r.exitCode}): ${r.all}`);
}
