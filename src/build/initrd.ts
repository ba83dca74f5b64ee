/**
 * The initrd: a gzip-compressed newc cpio that cairn writes itself, holding
 *   /init                 scripts/stage-1-init.sh
 *   /bin/busybox          from busybox-static, with a link per applet
 *   /lib/modules/<kver>/  the kernel modules the root file system may need, with their dependencies,
 *                         and their modules.dep and modules.alias (busybox modprobe reads them)
 *   /etc/cairn/modules    the modules stage 1 always loads, in load order; it loads the others
 *                         for the hardware it finds (by the devices' modaliases), as udev would
 *   /etc/cairn/modules.alias.late  the aliases of drivers whose probe waits (ATA controllers'),
 *                         added to modules.alias when a device stage 1 waits for is missing
 *   /etc/cairn/fstab      the file systems stage 1 mounts
 *
 * It is a derivation (builder `cairn:initrd`), so equal inputs give the same store path and a
 * rebuild costs nothing; the archive is deterministic (fixed mtimes, root ownership, sorted
 * members), so equal inputs also give equal bytes.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { registerBuilder, type Derivation, type Store } from '../store/index.js';
import { gzipCpio, writeCpio, type CpioEntry } from './cpio.js';
import { depmodDerivation, kernelInfo, moduleClosure, moduleName, readModuleIndex, type KernelInfo } from './kernel.js';

/** A file system stage 1 mounts (the root, and others needed for boot). */
export interface InitrdFileSystem {
  /** `LABEL=…`, `UUID=…` or a device path. For `/`, `root=` on the command line takes precedence. */
  device: string;
  mountPoint: string;
  fsType: string;
  /** Comma-separated mount options. */
  options: string;
}

export interface InitrdOptions {
  /** The kernel package's store path, or every realised package of the system (the one with `boot/vmlinuz-*` is used). */
  kernelPkgPath: string | string[];
  /** Store path of `busybox-static`. */
  busyboxPkgPath: string;
  /** Kernel modules to include (names or aliases); dependencies and soft dependencies come with them. */
  modules: string[];
  /** Those of `modules` stage 1 loads whatever the hardware (default: all); it loads the others when it finds their hardware. */
  load?: string[];
  /** File systems stage 1 mounts; default: none listed (the root then comes from `root=` and `rootfstype=`). */
  fileSystems?: InitrdFileSystem[];
  /** The stage-1 script; default `scripts/stage-1-init.sh` of this checkout. */
  stage1?: string;
  /** Store paths of microcode packages (`intel-microcode`, `amd64-microcode`) whose updates are prepended for early loading. */
  microcode?: { vendor: MicrocodeVendor; pkgPath: string }[];
  /** The kernel, when the caller knows it without reading `kernelPkgPath` (kernelFromName). */
  kernel?: KernelInfo;
  /** Modules stage 1 never loads for a device it finds (`boot.blacklistedKernelModules`); `load` still loads them. */
  blacklist?: string[];
}

export type MicrocodeVendor = 'intel' | 'amd';

/**
 * Where each vendor's package keeps its updates, and the file the kernel's early loader reads
 * (`kernel/x86/microcode/<CPUID vendor>.bin` in an uncompressed cpio before the initrd): every
 * update of the vendor concatenated, as Debian's initramfs hooks make it.
 */
export const MICROCODE: Record<MicrocodeVendor, { pkg: string; dir: string; file: string; take: (name: string) => boolean }> = {
  intel: { pkg: 'intel-microcode', dir: 'usr/lib/firmware/intel-ucode', file: 'GenuineIntel.bin', take: (n) => /^[0-9a-f]{2}-[0-9a-f]{2}-[0-9a-f]{2}$/.test(n) },
  amd: { pkg: 'amd64-microcode', dir: 'usr/lib/firmware/amd-ucode', file: 'AuthenticAMD.bin', take: (n) => n.endsWith('.bin') },
};

/** Arguments of a `cairn:initrd` derivation. */
interface InitrdArgs {
  kernel: string;
  version: string;
  depmod: string;
  busybox: string;
  modules: string[];
  load?: string[];
  fstab: string;
  stage1: string;
  microcode?: { vendor: MicrocodeVendor; pkg: string }[];
  /** Module names left out of modules.alias (absent when none, so older initrds are reused). */
  blacklist?: string[];
  /** How modules are stored: `elf`, decompressed at build (part of the arguments so older initrds are not reused). */
  moduleFormat: 'elf';
}

