/**
 * The root file system of a cairn machine, staged as a folder and made into an ext4 image.
 *
 *   /cairn/store/<…>                         the toplevel's closure
 *   /cairn/var/profiles/system-1-link        → the toplevel; `system` → system-1-link
 *   /usr                                     → <toplevel>/sw/usr (stage 1 repoints it at each boot)
 *   /bin /sbin /lib /lib64                   → usr/… (merged /usr)
 *   /etc /var /run /tmp /proc /sys /dev /root  empty: activation fills /etc and /var at boot
 *
 * This is the minimal stager the boot test needs; disk images (partitions, ESP, boot entries)
 * grow from it.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { LOGICAL_STORE } from '../paths.js';
import type { Store } from '../store/index.js';

export interface StageRootOptions {
  /** Logical store path of the system's toplevel. */
  toplevel: string;
  /** Empty (or absent) folder to fill. */
  dir: string;
  /** Generation number of the profile link (default 1). */
  generation?: number;
}

/**
 * Copies a store path tree into the staging folder: as hard links when both are on one file
 * system (the store is immutable, so sharing inodes is safe and a 400 MB kernel costs nothing),
 * else as a copy. Modes, links and timestamps are kept.
 */
async function copyStorePath(src: string, dest: string): Promise<void> {
  const linked = await execa('cp', ['-a', '-l', src, dest], { reject: false });
  if (linked.exitCode === 0) return;
  rmSync(dest, { recursive: true, force: true });
  await execa('cp', ['-a', src, dest]);
}

/** Fills `dir` with the root tree of `toplevel` (see the file comment). */
export async function stageRootTree(store: Store, opts: StageRootOptions): Promise<void> {
  const { dir } = opts;
  const toplevel = store.parse(opts.toplevel).logical;
  const gen = opts.generation ?? 1;
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new CairnError(`${dir} is not empty`);
  const storeDir = join(dir, LOGICAL_STORE.slice(1));
  mkdirSync(storeDir, { recursive: true });
  for (const p of store.closure([toplevel])) {
    const base = store.parse(p).base;
    await copyStorePath(store.toPhysical(p), join(storeDir, base));
  }
  const profiles = join(dir, 'cairn', 'var', 'profiles');
  mkdirSync(profiles, { recursive: true });
  symlinkSync(toplevel, join(profiles, `system-${gen}-link`));
  symlinkSync(`system-${gen}-link`, join(profiles, 'system'));
  symlinkSync(`${toplevel}/sw/usr`, join(dir, 'usr'));
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${d}`, join(dir, d));
  for (const d of ['etc', 'var', 'run', 'proc', 'sys', 'dev', 'home']) mkdirSync(join(dir, d), { mode: 0o755 });
  mkdirSync(join(dir, 'root'));
  chmodSync(join(dir, 'root'), 0o700);
  mkdirSync(join(dir, 'tmp'));
  chmodSync(join(dir, 'tmp'), 0o1777);
  // The store holds no writable folders; the stager's parent folders may have got the umask's modes.
  chmodSync(join(dir, 'cairn'), 0o755);
  chmodSync(dir, 0o755);
}

/** Apparent size of a tree in bytes (du's view, counting hard-linked files once). */
async function treeBytes(dir: string): Promise<number> {
  const r = await execa('du', ['-s', '-B1', dir]);
  return Number(String(r.stdout).split(/\s/)[0]);
}

export interface Ext4ImageOptions {
  /** The staged root folder. */
  dir: string;
  /** Image file to create (overwritten). */
  image: string;
  label?: string;
  /** Size in bytes; default: the tree plus a third plus 256 MiB, rounded to MiB. */
  sizeBytes?: number;
}

/**
 * `mkfs.ext4 -d`: an ext4 image holding the tree, without mounting anything. Ownership comes from
 * the files (so stage as root; the root inode is forced to root). Not reproducible yet: mke2fs
 * copies atimes and draws a UUID and hash seed; the image issue pins those.
 */
export async function makeExt4Image(opts: Ext4ImageOptions): Promise<void> {
  const size = opts.sizeBytes ?? Math.ceil(((await treeBytes(opts.dir)) * 4) / 3 / 2 ** 20 + 256) * 2 ** 20;
  if (!statSync(opts.dir).isDirectory()) throw new CairnError(`${opts.dir} is not a folder`);
  rmSync(opts.image, { force: true });
  const r = await execa('mkfs.ext4', ['-q', '-F', '-L', opts.label ?? 'root', '-E', 'root_owner=0:0', '-d', opts.dir, opts.image, `${Math.ceil(size / 1024)}k`], {
    reject: false,
    all: true,
  });
  if (r.exitCode !== 0) throw new CairnError(`mkfs.ext4 failed (exit ${r.exitCode}): ${r.all}`);
}
