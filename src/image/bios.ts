/**
 * GRUB for BIOS on a GPT disk, without root, loop devices or grub-install: the core image made by
 * `grub-mkimage -O i386-pc` goes into the BIOS boot partition, GRUB's boot.img into the first
 * sector with the core image's address patched in, as grub-bios-setup does when it embeds:
 *
 *   boot.img  0x5c  u64  LBA of the core image's first sector (diskboot.img)
 *             0x64  u8   boot drive, 0xff: the one the BIOS booted from
 *             0x66  2    a jump over a workaround for BIOSes that pass a wrong drive; hard disks
 *                        take the workaround (two NOPs)
 *             0x03..0x5a, 0x1b8..0x1fe  kept from the sector there (BPB, protective MBR)
 *   core.img  the last 12 bytes of its first sector: the block list diskboot.img loads the rest
 *             by, { u64 start LBA, u16 sectors, u16 segment }, growing downwards, ended by a zero
 *             entry; the rest of the core follows at segment 0x820 (0x800 + one sector).
 *
 * The core image's prefix is `(,gptN)/grub`: partition N of the disk the BIOS booted from, the
 * FAT partition with grub.cfg and the kernels, so GRUB needs no search.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, writeSync, fsyncSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';

/** GPT type of the BIOS boot partition. */
export const BIOS_BOOT_TYPE = '21686148-6449-6E6F-744E-656564454649';
/** Debian's grub-pc-bin: GRUB's i386-pc modules and images. */
export const GRUB_I386_PC = '/usr/lib/grub/i386-pc';

/** Modules built into the core image: enough to read the boot partition and run grub.cfg without loading more. */
export const GRUB_CORE_MODULES = [
  'biosdisk', 'part_gpt', 'part_msdos', 'fat', 'ext2', 'normal', 'boot', 'linux', 'configfile', 'search', 'search_fs_uuid',
  'search_label', 'test', 'echo', 'loadenv', 'serial', 'terminal', 'sleep', 'reboot', 'halt', 'true',
];

const SECTOR = 512;
const KERNEL_SECTOR = 0x5c;
const BOOT_DRIVE = 0x64;
const DRIVE_CHECK = 0x66;
const BPB = [0x03, 0x5a] as const;
const PART_TABLE = [0x1b8, 0x1fe] as const;
const BLOCKLIST_ENTRY = 12;
/** Where diskboot.img loads the core after its first sector: GRUB's kernel segment 0x800 plus one sector. */
const CORE_SEGMENT = 0x800 + (SECTOR >> 4);

/** boot.img for a disk whose first sector is `sector0`, loading the core image at LBA `coreLba`. */
export function patchBootSector(bootImg: Buffer, sector0: Buffer, coreLba: bigint): Buffer {
  if (bootImg.length !== SECTOR) throw new CairnError(`GRUB's boot.img is ${bootImg.length} bytes, not ${SECTOR}`);
  const out = Buffer.from(bootImg);
  sector0.copy(out, BPB[0], BPB[0], BPB[1]);
  sector0.copy(out, PART_TABLE[0], PART_TABLE[0], PART_TABLE[1]);
  out.writeBigUInt64LE(coreLba, KERNEL_SECTOR);
  out[BOOT_DRIVE] = 0xff;
  out[DRIVE_CHECK] = 0x90;
  out[DRIVE_CHECK + 1] = 0x90;
  return out;
}

/**
 * The core image padded to whole sectors with its block list naming the sectors after its first:
 * it will be written from LBA `firstLba` on, contiguously.
 */
export function patchCoreImage(core: Buffer, firstLba: bigint): Buffer {
  const sectors = Math.ceil(core.length / SECTOR);
  if (sectors < 2) throw new CairnError('the GRUB core image is too small');
  if (sectors - 1 > 0xffff) throw new CairnError('the GRUB core image is too large');
  const out = Buffer.alloc(sectors * SECTOR);
  core.copy(out);
  const first = SECTOR - BLOCKLIST_ENTRY;
  // Earlier lists (diskboot.img's defaults) cleared back to their terminator.
  for (let at = first; at > 0 && out.readUInt16LE(at + 8) !== 0; at -= BLOCKLIST_ENTRY) out.fill(0, at, at + BLOCKLIST_ENTRY);
  out.writeBigUInt64LE(firstLba + 1n, first);
  out.writeUInt16LE(sectors - 1, first + 8);
  out.writeUInt16LE(CORE_SEGMENT, first + 10);
  out.fill(0, first - BLOCKLIST_ENTRY, first); // the terminator
  return out;
}

