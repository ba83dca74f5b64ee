/**
 * The disks of `cairn vm`: the store disk (the closure of a toplevel as an ext4 file system,
 * mounted read-only at /cairn/store; cached per toplevel) and the state disk (an empty ext4 root
 * made on first start, kept across runs, like NixOS's `<host>.qcow2`). With
 * `virtualisation.useBootLoader` instead: a disk image of the system (cached per toplevel) and a
 * qcow2 overlay of it as the state disk, plus the machine's UEFI variables.
 */
import { existsSync, mkdirSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, truncateSync, closeSync, openSync, utimesSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { hashPart, removeTree, type Store } from '../store/index.js';
import { derivedUuid, convertToQcow2, MIB } from '../image/disk.js';
import { copyStorePaths, ext4Bytes, makeExt4Image, storeSpecialModes, treeBytes, treeEntries } from '../image/rootfs.js';
import { buildImage, findFormat, imageEpoch } from '../image/index.js';
import { parseSize } from '../image/format.js';
import { VM_ROOT_LABEL, VM_STORE_LABEL } from './constants.js';
import { readBootspec } from '../toplevel/index.js';

/**
 * Cached disks of each kind kept: older ones are deleted (they are only a cache of the store, cheap
 * to make again; CAIRN_VM_DISKS_KEPT sets another number, e.g. a test suite whose boot cache names
 * its disks: one made again is another disk to it)…
 */
const keptDisks = (): number => {
  const n = Number(process.env.CAIRN_VM_DISKS_KEPT);
  return Number.isInteger(n) && n >= 1 ? n : 4;
};
/** …except those used in the last minutes: a test's other machines may be about to boot from them. */
const IN_USE_MS = 15 * 60_000;

/** Names a cached disk by its roots: the toplevel alone, or all of them. */
function rootsKey(store: Store, toplevel: string, alsoInStore: string[], kind: string): { roots: string[]; key: string } {
  const top = store.parse(toplevel);
  const roots = [top.logical, ...[...new Set(alsoInStore.map((p) => store.parse(p).logical))].sort()];
  return { roots, key: roots.length === 1 ? top.hash : hashPart(`cairn-vm-${kind}:${roots.join(' ')}`) };
}

/**
 * Those of `files` some process has open now: a running QEMU, or a test driver that holds the
 * disks of its machines between their starts (a power-cut test restarts a machine for many minutes).
 */
function openByAnyProcess(files: string[]): Set<string> {
  // (/proc names files by their real path.)
  const wanted = new Map<string, string>();
  for (const f of files) {
    try {
      wanted.set(realpathSync(f), f);
    } catch {
      // already gone
    }
  }
  const open = new Set<string>();
  if (wanted.size === 0) return open;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      try {
        const file = wanted.get(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (file) open.add(file);
      } catch {
        // closed meanwhile
      }
    }
  }
  return open;
}

/** Deletes the oldest cached disks of one kind but the newest few, those used lately and those open. */
export function evictDisks(dir: string, prefix: string, keep: string): void {
  const others = readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.img') && f !== keep)
    .map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  const old = others.slice(keptDisks() - 1).filter((o) => Date.now() - o.t > IN_USE_MS).map((o) => join(dir, o.f));
  const open = openByAnyProcess(old);
  for (const f of old) if (!open.has(f)) rmSync(f, { force: true });
}

/**
 * The disk image a VM with a boot loader starts from: generation 1 = `toplevel`, the closures of
 * `alsoInStore` in its store, `size` big (room for what switches add). Made once under
 * `$CAIRN_HOME/vm/`, then reused.
 */
export async function bootDiskImage(store: Store, toplevel: string, size: string, onProgress: (m: string) => void = () => {}, alsoInStore: string[] = []): Promise<string> {
  const { roots, key } = rootsKey(store, toplevel, alsoInStore, 'boot');
  const dir = join(store.home, 'vm');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `boot-${hashPart(`${key} ${size}`)}.img`);
  if (existsSync(file)) {
    utimesSync(file, new Date(), new Date());
    return file;
  }
  onProgress('making the disk image');
  // GRUB alone: a BIOS disk; GRUB and systemd-boot: one disk for either firmware.
  const loader = readBootspec(store, roots[0]!).loader;
  const format = loader?.grub ? (loader.efi === null ? 'raw-bios' : 'raw-hybrid') : 'raw';
  await buildImage({ store, format: findFormat(format), toplevels: [roots[0]!], alsoInStore: roots.slice(1), output: file, size, onProgress });
  evictDisks(dir, 'boot-', basename(file));
  return file;
}

