/**
 * The root file system of a cairn machine, staged as a folder and made into an ext4 file system.
 *
 *   /cairn/store/<…>                         the closure of every generation (and of `alsoInStore`)
 *   /cairn/var/db/info/<…>.json              their metadata, so the machine's store is a valid cairn store
 *   /cairn/var/profiles/system-N-link        → generation N's toplevel; `system` → the current one
 *   /usr                                     → <current toplevel>/sw/usr (stage 1 repoints it at each boot)
 *   /bin /sbin /lib /lib64                   → usr/… (merged /usr)
 *   /etc /var /run /tmp /proc /sys /dev /root /home  empty: activation fills /etc and /var at boot
 *
 * Rootless and reproducible: `mkfs.ext4 -d` copies the staged tree (in name order) without a
 * mount; then one debugfs pass gives every inode root's ownership and the image epoch as its
 * access and change time (mke2fs copies those from the staged files, where no user can set
 * ctime), and restores the setuid/setgid modes the store records but never carries.
 */
import { existsSync, lstatSync, lutimesSync, mkdirSync, readdirSync, statSync, symlinkSync, chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { LOGICAL_STORE } from '../paths.js';
import { lexists, type Store } from '../store/index.js';

export interface StagedGeneration {
  number: number;
  /** Logical store path of the generation's toplevel. */
  toplevel: string;
}

export interface StageRootOptions {
  /** Empty (or absent) folder to fill. */
  dir: string;
  /** The generations of the system profile. */
  generations?: StagedGeneration[];
  /** The current generation's number (default: the newest). */
  current?: number;
  /** More store paths whose closures the store holds (generations a machine may switch to). */
  alsoInStore?: string[];
  /** Empty folders for mount points (e.g. the ESP's). */
  mountPoints?: string[];
  /** Shorthand for one generation: its toplevel… */
  toplevel?: string;
  /** …and its number (default 1). */
  generation?: number;
  /** mtime of the folders and links the stager creates (store objects keep theirs). */
  epoch?: number;
}

/** A file in the root whose mode the store cannot carry (setuid/setgid). */
export interface SpecialMode {
  /** Absolute path inside the root file system. */
  path: string;
  /** The whole mode: file type and permission bits. */
  mode: number;
}

export interface StagedRoot {
  /** Logical store paths copied in. */
  closure: string[];
  /** Whether every store object is owned by root already (then no ownership pass is needed). */
  ownedByRoot: boolean;
  /** Setuid/setgid files of the closure, to restore in the file system. */
  specialModes: SpecialMode[];
}

/**
 * Copies store path trees into a folder, in one `cp`: as hard links when both are on one file
 * system (the store is immutable and nothing here writes to the files, so sharing inodes is safe
 * and a 400 MB kernel costs nothing), else as copies. Modes, links and timestamps are kept.
 */
export async function copyStorePaths(sources: string[], destDir: string): Promise<void> {
  if (sources.length === 0) return;
  const linked = await execa('cp', ['-a', '-l', '-t', destDir, ...sources], { reject: false });
  if (linked.exitCode === 0) return;
  await execa('cp', ['-a', '-f', '--remove-destination', '-t', destDir, ...sources]);
}

/**
 * What a cairn root holds besides /cairn: /usr → the generation's `sw/usr` (stage 1 repoints it
 * at each boot), the merged-/usr links, and empty folders for what activation fills and for mount
 * points. Entries that exist are kept. Returns the paths it created.
 */
export function rootSkeleton(dir: string, toplevel: string, mountPoints: string[] = []): string[] {
  const created: string[] = [];
  const link = (target: string, path: string): void => {
    if (lexists(path)) return;
    symlinkSync(target, path);
    created.push(path);
  };
  const folder = (path: string, mode = 0o755): void => {
    if (existsSync(path)) return;
    mkdirSync(path, { recursive: true });
    chmodSync(path, mode);
    created.push(path);
  };
  link(`${toplevel}/sw/usr`, join(dir, 'usr'));
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) link(`usr/${d}`, join(dir, d));
  for (const d of ['etc', 'var', 'run', 'proc', 'sys', 'dev', 'home']) folder(join(dir, d));
  for (const m of mountPoints) folder(join(dir, m.replace(/^\/+/, '')));
  folder(join(dir, 'root'), 0o700);
  folder(join(dir, 'tmp'), 0o1777);
  return created;
}

/**
 * The setuid/setgid modes of store paths copied into `storeDir`, as paths below `mountedAt` (where
 * that folder is in the file system being made: /cairn/store in a root, / on a store disk).
 */
export function storeSpecialModes(store: Store, closure: string[], storeDir: string, mountedAt: string): SpecialMode[] {
  const out: SpecialMode[] = [];
  for (const p of closure) {
    const base = store.parse(p).base;
    for (const s of store.pathInfo(p).setuid ?? []) {
      // The entry's file type (setgid folders exist too, e.g. /var/local) with the recorded bits.
      const type = lstatSync(join(storeDir, base, s.path)).mode & 0o170000;
      out.push({ path: `${mountedAt.replace(/\/+$/, '')}/${base}/${s.path}`, mode: type | s.mode });
    }
  }
  return out;
}

