/**
 * Installing into a mounted root (`cairn boot CONFIG --root DIR`, as nixos-install does): a disk
 * being set up, or the disk of a machine that does not boot, mounted here with its ESP under it.
 * The closure goes into DIR's store as a deploy's does (scripts/remote/receive.sh, under DIR),
 * the root gets what stage 1 expects (rootSkeleton), DIR's system profile a new generation (links
 * name /cairn/store paths, as the machine sees them), and the generation's own install-bootloader
 * writes the boot entries, chrooted into DIR: it is the machine's program, run on the machine's
 * files. Nothing runs that would activate the system: it starts at the next boot from DIR.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { execa } from 'execa';
import { CairnError, UsageError } from '../errors.js';
import { SYSTEM_PROFILE } from '../paths.js';
import { Store } from '../store/index.js';
import { readBootspec } from '../toplevel/index.js';
import { rootSkeleton } from '../image/rootfs.js';
import { addGeneration, listGenerations, setCurrentGeneration } from '../generations/index.js';
import { copyClosure, type CopyOptions } from './copy.js';
import { localRunner } from './ssh.js';
import { installGrubBios, readGpt, BIOS_BOOT_TYPE } from '../image/bios.js';

/**
 * The disks GRUB goes on (`boot.loader.grub.devices`, as this machine names them, as for
 * nixos-install) and the number of the partition mounted at `bootDir` (grub.cfg, kernels): the
 * core image reads it from the disk the BIOS booted, so it must be on each of them (or, on a
 * mirror, at the same number). Checked: each is a GPT disk with a BIOS boot partition.
 */
async function grubTargets(devices: string[], bootDir: string): Promise<{ device: string; partition: number }[]> {
  if (devices.length === 0) return [];
  const src = await execa('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', bootDir], { reject: false });
  const source = String(src.stdout).trim();
  const m = /^\/dev\/(.+)$/.exec(source);
  const partFile = m ? `/sys/class/block/${m[1]}/partition` : '';
  if (!m || !existsSync(partFile)) throw new CairnError(`${bootDir} is not a partition of a disk (mounted from ${source || 'nothing'}): GRUB reads grub.cfg from a partition of the disk it boots from`);
  const partition = Number(readFileSync(partFile, 'utf8').trim());
  const disk = basename(dirname(realpathSync(`/sys/class/block/${m[1]}`)));
  const out: { device: string; partition: number }[] = [];
  for (const device of devices) {
    if (!existsSync(device)) throw new CairnError(`boot.loader.grub.devices: ${device} does not exist on this machine`);
    const parts = await readGpt(device);
    if (!parts.some((p) => p.type.toUpperCase() === BIOS_BOOT_TYPE)) throw new CairnError(`boot.loader.grub.devices: ${device} has no BIOS boot partition (GPT type ${BIOS_BOOT_TYPE}) for GRUB's core image`);
    if (basename(realpathSync(device)) !== disk && devices.length === 1) {
      throw new CairnError(`boot.loader.grub.devices: ${device} is not the disk of ${bootDir} (${source}): GRUB would not find grub.cfg on it`);
    }
    out.push({ device, partition });
  }
  return out;
}

/** Checks that `root` can be installed into by this process; returns it absolute. */
export function checkRoot(root: string): string {
  const dir = resolve(root);
  if (dir === '/') throw new UsageError('--root /: that is this machine; `cairn boot CONFIG` (without --root) on a cairn system');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--root ${root}: not a folder (mount the machine's root file system there)`);
  if (process.getuid?.() !== 0) throw new CairnError(`--root ${root}: installing needs root (the store's files are root's, and the boot loader is installed in a chroot)`);
  return dir;
}

/**
 * Runs a program of the system installed under `root` in a chroot there, in a private mount
 * namespace holding /proc, /dev and /sys, and fresh /run and /tmp: nothing is left mounted, and
 * nothing written to /run or /tmp lands on the disk. The root's other mounts (its ESP) are seen.
 */
export async function runInRoot(root: string, argv: string[], io: { stdout?: Writable; stderr?: Writable } = {}): Promise<{ exitCode: number; stderr: string }> {
  const script = [
    'set -e',
    'r="$1"; shift',
    'mount -t proc proc "$r/proc"',
    'mount --rbind /dev "$r/dev"',
    'mount --rbind /sys "$r/sys"',
    'mount -t tmpfs -o mode=0755 tmpfs "$r/run"',
    'mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"',
    'exec chroot "$r" /usr/bin/env -i PATH=/usr/bin:/usr/sbin HOME=/root "$@"',
  ].join('\n');
  const r = await execa('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', root, ...argv], {
    stdin: 'ignore',
    stdout: io.stdout ? ['pipe', io.stdout] : 'pipe',
    stderr: io.stderr ? ['pipe', io.stderr] : 'pipe',
    reject: false,
  });
  return { exitCode: r.exitCode ?? 1, stderr: String(r.stderr ?? '') };
}