/** The state disk of a VM with a boot loader: a qcow2 overlay of `base`, made unless it exists. */
export async function overlayDisk(file: string, base: string): Promise<{ path: string; created: boolean }> {
  const path = resolve(file);
  if (existsSync(path)) {
    const info = await execa('qemu-img', ['info', '--output=json', path], { reject: false });
    const backing = info.exitCode === 0 ? (JSON.parse(String(info.stdout)) as { 'full-backing-filename'?: string })['full-backing-filename'] : undefined;
    if (backing && !existsSync(backing)) throw new CairnError(`the state disk ${path} was made from ${backing}, which is gone: delete the state disk to start afresh`);
    return { path, created: false };
  }
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    const r = await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, tmp], { reject: false, all: true });
    if (r.exitCode !== 0) throw new CairnError(`qemu-img could not make the state disk (exit ${r.exitCode}): ${r.all}`);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { path, created: true };
}

/** The store disk of `toplevel`: made once (atomically) under `$CAIRN_HOME/vm/`, then reused. */
export async function storeDisk(store: Store, toplevel: string, onProgress: (m: string) => void = () => {}, alsoInStore: string[] = []): Promise<string> {
  const top = store.parse(toplevel);
  const { roots, key } = rootsKey(store, toplevel, alsoInStore, 'store');
  const dir = join(store.home, 'vm');
  mkdirSync(dir, { recursive: true });
  // (`-s`: disks that carry the setuid modes; those made before they did are not reused.)
  const file = join(dir, `store-s-${key}.img`);
  if (existsSync(file)) {
    utimesSync(file, new Date(), new Date());
    return file;
  }
  onProgress('making the store disk');
  const work = join(store.home, 'tmp', `vm-store-${process.pid}-${randomBytes(4).toString('hex')}`);
  const tree = join(work, 'store');
  mkdirSync(tree, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const closure = store.closure(roots);
    await copyStorePaths(
      closure.map((p) => store.toPhysical(p)),
      tree,
    );
    const size = ext4Bytes(await treeBytes(tree), await treeEntries(tree), 64 * MIB);
    // The store carries no setuid bits: the disk gets them back (sudo, su, passwd work in the VM).
    const specialModes = storeSpecialModes(store, closure, tree, '/');
    await makeExt4Image({ dir: tree, image: tmp, sizeBytes: size, label: VM_STORE_LABEL, uuid: derivedUuid(top.hash, 'vm-store'), hashSeed: derivedUuid(top.hash, 'vm-store-seed'), epoch: imageEpoch(), specialModes });
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
    removeTree(work);
  }
  // The newest few stay; a store disk is only a cache of the store.
  evictDisks(dir, 'store-', basename(file));
  return file;
}

/** Creates the state disk (qcow2 holding an empty ext4 root) unless it exists; returns its path. */
export async function stateDisk(file: string, size: string, work: string): Promise<{ path: string; created: boolean }> {
  const path = resolve(file);
  if (existsSync(path)) return { path, created: false };
  const bytes = Math.ceil(parseSize(size, 'virtualisation.diskSize') / MIB) * MIB;
  mkdirSync(work, { recursive: true });
  const raw = join(work, `state-${process.pid}-${randomBytes(4).toString('hex')}.raw`);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    closeSync(openSync(raw, 'w'));
    truncateSync(raw, bytes);
    const r = await execa('mkfs.ext4', ['-q', '-F', '-L', VM_ROOT_LABEL, '-E', 'root_owner=0:0', raw], { reject: false, all: true });
    if (r.exitCode !== 0) throw new CairnError(`mkfs.ext4 of the state disk failed (exit ${r.exitCode}): ${r.all}`);
    await convertToQcow2(raw, tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(raw, { force: true });
    rmSync(tmp, { force: true });
  }
  return { path, created: true };
}
