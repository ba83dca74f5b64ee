/**
 * A root where a generation's `bin/install-bootloader` runs as on the machine: chrooted in the
 * system's /usr with the store at /cairn, in a private user, mount and pid namespace (no root
 * needed); the boot partition is the folder `esp` bind-mounted onto itself (a mount point, so the
 * script accepts it) or a small tmpfs; the profile is `/prof/system`.
 */
import { chmodSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { execa } from 'execa';
import type { BuiltSystem } from '../../src/build/index.js';
import { TEST_STORE_HOME } from '../modules/store-programs.js';

export const canChroot = spawnSync('unshare', ['-r', '-m', '-p', '-f', 'chroot', '/', 'true'], { stdio: 'ignore' }).status === 0;

/** Makes the root's folders, /usr from `system` and the merged-/usr links. */
export function makeRoot(root: string, system: BuiltSystem): void {
  for (const d of ['cairn', 'tmp', 'esp', 'prof', 'proc', 'dev']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  symlinkSync(`${system.sw}/usr`, join(root, 'usr'));
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${d}`, join(root, d));
}

/** Generation numbers of the test profile `/prof/system` (inside the root) and its current one. */
export function setProfile(root: string, gens: Record<number, BuiltSystem>, current: number): void {
  const prof = join(root, 'prof');
  rmSync(prof, { recursive: true, force: true });
  mkdirSync(prof);
  for (const [n, s] of Object.entries(gens)) symlinkSync(s.toplevel, join(prof, `system-${n}-link`));
  symlinkSync(`system-${current}-link`, join(prof, 'system'));
}

/**
 * Runs `system`'s install-bootloader with `args`, the boot partition at /esp: `bind` (the folder
 * root/esp) or `tmpfs:SIZE`. Its stdout ends with the partition's files, one a line.
 */
export function installBootloader(root: string, system: BuiltSystem, opts: { esp?: string; args?: string[] } = {}) {
  const esp = opts.esp ?? 'bind';
  const mountEsp = esp === 'bind' ? 'mount --bind "$1/esp" "$1/esp"' : `mount -t tmpfs -o size=${esp.slice('tmpfs:'.length)} tmpfs "$1/esp"`;
  const script = `mount --rbind "$0" "$1/cairn" && mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && ${mountEsp} && r="$1" s="$2" && shift 2 && chroot "$r" /usr/bin/env -i PATH=/usr/bin:/usr/sbin CAIRN_ESP=/esp CAIRN_PROFILE=/prof/system "$s" "$@"; rc=$?; find "$r/esp" -type f | sort; exit $rc`;
  // A pid namespace too, for a /proc of its own (mountpoint reads it).
  return execa('unshare', ['-r', '-m', '-p', '-f', 'sh', '-c', script, TEST_STORE_HOME, root, `${system.toplevel}/bin/install-bootloader`, ...(opts.args ?? [])], { reject: false });
}