/** The store and system profile of the root mounted at `root`, for `cairn generations --root`. */
export function rootSystem(root: string): { dir: string; store: Store; profile: string } {
  const dir = checkRoot(root);
  if (!existsSync(join(dir, 'cairn', 'store'))) throw new CairnError(`--root ${root}: there is no cairn system there (no cairn/store)`);
  return { dir, store: Store.open(join(dir, 'cairn')), profile: join(dir, SYSTEM_PROFILE) };
}

export interface InstallOptions extends CopyOptions {
  /** Where install-bootloader's output goes as it comes. */
  stdout?: Writable;
  stderr?: Writable;
}

export interface InstallResult {
  /** The generation of DIR's system profile that is now its boot default. */
  generation: number;
  /** Store paths copied into DIR's store, and their size. */
  copied: number;
  bytes: number;
}

/** Makes `toplevel` (valid in `store`) the boot default of the root mounted at `root` (see the file comment). */
export async function installToRoot(store: Store, toplevel: string, root: string, opts: InstallOptions = {}): Promise<InstallResult> {
  const dir = checkRoot(root);
  const loader = readBootspec(store, toplevel).loader;
  const esp = loader?.esp;
  // Checked before a gigabyte is copied: install-bootloader would refuse at the end.
  if (esp) {
    const at = join(dir, esp);
    const mounted = existsSync(at) && (await execa('mountpoint', ['-q', at], { reject: false })).exitCode === 0;
    if (!mounted) throw new CairnError(`${at} is not mounted: mount the machine's EFI system partition there (boot.loader.efi.efiSysMountPoint is ${esp})`);
  }
  // GRUB's disks and the partition its grub.cfg is on, checked before anything is copied too.
  const grubDisks = loader?.grub && esp ? await grubTargets(loader.grub.devices, join(dir, esp)) : [];
  for (const d of ['cairn/store', 'cairn/var/db/info', 'cairn/var/profiles']) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  const copied = await copyClosure(store, localRunner(dir), [toplevel], opts);
  rootSkeleton(dir, toplevel, esp ? [esp] : []);

  const profile = join(dir, SYSTEM_PROFILE);
  const had = listGenerations(store, profile);
  const before = had.find((g) => g.current)?.number;
  const generation = addGeneration(store, profile, toplevel, { logical: true });
  const created = !had.some((g) => g.number === generation);
  const r = await runInRoot(dir, [`${toplevel}/bin/install-bootloader`], { stdout: opts.stdout, stderr: opts.stderr });
  if (r.exitCode !== 0) {
    // The boot entries are what make a generation the boot default: without them, none was made.
    if (before === undefined) rmSync(profile, { force: true });
    else setCurrentGeneration(store, profile, before);
    if (created) rmSync(`${profile}-${generation}-link`, { force: true });
    const said = r.stderr.trim().split('\n').filter((l) => l !== '').pop();
    throw new CairnError(`the boot entries of ${dir} could not be written${said ? `: ${said}` : ` (install-bootloader exited ${r.exitCode})`}`);
  }
  // grub.cfg is in place: now the boot sector and core image that read it.
  for (const t of grubDisks) {
    await installGrubBios(t.device, { espPartition: t.partition });
    opts.stdout?.write(`GRUB installed on ${t.device} (grub.cfg on its partition ${t.partition})\n`);
  }
  return { generation, copied: copied.copied.length, bytes: copied.bytes };
}