/** `grub-mkimage -O i386-pc` with the prefix `(,gptN)/grub`. */
export async function makeCoreImage(modulesDir: string, espPartition: number): Promise<Buffer> {
  if (!existsSync(join(modulesDir, 'boot.img'))) {
    throw new CairnError(`${modulesDir} holds no GRUB i386-pc images: install Debian's grub-pc-bin on this machine (cairn doctor)`);
  }
  const dir = mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'cairn-grub-'));
  try {
    const out = join(dir, 'core.img');
    const r = await execa('grub-mkimage', ['-O', 'i386-pc', '-d', modulesDir, '-o', out, '-p', `(,gpt${espPartition})/grub`, ...GRUB_CORE_MODULES], { reject: false, all: true });
    if (r.exitCode !== 0) throw new CairnError(`grub-mkimage failed (exit ${r.exitCode}): ${r.all}`);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
}

/** The GPT partitions of a disk or disk image, by sfdisk. */
export async function readGpt(disk: string): Promise<SfdiskPartition[]> {
  const r = await execa('sfdisk', ['--json', disk], { reject: false, all: true });
  if (r.exitCode !== 0) throw new CairnError(`sfdisk cannot read the partition table of ${disk}: ${r.all}`);
  const table = (JSON.parse(String(r.stdout)) as { partitiontable: { label: string; sectorsize?: number; partitions?: SfdiskPartition[] } }).partitiontable;
  if (table.label !== 'gpt') throw new CairnError(`${disk} has a ${table.label} partition table: GRUB is installed onto GPT disks with a BIOS boot partition`);
  if ((table.sectorsize ?? SECTOR) !== SECTOR) throw new CairnError(`${disk} has ${table.sectorsize}-byte sectors: BIOS boot needs 512`);
  return table.partitions ?? [];
}

/** GRUB's i386-pc modules and lists (`*.mod`, `*.lst`) for `$prefix/i386-pc/`, so grub.cfg may use any command. */
export function grubModuleFiles(modulesDir: string = GRUB_I386_PC): { name: string; source: string }[] {
  return readdirSync(modulesDir)
    .filter((f) => f.endsWith('.mod') || f.endsWith('.lst'))
    .sort()
    .map((f) => ({ name: f, source: join(modulesDir, f) }));
}

/**
 * Installs GRUB's boot sector and core image onto `disk` (a device or an image file): the core
 * into its BIOS boot partition, grub.cfg to be found on partition `espPartition` (1-based).
 */
export async function installGrubBios(disk: string, opts: { espPartition: number; modulesDir?: string }): Promise<{ coreLba: number; coreSectors: number }> {
  const modulesDir = opts.modulesDir ?? GRUB_I386_PC;
  const parts = await readGpt(disk);
  const bios = parts.filter((p) => p.type.toUpperCase() === BIOS_BOOT_TYPE);
  if (bios.length !== 1) throw new CairnError(`${disk} has ${bios.length === 0 ? 'no' : 'more than one'} BIOS boot partition (GPT type ${BIOS_BOOT_TYPE}): GRUB's core image needs exactly one`);
  const part = bios[0]!;
  const core = patchCoreImage(await makeCoreImage(modulesDir, opts.espPartition), BigInt(part.start));
  if (core.length > part.size * SECTOR) throw new CairnError(`GRUB's core image (${core.length} bytes) does not fit the BIOS boot partition of ${disk} (${part.size * SECTOR} bytes)`);
  const fd = openSync(disk, 'r+');
  try {
    const sector0 = Buffer.alloc(SECTOR);
    if (readSync(fd, sector0, 0, SECTOR, 0) !== SECTOR) throw new CairnError(`cannot read the first sector of ${disk}`);
    const boot = patchBootSector(readFileSync(join(modulesDir, 'boot.img')), sector0, BigInt(part.start));
    // The core first: the boot sector that loads it is written last.
    writeSync(fd, core, 0, core.length, part.start * SECTOR);
    fsyncSync(fd);
    writeSync(fd, boot, 0, SECTOR, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { coreLba: part.start, coreSectors: core.length / SECTOR };
}
