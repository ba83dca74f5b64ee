/**
 * GRUB's boot sector and core image on a GPT disk, as grub-bios-setup would leave them: the boot
 * sector names the core's first sector and keeps the protective MBR, the core's block list loads
 * the rest of it from the BIOS boot partition, and a disk without such a partition is refused.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { patchBootSector, patchCoreImage, installGrubBios, GRUB_I386_PC, BIOS_BOOT_TYPE } from '../../src/image/bios.js';

describe('patchBootSector', () => {
  it("writes the core image's LBA, the boot drive and the hard-disk workaround, keeping the partition table and BPB of the disk", () => {
    const boot = Buffer.alloc(512, 0xcc);
    boot.writeUInt16LE(0xaa55, 510);
    const mbr = Buffer.alloc(512, 0);
    mbr.fill(0x11, 0x03, 0x5a); // a BPB
    mbr.fill(0xee, 0x1be, 0x1ce); // a protective partition entry
    mbr.writeUInt32LE(0xdeadbeef, 0x1b8); // disk signature
    const out = patchBootSector(boot, mbr, 2048n);
    expect(out.readBigUInt64LE(0x5c)).toBe(2048n);
    expect(out[0x64]).toBe(0xff);
    expect([out[0x66], out[0x67]]).toEqual([0x90, 0x90]);
    expect(out.subarray(0x03, 0x5a).every((b) => b === 0x11)).toBe(true);
    expect(out.readUInt32LE(0x1b8)).toBe(0xdeadbeef);
    expect(out.subarray(0x1be, 0x1ce).every((b) => b === 0xee)).toBe(true);
    expect(out.readUInt16LE(510)).toBe(0xaa55); // boot.img's own signature
    expect(out[0]).toBe(0xcc); // its code
    expect(boot.readBigUInt64LE(0x5c)).not.toBe(2048n); // the input is left alone
  });

  it('refuses a boot image that is not one sector', () => {
    expect(() => patchBootSector(Buffer.alloc(400), Buffer.alloc(512), 1n)).toThrow(/not 512/);
  });
});

describe('patchCoreImage', () => {
  it('pads the core to whole sectors and lists the sectors after the first for diskboot.img, ended by a zero entry', () => {
    const core = Buffer.alloc(512 * 3 + 100, 0x41);
    // diskboot.img's default list entry, to be replaced.
    core.writeBigUInt64LE(2n, 500);
    core.writeUInt16LE(7, 508);
    core.writeUInt16LE(0x820, 510);
    const out = patchCoreImage(core, 34n);
    expect(out.length).toBe(512 * 4);
    expect(out.readBigUInt64LE(500)).toBe(35n);
    expect(out.readUInt16LE(508)).toBe(3);
    expect(out.readUInt16LE(510)).toBe(0x820);
    expect(out.subarray(488, 500).every((b) => b === 0)).toBe(true);
    expect(out.subarray(512 * 3 + 100).every((b) => b === 0)).toBe(true);
    expect(out.subarray(512, 512 * 3 + 100).equals(core.subarray(512))).toBe(true);
  });
});

const haveGrub = existsSync(join(GRUB_I386_PC, 'boot.img'));

describe.skipIf(!haveGrub)('installGrubBios', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-bios-test-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const disk = async (name: string, table: string): Promise<string> => {
    const f = join(dir, name);
    closeSync(openSync(f, 'w'));
    truncateSync(f, 16 * 2 ** 20);
    await execa('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', f], { input: table });
    return f;
  };
  const read = (f: string, offset: number, length: number): Buffer => {
    const fd = openSync(f, 'r');
    try {
      const b = Buffer.alloc(length);
      readSync(fd, b, 0, length, offset);
      return b;
    } finally {
      closeSync(fd);
    }
  };

  it('puts the core image into the BIOS boot partition and a boot sector that loads it, keeping the protective MBR', async () => {
    const f = await disk('gpt.img', `label: gpt\nstart=2048, size=2048, type=${BIOS_BOOT_TYPE}\nstart=4096, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n`);
    const mbrBefore = read(f, 0, 512);
    const r = await installGrubBios(f, { espPartition: 2 });
    expect(r.coreLba).toBe(2048);
    const mbr = read(f, 0, 512);
    expect(mbr.readBigUInt64LE(0x5c)).toBe(2048n);
    expect(mbr.subarray(0x1b8, 0x200).equals(mbrBefore.subarray(0x1b8, 0x200))).toBe(true);
    expect(mbr[0x1be + 4]).toBe(0xee); // still a protective MBR
    expect(mbr.subarray(0, 0x03).equals(readFileSync(join(GRUB_I386_PC, 'boot.img')).subarray(0, 0x03))).toBe(true);
    const first = read(f, 2048 * 512, 512);
    expect(first.readBigUInt64LE(500)).toBe(2049n);
    expect(first.readUInt16LE(508)).toBe(r.coreSectors - 1);
    // The GPT itself is untouched.
    const { stdout } = await execa('sfdisk', ['--verify', f]);
    expect(stdout).toContain('No errors detected');
  });

  it('refuses a disk without a BIOS boot partition, and one with an MBR table', async () => {
    const f = await disk('nobios.img', 'label: gpt\nstart=2048, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n');
    await expect(installGrubBios(f, { espPartition: 1 })).rejects.toThrow(/has no BIOS boot partition \(GPT type 21686148-6449-6E6F-744E-656564454649\)/);
    expect(read(f, 0x5c, 8).readBigUInt64LE(0)).toBe(0n); // nothing written
    const m = await disk('mbr.img', 'label: dos\nstart=2048, size=8192, type=83\n');
    await expect(installGrubBios(m, { espPartition: 1 })).rejects.toThrow(/has a dos partition table/);
  });
});