/** Applets stage 1 uses, linked when `busybox --list` cannot run on the building machine. */
const FALLBACK_APPLETS = [
  'cat', 'cttyhack', 'echo', 'findfs', 'insmod', 'ln', 'ls', 'lsmod', 'mkdir', 'modprobe', 'mount', 'mv', 'readlink',
  'setsid', 'sh', 'sleep', 'switch_root', 'sync', 'test', 'tr', 'umount', '[',
];

/** The stage-1 script shipped with cairn. */
export function defaultStage1(): string {
  return readFileSync(join(projectRoot, 'scripts', 'stage-1-init.sh'), 'utf8');
}

/** fstab text for stage 1: one `DEVICE MOUNTPOINT FSTYPE OPTIONS` line per file system, root first. */
export function initrdFstab(fileSystems: InitrdFileSystem[]): string {
  const sorted = [...fileSystems].sort((a, b) => (a.mountPoint === '/' ? -1 : b.mountPoint === '/' ? 1 : a.mountPoint < b.mountPoint ? -1 : a.mountPoint > b.mountPoint ? 1 : 0));
  return sorted
    .map((f) => {
      for (const [what, v] of [['device', f.device], ['mount point', f.mountPoint], ['fsType', f.fsType], ['options', f.options || 'defaults']] as const) {
        if (/\s/.test(v) || v === '') throw new CairnError(`initrd file system ${f.mountPoint}: ${what} '${v}' must be one word`);
      }
      return `${f.device} ${f.mountPoint} ${f.fsType} ${f.options || 'defaults'}\n`;
    })
    .join('');
}

/**
 * The derivations an initrd needs: the kernel's depmod metadata, then the initrd itself.
 * Build them in that order (or with `store.buildAll`), or call `buildInitrd`.
 */
export function initrdDerivations(store: Store, opts: InitrdOptions): { kernel: KernelInfo; depmod: Derivation; initrd: Derivation } {
  const kernel = opts.kernel ?? kernelInfo(store, opts.kernelPkgPath);
  const depmod = depmodDerivation(kernel);
  const busybox = store.parse(opts.busyboxPkgPath).logical;
  const args: InitrdArgs = {
    kernel: kernel.storePath,
    version: kernel.version,
    depmod: store.outputPath(depmod),
    busybox,
    modules: [...opts.modules],
    ...(opts.load ? { load: [...opts.load] } : {}),
    fstab: initrdFstab(opts.fileSystems ?? []),
    stage1: opts.stage1 ?? defaultStage1(),
    ...(opts.microcode?.length ? { microcode: opts.microcode.map((m) => ({ vendor: m.vendor, pkg: store.parse(m.pkgPath).logical })) } : {}),
    ...(opts.blacklist?.length ? { blacklist: [...new Set(opts.blacklist.map(moduleName))].sort() } : {}),
    moduleFormat: 'elf',
  };
  const microcode = args.microcode?.map((m) => m.pkg) ?? [];
  const initrd: Derivation = { name: `initrd-${kernel.version}`, builder: 'cairn:initrd', args, inputs: [kernel.storePath, args.depmod, busybox, ...microcode] };
  return { kernel, depmod, initrd };
}

/** Builds (or finds) the initrd; returns its store path. The archive is `<path>/initrd`. */
export async function buildInitrd(store: Store, opts: InitrdOptions): Promise<string> {
  const { depmod, initrd } = initrdDerivations(store, opts);
  await store.build(depmod);
  return store.build(initrd);
}

/** The applets of a busybox binary, from `busybox --list` (its own answer is the only reliable one). */
async function appletsOf(busybox: string): Promise<string[]> {
  const r = await execa(busybox, ['--list'], { reject: false });
  if (r.exitCode !== 0 || typeof r.stdout !== 'string' || r.stdout.trim() === '') return FALLBACK_APPLETS;
  return r.stdout.split('\n').map((a) => a.trim()).filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
}

