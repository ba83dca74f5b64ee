/**
 * The kernel as QEMU boots it directly: the uncompressed ELF inside a bzImage, entered through its
 * PVH note (Debian's x86 kernels have CONFIG_PVH). QEMU then skips the firmware's real-mode
 * kernel setup (EDD probing) and the kernel skips decompressing itself: both are emulated, about
 * two seconds of every TCG boot. A store path of its own, built on the host when a VM starts and
 * never part of a system's closure (it is several times the bzImage's size).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { registerBuilder, type Derivation, type Store } from '../store/index.js';

/** Compressors of a bzImage payload, by magic; all but gzip are followed by the 4-byte uncompressed size kbuild appends. */
const COMPRESSORS: { magic: number[]; program: string[]; sized: boolean }[] = [
  { magic: [0x1f, 0x8b], program: ['gzip', '-dc'], sized: false },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], program: ['zstd', '-dcq'], sized: true },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], program: ['xz', '-dc'], sized: true },
  { magic: [0x5d, 0x00, 0x00], program: ['xz', '--format=lzma', '-dc'], sized: true },
  { magic: [0x42, 0x5a, 0x68], program: ['bzip2', '-dc'], sized: true },
  { magic: [0x02, 0x21, 0x4c, 0x18], program: ['lz4', '-dc'], sized: true },
];

/** The compressed kernel of a bzImage (boot protocol 2.08 and later: the setup header says where it is). */
export function bzImagePayload(image: Buffer): { data: Buffer; program: string[] } {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS' || image.readUInt16LE(0x206) < 0x208) {
    throw new CairnError('not a bzImage of boot protocol 2.08 or later');
  }
  const setupSectors = image[0x1f1] || 4;
  const start = (setupSectors + 1) * 512 + image.readUInt32LE(0x248);
  const data = image.subarray(start, start + image.readUInt32LE(0x24c));
  const c = COMPRESSORS.find((x) => x.magic.every((b, i) => data[i] === b));
  if (!c) throw new CairnError('the bzImage payload has no compression format this build knows');
  return { data: c.sized ? data.subarray(0, data.length - 4) : data, program: c.program };
}

/** Whether an ELF64 file has the Xen note PHYS32_ENTRY (type 18): the PVH entry QEMU boots. */
export function hasPvhEntry(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  for (let i = 0; i < elf.readUInt16LE(0x38); i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 4) continue; // PT_NOTE
    const end = Number(elf.readBigUInt64LE(ph + 8)) + Number(elf.readBigUInt64LE(ph + 0x20));
    for (let n = Number(elf.readBigUInt64LE(ph + 8)); n + 12 <= end; ) {
      const [namesz, descsz, type] = [elf.readUInt32LE(n), elf.readUInt32LE(n + 4), elf.readUInt32LE(n + 8)];
      if (type === 18 && elf.toString('latin1', n + 12, n + 12 + namesz).replace(/\0+$/, '') === 'Xen') return true;
      n += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

interface KernelElfArgs {
  /** Logical store path of the bzImage. */
  image: string;
}

/** The PVH-bootable ELF inside a bzImage, or undefined when the kernel has no PVH entry. */
export async function pvhKernel(bzImage: Buffer): Promise<Buffer | undefined> {
  const { data, program } = bzImagePayload(bzImage);
  const r = await execa(program[0]!, program.slice(1), { input: data, encoding: 'buffer', stripFinalNewline: false, maxBuffer: 1 << 30 });
  const elf = Buffer.from(r.stdout);
  return hasPvhEntry(elf) ? elf : undefined;
}

registerBuilder('cairn:kernel-elf', async (ctx) => {
  const { image } = ctx.drv.args as KernelElfArgs;
  const elf = await pvhKernel(readFileSync(ctx.store.realFile(image)));
  mkdirSync(ctx.out);
  // A kernel without the PVH entry is booted as the bzImage it is: the output says so.
  if (elf) writeFileSync(join(ctx.out, 'vmlinux'), elf, { mode: 0o444 });
  else writeFileSync(join(ctx.out, 'no-pvh-entry'), '');
});

/** The file QEMU's `-kernel` boots fastest for the bzImage at logical path `image`: its PVH ELF, or the bzImage itself. */
export async function directBootKernel(store: Store, image: string): Promise<string> {
  const name = basename(image).replace(/^vmlinuz/, 'vmlinux');
  const drv: Derivation = { name, builder: 'cairn:kernel-elf', args: { image } satisfies KernelElfArgs, inputs: [store.parse(image).logical] };
  const out = store.toPhysical(await store.build(drv));
  return existsSync(join(out, 'vmlinux')) ? join(out, 'vmlinux') : store.realFile(image);
}
