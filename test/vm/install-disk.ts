/**
 * A new machine's disk for the install tests: a GPT image (an ESP and an ext4 root), its root on a
 * loop device mounted at `root`, with `root/boot` a tmpfs while cairn writes (this machine's kernel
 * has no FAT driver); `toFat` then puts the boot files into the FAT partition with mtools and lets
 * go of the root, and `boot` starts the disk under OVMF.
 */
import { execa } from 'execa';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { layoutDisk, writePartitionTable, MIB } from '../../src/image/disk.js';
import { OVMF_VARS, qemuArgs, RunningMachine } from '../../src/vm/index.js';
import { GUEST_CPUS } from './qemu-slots.js';

export class InstallDisk {
  private loop: string | undefined;

  private constructor(
    private readonly work: string,
    readonly disk: string,
    private readonly layout: ReturnType<typeof layoutDisk>,
    readonly root: string,
  ) {}

  /** Makes and mounts the disk in `work`; `label` names the root file system (none: only its UUID finds it). */
  static async make(work: string, name: string, label?: string): Promise<InstallDisk> {
    const layout = layoutDisk(name, [
      { name: 'esp', role: 'esp', bytes: 256 * MIB },
      { name: 'root', role: 'root', bytes: 3072 * MIB },
    ]);
    const d = new InstallDisk(work, join(work, 'disk.img'), layout, join(work, 'mnt'));
    await execa('truncate', ['-s', String(layout.bytes), d.disk]);
    await writePartitionTable(d.disk, layout);
    const part = layout.partitions[1]!;
    d.loop = (await execa('losetup', ['--find', '--show', '--offset', String(part.offset), '--sizelimit', String(part.bytes), d.disk])).stdout.trim();
    await execa('mkfs.ext4', ['-q', ...(label ? ['-L', label] : []), d.loop]);
    mkdirSync(d.root);
    await execa('mount', [d.loop, d.root]);
    mkdirSync(join(d.root, 'boot'));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'esp', join(d.root, 'boot')]);
    return d;
  }

  /** The root file system's UUID. */
  async rootUuid(): Promise<string> {
    return (await execa('blkid', ['-c', '/dev/null', '-s', 'UUID', '-o', 'value', this.loop!])).stdout.trim();
  }

  /** The boot files into the FAT partition (made with `mkfsArgs`, e.g. a label), then the root unmounted and released. */
  async toFat(mkfsArgs: string[]): Promise<void> {
    const espFiles = join(this.work, 'esp');
    mkdirSync(espFiles);
    await execa('cp', ['-a', `${this.root}/boot/.`, espFiles]);
    await this.release();
    const esp = this.layout.partitions[0]!;
    await execa('mkfs.vfat', ['-F', '16', ...mkfsArgs, '--offset', String(esp.offset / 512), this.disk, String(esp.bytes / 1024)]);
    await execa('mcopy', ['-s', '-p', '-Q', '-i', `${this.disk}@@${esp.offset}`, ...readdirSync(espFiles).map((f) => join(espFiles, f)), '::'], { env: { MTOOLS_SKIP_CHECK: '1' } });
  }

  /** Starts the disk under OVMF (TCG, no network). */
  boot(): RunningMachine {
    const vars = join(this.work, 'vars.fd');
    copyFileSync(OVMF_VARS, vars);
    return RunningMachine.start(qemuArgs({ accel: 'tcg', memoryMiB: 1024, cpus: GUEST_CPUS, uefiVars: vars, drives: [{ file: this.disk, format: 'raw' }], network: null }));
  }

  /** Unmounts the root and its ESP and frees the loop device (again is harmless). */
  async release(): Promise<void> {
    await execa('umount', ['-R', this.root], { reject: false });
    if (this.loop) await execa('losetup', ['-d', this.loop], { reject: false });
    this.loop = undefined;
  }
}