/** Directory entries for every parent of `paths` (a cpio lists folders explicitly). */
function parentDirs(paths: string[]): CpioEntry[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    for (let d = dirname(p); d !== '.' && d !== '/'; d = dirname(d)) dirs.add(d);
  }
  return [...dirs].map((path) => ({ type: 'dir' as const, path }));
}

registerBuilder('cairn:initrd', async (ctx) => {
  const a = ctx.drv.args as InitrdArgs;
  const phys = (p: string) => ctx.store.toPhysical(p);
  const modulesRel = `usr/lib/modules/${a.version}`;
  const index = readModuleIndex(join(phys(a.depmod), modulesRel), join(phys(a.kernel), modulesRel));
  const closure = moduleClosure(index, a.modules);
  ctx.log(`initrd: ${closure.length} kernel modules for ${a.modules.join(', ')}`);

  const busyboxFile = join(phys(a.busybox), 'usr', 'bin', 'busybox');
  const files: CpioEntry[] = [];
  files.push({ type: 'file', path: 'init', data: Buffer.from(a.stage1), mode: 0o755 });
  files.push({ type: 'file', path: 'bin/busybox', data: readFileSync(busyboxFile), mode: 0o755 });
  for (const applet of await appletsOf(busyboxFile)) files.push({ type: 'symlink', path: `bin/${applet}`, target: 'busybox' });
  // Modules go in uncompressed (the archive is compressed as a whole): stage 1 then loads them
  // without decompressing each in userspace, which under emulation costs more than the kernel's
  // gunzip of the larger archive. `plain` maps a module's path to its name in the initrd.
  const plain = (rel: string): string => rel.replace(/\.(xz|zst|gz)$/, '');
  for (const rel of closure) files.push({ type: 'file', path: `lib/modules/${a.version}/${plain(rel)}`, data: await decompressModule(join(phys(a.kernel), modulesRel, rel)) });
  const loadList = (a.load ? moduleClosure(index, a.load) : closure).map((rel) => `/lib/modules/${a.version}/${plain(rel)}\n`);
  files.push({ type: 'file', path: 'etc/cairn/modules', data: Buffer.from(loadList.join('')) });
  // What busybox modprobe needs to load a module by name or alias with its dependencies: stage 1
  // for the devices it finds, the kernel for what it asks for itself (a file system type, crypto).
  // A blacklisted module has no aliases here, as modprobe.d's `blacklist` does on the running
  // system: nothing loads it for a device, while a name in the load list (or a dependency) still does.
  const inInitrd = new Set(closure);
  const blacklisted = new Set(a.blacklist ?? []);
  const names = new Set(closure.map(moduleName).filter((n) => !blacklisted.has(n)));
  const dep = closure.map((rel) => `${plain(rel)}: ${(index.deps.get(rel) ?? []).filter((d) => inInitrd.has(d)).map(plain).join(' ')}\n`.replace(/ \n$/, '\n'));
  // Drivers of ATA controllers (those that use libata) come in late: their aliases wait in
  // etc/cairn/modules.alias.late until stage 1 misses a device (see add_late_drivers there).
  const late = new Set(closure.filter((rel) => (index.deps.get(rel) ?? []).some((d) => moduleName(d) === 'libata')).map(moduleName));
  const aliases = { now: '', late: '' };
  for (const x of index.aliases) if (names.has(x.module)) aliases[late.has(x.module) ? 'late' : 'now'] += `alias ${x.pattern} ${x.module}\n`;
  files.push({ type: 'file', path: `lib/modules/${a.version}/modules.dep`, data: Buffer.from(dep.join('')) });
  files.push({ type: 'file', path: `lib/modules/${a.version}/modules.alias`, data: Buffer.from(aliases.now) });
  if (late.size) files.push({ type: 'file', path: 'etc/cairn/modules.alias.late', data: Buffer.from(aliases.late) });
  files.push({ type: 'file', path: 'etc/cairn/fstab', data: Buffer.from(a.fstab) });

  const entries: CpioEntry[] = [
    ...parentDirs(files.map((f) => f.path)),
    ...['dev', 'proc', 'sys', 'run', 'sysroot', 'tmp'].map((path) => ({ type: 'dir' as const, path })),
    { type: 'symlink', path: 'sbin', target: 'bin' },
    // The kernel opens /dev/console for init's stdio before stage 1 can mount devtmpfs.
    { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    ...files,
  ];
  await mkdir(ctx.out);
  const early = a.microcode?.length ? earlyMicrocodeCpio(a.microcode.map((m) => ({ vendor: m.vendor, dir: phys(m.pkg) }))) : Buffer.alloc(0);
  if (early.length) ctx.log(`initrd: early microcode for ${a.microcode!.map((m) => m.vendor).join(', ')} (${early.length} bytes)`);
  await writeFile(join(ctx.out, 'initrd'), Buffer.concat([early, gzipCpio(writeCpio(entries))]), { mode: 0o444 });
});

/** A kernel module's ELF bytes, from its file as the kernel package ships it (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`). */
async function decompressModule(file: string): Promise<Buffer> {
  if (file.endsWith('.ko')) return readFileSync(file);
  if (file.endsWith('.gz')) return gunzipSync(readFileSync(file));
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : undefined;
  if (!tool) throw new CairnError(`kernel module ${file}: unknown compression`);
  const r = await execa(tool, ['-dc', file], { encoding: 'buffer', reject: false, stripFinalNewline: false });
  if (r.exitCode !== 0) throw new CairnError(`${tool} -dc ${file} failed (exit ${r.exitCode}): ${Buffer.from(r.stderr).toString()}`);
  return Buffer.from(r.stdout);
}

/**
 * The uncompressed cpio the kernel's early microcode loader reads at the start of the initrd
 * (Documentation/arch/x86/microcode.rst); the kernel then unpacks the compressed archive after it.
 */
export function earlyMicrocodeCpio(packages: { vendor: MicrocodeVendor; dir: string }[]): Buffer {
  const files: CpioEntry[] = [];
  for (const { vendor, dir } of packages) {
    const m = MICROCODE[vendor];
    const from = join(dir, m.dir);
    const names = existsSync(from) ? readdirSync(from).filter((n) => m.take(n) && statSync(join(from, n)).isFile()).sort() : [];
    if (names.length === 0) throw new CairnError(`${m.pkg} has no microcode updates in /${m.dir}: cannot load them early`);
    files.push({ type: 'file', path: `kernel/x86/microcode/${m.file}`, data: Buffer.concat(names.map((n) => readFileSync(join(from, n)))) });
  }
  return writeCpio([...parentDirs(files.map((f) => f.path)), ...files]);
}

/** What the boot files depend on: `boot.initrd.modules`, `.load` and `.fileSystems` (the spec's `boot.initrd`). */
export interface BootConfig {
  modules: string[];
  load?: string[];
  fileSystems: InitrdFileSystem[];
  /** CPU vendors whose microcode packages (among `packages`) are prepended. */
  earlyMicrocode?: MicrocodeVendor[];
  /** `boot.blacklistedKernelModules`. */
  blacklist?: string[];
}

/**
 * The derivations of a system's boot files (its kernel's module metadata, then the initrd), from
 * store paths alone: nothing is read or built. `packages` are the system's packages plus its
 * `system.build.bootPackages` (busybox-static must be among them); `kernel` is found among them
 * by content when not given.
 */
export function bootDerivations(
  store: Store,
  config: BootConfig,
  packages: { name: string; storePath: string }[],
  kernel?: KernelInfo,
): { kernel: KernelInfo; depmod: Derivation; initrd: Derivation } {
  const busybox = packages.find((p) => p.name === 'busybox-static');
  if (!busybox) throw new CairnError('the initrd needs busybox-static: it must be among the packages built (system.build.bootPackages)');
  return initrdDerivations(store, {
    kernelPkgPath: packages.map((p) => p.storePath),
    ...(kernel ? { kernel } : {}),
    busyboxPkgPath: busybox.storePath,
    modules: config.modules,
    ...(config.load ? { load: config.load } : {}),
    fileSystems: config.fileSystems,
    ...(config.blacklist ? { blacklist: config.blacklist } : {}),
    microcode: (config.earlyMicrocode ?? []).map((vendor) => {
      const pkg = packages.find((p) => p.name === MICROCODE[vendor].pkg);
      if (!pkg) throw new CairnError(`the early microcode of ${vendor} CPUs needs ${MICROCODE[vendor].pkg} among the packages built`);
      return { vendor, pkgPath: pkg.storePath };
    }),
  });
}