/** Fills `dir` with the root tree of the generations (see the file comment). */
export async function stageRootTree(store: Store, opts: StageRootOptions): Promise<StagedRoot> {
  const { dir } = opts;
  const gens = (opts.generations ?? (opts.toplevel ? [{ number: opts.generation ?? 1, toplevel: opts.toplevel }] : []))
    .map((g) => ({ number: g.number, toplevel: store.parse(g.toplevel).logical }))
    .sort((a, b) => a.number - b.number);
  if (gens.length === 0) throw new CairnError('nothing to stage: no generation given');
  const current = gens.find((g) => g.number === (opts.current ?? gens[gens.length - 1]!.number));
  if (!current) throw new CairnError(`generation ${opts.current} is not among the staged generations`);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new CairnError(`${dir} is not empty`);
  const storeDir = join(dir, LOGICAL_STORE.slice(1));
  mkdirSync(storeDir, { recursive: true });
  const closure = store.closure([...gens.map((g) => g.toplevel), ...(opts.alsoInStore ?? [])]);
  const specialModes: SpecialMode[] = [];
  await copyStorePaths(
    closure.map((p) => store.toPhysical(p)),
    storeDir,
  );
  let ownedByRoot = true;
  for (const p of closure) {
    const st = lstatSync(join(storeDir, store.parse(p).base));
    if (st.uid !== 0 || st.gid !== 0) ownedByRoot = false;
  }
  specialModes.push(...storeSpecialModes(store, closure, storeDir, LOGICAL_STORE));
  const created: string[] = [];
  const link = (target: string, path: string): void => {
    symlinkSync(target, path);
    created.push(path);
  };
  const folder = (path: string, mode = 0o755): void => {
    mkdirSync(path, { recursive: true });
    chmodSync(path, mode);
    created.push(path);
  };
  const profiles = join(dir, 'cairn', 'var', 'profiles');
  folder(join(dir, 'cairn'));
  folder(join(dir, 'cairn', 'var'));
  folder(profiles);
  // Metadata without the deriver (it may name the building machine's files), registered at the epoch.
  const info = join(dir, 'cairn', 'var', 'db', 'info');
  folder(join(dir, 'cairn', 'var', 'db'));
  folder(info);
  for (const p of closure) {
    const { deriver: _deriver, ...meta } = store.pathInfo(p);
    const file = join(info, `${store.parse(p).base}.json`);
    writeFileSync(file, JSON.stringify({ ...meta, registrationTime: opts.epoch ?? meta.registrationTime }, null, 1) + '\n', { mode: 0o644 });
    created.push(file);
  }
  for (const g of gens) link(g.toplevel, join(profiles, `system-${g.number}-link`));
  link(`system-${current.number}-link`, join(profiles, 'system'));
  created.push(...rootSkeleton(dir, current.toplevel, opts.mountPoints));
  // The store folder itself: read-only to all, like every store object.
  created.push(storeDir);
  chmodSync(dir, 0o755);
  created.push(dir);
  if (opts.epoch !== undefined) for (const p of created) lutimesSync(p, opts.epoch, opts.epoch);
  return { closure, ownedByRoot, specialModes };
}

/** Apparent size of a tree in bytes (du's view, counting hard-linked files once). */
export async function treeBytes(dir: string): Promise<number> {
  const r = await execa('du', ['-s', '-B1', dir]);
  return Number(String(r.stdout).split(/\s/)[0]);
}

/** Entries of a tree (files, folders, links), for sizing the inode table. */
export async function treeEntries(dir: string): Promise<number> {
  const r = await execa('find', [dir, '-printf', '.']);
  return String(r.stdout).length;
}

/**
 * The smallest ext4 size that holds a tree of `bytes` in `entries` inodes, plus `headroom`:
 * data blocks with 10 % slack for metadata and partly used blocks, 256 bytes of inode table per
 * entry (mke2fs gives one inode per 16 KiB, so small files need the room), the journal (64 MiB
 * above 1 GiB) and the reserved blocks. Rounded up to MiB.
 */
export function ext4Bytes(bytes: number, entries: number, headroom: number): number {
  const mib = 2 ** 20;
  const inodesBySize = entries * 16 * 1024;
  const data = Math.max(bytes * 1.1 + entries * 4096 * 0.5, inodesBySize * 0.5);
  const raw = data + 64 * mib + headroom;
  // 5 % reserved for root by default.
  return Math.ceil(raw / 0.95 / mib) * mib;
}

export interface Ext4ImageOptions {
  /** The staged root folder. */
  dir: string;
  /** Image file: a new one (overwritten), or a disk image to write at `offset`. */
  image: string;
  /** Byte offset of the partition inside `image` (the file must already have its final size). */
  offset?: number;
  label?: string;
  /** File system UUID and directory hash seed (fixed for reproducible images). */
  uuid?: string;
  hashSeed?: string;
  /** Size in bytes; default: the tree plus a third plus 256 MiB, rounded to MiB. */
  sizeBytes?: number;
  /** Times of the file system's own metadata and of every inode's atime/ctime (SOURCE_DATE_EPOCH). */
  epoch?: number;
  /** Setuid/setgid modes to restore. */
  specialModes?: SpecialMode[];
  onProgress?: (message: string) => void;
  /** True when every staged file is root's already: the ownership pass is skipped. */
  ownedByRoot?: boolean;
}

/** `image?offset=N`: how e2fsprogs' tools address a file system inside a disk image. */
function e2Target(image: string, offset?: number): string {
  return offset ? `${image}?offset=${offset}` : image;
}

/** Inode numbers in use, from dumpe2fs' free-inode ranges per group. */
async function usedInodes(target: string): Promise<number[]> {
  const r = await execa('dumpe2fs', [target], { reject: false, all: true });
  if (r.exitCode !== 0) throw new CairnError(`dumpe2fs failed (exit ${r.exitCode}): ${r.all}`);
  const text = String(r.stdout);
  const count = Number(/^Inode count:\s+(\d+)/m.exec(text)?.[1]);
  if (!count) throw new CairnError('dumpe2fs printed no inode count');
  const free = new Uint8Array(count + 1);
  for (const m of text.matchAll(/^\s+Free inodes: (.*)$/gm)) {
    for (const part of m[1]!.split(',')) {
      const range = part.trim();
      if (!range) continue;
      const [a, b] = range.split('-').map(Number);
      for (let i = a!; i <= (b ?? a!); i++) free[i] = 1;
    }
  }
  const used: number[] = [2];
  for (let i = 11; i <= count; i++) if (!free[i]) used.push(i);
  return used;
}

/** debugfs commands, run against the file system in one pass (read from stdin). */
async function debugfsWrite(target: string, commands: string[], epoch: number): Promise<void> {
  // The fake time also dates the superblock's write time, which closing the file system updates.
  const r = await execa('debugfs', ['-w', '-f', '-', target], { reject: false, input: commands.join('\n') + '\n', stdout: 'ignore', env: { E2FSPROGS_FAKE_TIME: String(epoch) } });
  // debugfs exits 0 even when a command fails; failures are its stderr lines besides the banner.
  const errors = String(r.stderr)
    .split('\n')
    .filter((l) => l && !l.startsWith('debugfs '));
  if (r.exitCode !== 0 || errors.length > 0) throw new CairnError(`debugfs could not fix up the file system: ${errors.slice(0, 5).join('; ') || `exit ${r.exitCode}`}`);
}

/**
 * `mkfs.ext4 -d`: an ext4 file system holding the tree, without mounting anything, then the
 * ownership/time/mode pass (see the file comment).
 */
export async function makeExt4Image(opts: Ext4ImageOptions): Promise<void> {
  if (!statSync(opts.dir).isDirectory()) throw new CairnError(`${opts.dir} is not a folder`);
  const size = opts.sizeBytes ?? Math.ceil(((await treeBytes(opts.dir)) * 4) / 3 / 2 ** 20 + 256) * 2 ** 20;
  const ext = ['root_owner=0:0'];
  if (opts.hashSeed) ext.push(`hash_seed=${opts.hashSeed}`);
  if (opts.offset) ext.push(`offset=${opts.offset}`);
  const args = ['-q', '-F', '-L', opts.label ?? 'root', '-E', ext.join(','), ...(opts.uuid ? ['-U', opts.uuid] : []), '-d', opts.dir, opts.image, `${Math.ceil(size / 1024)}k`];
  const env = opts.epoch !== undefined ? { E2FSPROGS_FAKE_TIME: String(opts.epoch) } : {};
  const r = await execa('mkfs.ext4', args, { reject: false, all: true, env });
  if (r.exitCode !== 0) throw new CairnError(`mkfs.ext4 failed (exit ${r.exitCode}): ${r.all}`);
  const target = e2Target(opts.image, opts.offset);
  opts.onProgress?.('setting owners, times and modes');
  const epoch = opts.epoch ?? Math.floor(Date.now() / 1000);
  const commands: string[] = [];
  // Staged by a normal user, files are the builder's; from a store root built, they are root's already.
  const chown = opts.ownedByRoot !== true;
  for (const ino of await usedInodes(target)) {
    if (chown) commands.push(`sif <${ino}> uid 0`, `sif <${ino}> gid 0`);
    commands.push(`sif <${ino}> atime @${epoch}`, `sif <${ino}> ctime @${epoch}`);
  }
  for (const s of opts.specialModes ?? []) {
    // debugfs' mode is the whole i_mode: file type and permission bits.
    commands.push(`sif "${s.path}" mode 0${s.mode.toString(8)}`);
  }
  await debugfsWrite(target, commands, epoch);
}
