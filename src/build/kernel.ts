/**
 * The kernel of a system: finding it in Debian's `linux-image-*` packages, generating the module
 * metadata their postinst would have (depmod), and resolving which module files a set of module
 * names needs, in load order.
 *
 * Debian's `linux-image-amd64` is a metapackage; the kernel itself (`boot/vmlinuz-<kver>` and
 * `usr/lib/modules/<kver>/`) is in the `linux-image-<kver>` package it depends on. The .deb ships
 * no modules.dep: `depmod` runs in its postinst, which cairn never runs, so a derivation runs it.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { linkOrCopy, registerBuilder, removeTree, type Derivation, type Store } from '../store/index.js';

/** A kernel found in a package's store path. */
export interface KernelInfo {
  /** Logical store path of the package holding the kernel (e.g. `…-linux-image-6.1.0-56-amd64-6.1.192-2`). */
  storePath: string;
  /** Kernel release (`uname -r`), e.g. `6.1.0-56-amd64`. */
  version: string;
  /** Path of the image relative to the store path: `boot/vmlinuz-<kver>`. */
  image: string;
  /** Path of the modules folder relative to the store path: `usr/lib/modules/<kver>`. */
  modulesDir: string;
}

/** The kernel in one package store path, or undefined if it has none. */
function kernelIn(store: Store, pkgPath: string): KernelInfo | undefined {
  const logical = store.parse(pkgPath).logical;
  const boot = join(store.toPhysical(logical), 'boot');
  if (!existsSync(boot)) return undefined;
  const images = readdirSync(boot).filter((f) => f.startsWith('vmlinuz-')).sort();
  if (images.length === 0) return undefined;
  if (images.length > 1) throw new CairnError(`${logical} holds several kernels (${images.join(', ')}); cairn expects one per package`);
  const version = images[0]!.slice('vmlinuz-'.length);
  const modulesDir = `usr/lib/modules/${version}`;
  if (!existsSync(join(store.toPhysical(logical), modulesDir))) {
    throw new CairnError(`${logical} has boot/${images[0]} but no ${modulesDir}`);
  }
  return { storePath: logical, version, image: `boot/${images[0]}`, modulesDir };
}

/**
 * The kernel of a Debian kernel package, from its name alone: `linux-image-<release>` (and its
 * `-unsigned` twin) ships `boot/vmlinuz-<release>` and `usr/lib/modules/<release>`. Enough to name
 * the kernel's derivations without unpacking the package, whose outputs may all be valid already;
 * undefined for other names (metapackages such as `linux-image-amd64`).
 */
export function kernelFromName(name: string, storePath: string): KernelInfo | undefined {
  const m = /^linux-image-(\d\S*?)(?:-unsigned)?$/.exec(name);
  if (!m) return undefined;
  const version = m[1]!;
  return { storePath, version, image: `boot/vmlinuz-${version}`, modulesDir: `usr/lib/modules/${version}` };
}

/**
 * The kernel among package store paths: pass the kernel package's path, or (because
 * `linux-image-amd64` is a metapackage) every realised package of the system, and the one holding
 * `boot/vmlinuz-*` is found. A CairnError if there is none or more than one.
 */
export function kernelInfo(store: Store, pkgPaths: string | string[]): KernelInfo {
  const paths = Array.isArray(pkgPaths) ? pkgPaths : [pkgPaths];
  const found = paths.map((p) => kernelIn(store, p)).filter((k): k is KernelInfo => k !== undefined);
  if (found.length === 0) {
    throw new CairnError(`no kernel (boot/vmlinuz-*) in ${paths.length === 1 ? paths[0] : `any of ${paths.length} packages`}; is boot.kernelPackage a linux-image package?`);
  }
  const distinct = [...new Map(found.map((k) => [k.storePath, k])).values()];
  if (distinct.length > 1) throw new CairnError(`several kernels among the packages: ${distinct.map((k) => k.version).join(', ')}`);
  return distinct[0]!;
}

/** Arguments of a `cairn:depmod` derivation. */
interface DepmodArgs {
  kernel: string;
  version: string;
  /** Where the device nodes of modules.devname go: `tmpfiles` (see staticNodes). In the arguments so older trees are not reused. */
  staticNodes?: 'tmpfiles';
}

/**
 * The derivation of a kernel's generated module metadata: `usr/lib/modules/<kver>/modules.*` as
 * depmod writes them (modules.dep, .alias, .softdep, .symbols, their .bin forms, …), without the
 * files the package already ships, so that layering it over the package into one tree (`sw`)
 * does not collide.
 */
export function depmodDerivation(kernel: KernelInfo): Derivation {
  const args: DepmodArgs = { kernel: kernel.storePath, version: kernel.version, staticNodes: 'tmpfiles' };
  return { name: `linux-modules-depmod-${kernel.version}`, builder: 'cairn:depmod', args, inputs: [kernel.storePath] };
}

registerBuilder('cairn:depmod', async (ctx) => {
  const { kernel, version } = ctx.drv.args as DepmodArgs;
  const pkgModules = join(ctx.store.toPhysical(kernel), 'usr', 'lib', 'modules', version);
  // depmod -b ROOT reads ROOT/lib/modules/<kver> (kmod 30 knows no /usr/lib/modules). A scratch
  // root beside the output links the modules in (depmod follows symlinked folders) and copies the
  // package's own modules.* files, which depmod reads (modules.order, modules.builtin*).
  const scratch = `${ctx.out}.depmod`;
  const dir = join(scratch, 'lib', 'modules', version);
  mkdirSync(dir, { recursive: true });
  try {
    const shipped = new Set<string>();
    for (const e of readdirSync(pkgModules)) {
      if (e.startsWith('modules.')) {
        copyFileSync(join(pkgModules, e), join(dir, e));
        shipped.add(e);
      } else {
        symlinkSync(join(pkgModules, e), join(dir, e));
      }
    }
    const r = await execa('depmod', ['-b', scratch, version], { reject: false, all: true });
    if (r.exitCode !== 0) throw new CairnError(`depmod -b ${scratch} ${version} failed (exit ${r.exitCode}): ${r.all}`);
    const outDir = join(ctx.out, 'usr', 'lib', 'modules', version);
    mkdirSync(outDir, { recursive: true });
    for (const e of readdirSync(dir).sort()) {
      if (e.startsWith('modules.') && !shipped.has(e) && statSync(join(dir, e)).isFile()) copyFileSync(join(dir, e), join(outDir, e));
    }
    if (!existsSync(join(outDir, 'modules.dep'))) throw new CairnError(`depmod wrote no modules.dep for ${version}`);
    staticNodes(outDir, ctx.out);
  } finally {
    removeTree(scratch);
  }
});

/** The module metadata depmod produced, parsed for resolving module names to files. */
export interface ModuleIndex {
  /** Module name (underscores) → path relative to the modules folder (`kernel/fs/ext4/ext4.ko`). */
  files: Map<string, string>;
  /** Module path → paths it depends on (modules.dep). */
  deps: Map<string, string[]>;
  /** Module name → soft dependencies to load before / after it (modules.softdep), as names or aliases. */
  softdeps: Map<string, { pre: string[]; post: string[] }>;
  /** Alias patterns (`crypto-crc32c`, globs allowed) with the module names they stand for. */
  aliases: { pattern: string; regex: RegExp | undefined; module: string }[];
  /** Names of modules built into the kernel image (nothing to load). */
  builtin: Set<string>;
}

/** `crc32c-intel` and `crc32c_intel` name the same module: the kernel compares with `-` as `_`. */
export function moduleName(nameOrPath: string): string {
  const base = nameOrPath.slice(nameOrPath.lastIndexOf('/') + 1).replace(/\.ko(\.(xz|zst|gz))?$/, '');
  return base.replace(/-/g, '_');
}

function globToRegex(pattern: string): RegExp | undefined {
  if (!/[*?[]/.test(pattern)) return undefined;
  const src = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${src}$`);
}

/**
 * Reads the module index of a kernel: modules.dep, modules.softdep and modules.alias from
 * `metaDir` (depmod's output), modules.builtin from `pkgModulesDir` (the package).
 */
export function readModuleIndex(metaDir: string, pkgModulesDir: string): ModuleIndex {
  const files = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(join(metaDir, 'modules.dep'), 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    files.set(moduleName(path), path);
    deps.set(path, line.slice(colon + 1).split(/\s+/).filter((d) => d !== ''));
  }
  const softdeps = new Map<string, { pre: string[]; post: string[] }>();
  const softdepFile = join(metaDir, 'modules.softdep');
  if (existsSync(softdepFile)) {
    for (const line of readFileSync(softdepFile, 'utf8').split('\n')) {
      const words = line.trim().split(/\s+/);
      if (words[0] !== 'softdep' || words.length < 2) continue;
      const entry = softdeps.get(moduleName(words[1]!)) ?? { pre: [], post: [] };
      let list: string[] | undefined;
      for (const w of words.slice(2)) {
        if (w === 'pre:') list = entry.pre;
        else if (w === 'post:') list = entry.post;
        else list?.push(w);
      }
      softdeps.set(moduleName(words[1]!), entry);
    }
  }
  const aliases: ModuleIndex['aliases'] = [];
  const aliasFile = join(metaDir, 'modules.alias');
  if (existsSync(aliasFile)) {
    for (const line of readFileSync(aliasFile, 'utf8').split('\n')) {
      const m = /^alias\s+(\S+)\s+(\S+)/.exec(line);
      if (m) aliases.push({ pattern: m[1]!, regex: globToRegex(m[1]!), module: moduleName(m[2]!) });
    }
  }
  return { files, deps, softdeps, aliases, builtin: readBuiltinModules(pkgModulesDir) };
}

/** Names of the modules built into a kernel, from modules.builtin in its modules folder (none without it). */
export function readBuiltinModules(modulesDir: string): Set<string> {
  const builtin = new Set<string>();
  const file = join(modulesDir, 'modules.builtin');
  if (!existsSync(file)) return builtin;
  for (const line of readFileSync(file, 'utf8').split('\n')) if (line.trim() !== '') builtin.add(moduleName(line.trim()));
  return builtin;
}

/** Module names a name or alias stands for (several for an alias such as `crypto-crc32c`, or a glob such as `nft_*`). */
function lookup(index: ModuleIndex, nameOrAlias: string): string[] {
  const name = moduleName(nameOrAlias);
  if (index.files.has(name) || index.builtin.has(name)) return [name];
  if (name.includes('*')) {
    const re = globToRegex(name)!;
    return [...index.files.keys()].filter((n) => re.test(n)).sort();
  }
  const hits = index.aliases.filter((a) => (a.regex ? a.regex.test(nameOrAlias) : a.pattern === nameOrAlias)).map((a) => a.module);
  return [...new Set(hits)].sort();
}

/**
 * The module files (relative to the modules folder) that loading `names` needs, in an order in
 * which each can be loaded with insmod: pre-softdeps, then hard dependencies (modules.dep), then
 * the module, then post-softdeps. Softdeps matter: ext4 asks for `crypto-crc32c` only through
 * modules.softdep, and without crc32c its mount fails ("Cannot load crc32c driver").
 * Built-in modules need nothing. Names that match no module are a CairnError; soft dependencies
 * that match none are skipped (they are optional by nature).
 */
export function moduleClosure(index: ModuleIndex, names: string[]): string[] {
  const order: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visitPath = (path: string): void => {
    if (done.has(path) || visiting.has(path)) return; // a cycle cannot be ordered: insmod will say which symbol is missing
    visiting.add(path);
    const name = moduleName(path);
    const soft = index.softdeps.get(name);
    for (const s of soft?.pre ?? []) visitName(s, true);
    for (const d of index.deps.get(path) ?? []) visitPath(d);
    visiting.delete(path);
    done.add(path);
    order.push(path);
    for (const s of soft?.post ?? []) visitName(s, true);
  };
  const visitName = (nameOrAlias: string, optional: boolean): void => {
    const found = lookup(index, nameOrAlias);
    if (found.length === 0) {
      if (optional) return;
      throw new CairnError(`kernel module '${nameOrAlias}' is neither a module of this kernel, built in, nor an alias of one`);
    }
    for (const n of found) {
      const path = index.files.get(n);
      if (path) visitPath(path);
    }
  };
  for (const n of names) visitName(n, false);
  return order;
}

/** The names among `names` that match no module, built-in module, alias or (for globs) module name. */
export function unknownModules(index: ModuleIndex, names: string[]): string[] {
  return names.filter((n) => lookup(index, n).length === 0);
}

/** What a system's module tree holds: names that must resolve, and names taken only if they do (file system types). */
export interface ModuleSelection {
  required: string[];
  optional: string[];
}

/** Arguments of a `cairn:kernel-modules` derivation. */
interface KernelTreeArgs extends ModuleSelection {
  kernel: string;
  depmod: string;
  version: string;
  staticNodes: 'tmpfiles';
  /** The tree names its modules for modprobe@.service (loadableModules); part of the output's identity. */
  loadable: 'modprobe@';
}

/**
 * The derivation of a system's kernel modules: only those `selection` needs (with their dependencies and soft dependencies) under `usr/lib/modules/<kver>`, with
 * module metadata regenerated by depmod for that reduced tree so modprobe and udev resolve within it.
 * It stands in for the kernel package in the system, whose full module tree is ~400 MB.
 */
export function kernelTreeDerivation(kernel: KernelInfo, depmod: string, selection: ModuleSelection): Derivation {
  const args: KernelTreeArgs = {
    kernel: kernel.storePath,
    depmod,
    version: kernel.version,
    staticNodes: 'tmpfiles',
    loadable: 'modprobe@',
    required: [...new Set(selection.required)].sort(),
    optional: [...new Set(selection.optional)].sort(),
  };
  return { name: `linux-modules-${kernel.version}`, builder: 'cairn:kernel-modules', args, inputs: [kernel.storePath, depmod] };
}

/**
 * The derivation of a kernel image alone (`boot/vmlinuz-<kver>`, `boot/config-<kver>`): a store
 * path that depends on the kernel package only, so generations with different module sets share
 * one kernel on the ESP (boot entries name kernels by store path).
 */
export function kernelImageDerivation(kernel: KernelInfo): Derivation {
  const args: DepmodArgs = { kernel: kernel.storePath, version: kernel.version };
  return { name: `vmlinuz-${kernel.version}`, builder: 'cairn:kernel-image', args, inputs: [kernel.storePath] };
}

registerBuilder('cairn:kernel-image', async (ctx) => {
  const a = ctx.drv.args as DepmodArgs;
  const pkg = ctx.store.toPhysical(a.kernel);
  for (const f of [`vmlinuz-${a.version}`, `config-${a.version}`]) {
    if (existsSync(join(pkg, 'boot', f))) linkOrCopy(join(pkg, 'boot', f), join(ctx.out, 'boot', f));
  }
});

registerBuilder('cairn:kernel-modules', async (ctx) => {
  const a = ctx.drv.args as KernelTreeArgs;
  const pkg = ctx.store.toPhysical(a.kernel);
  const rel = `usr/lib/modules/${a.version}`;
  const pkgModules = join(pkg, rel);
  const index = readModuleIndex(join(ctx.store.toPhysical(a.depmod), rel), pkgModules);
  const optional = a.optional.filter((n) => unknownModules(index, [n]).length === 0);
  const files = moduleClosure(index, [...a.required, ...optional]);
  ctx.log(`kernel: ${files.length} of ${index.files.size} modules`);
  const outModules = join(ctx.out, rel);
  mkdirSync(outModules, { recursive: true });
  for (const f of files) linkOrCopy(join(pkgModules, f), join(outModules, f));
  // The package's own metadata (modules.order, modules.builtin*) is what depmod reads besides the modules.
  for (const e of readdirSync(pkgModules)) if (e.startsWith('modules.')) copyFileSync(join(pkgModules, e), join(outModules, e));
  // depmod -b ROOT reads ROOT/lib/modules/<kver> (kmod 30 knows no /usr/lib/modules): a scratch root links it to the output.
  const scratch = `${ctx.out}.depmod`;
  mkdirSync(join(scratch, 'lib', 'modules'), { recursive: true });
  try {
    symlinkSync(outModules, join(scratch, 'lib', 'modules', a.version));
    const r = await execa('depmod', ['-b', scratch, a.version], { reject: false, all: true });
    if (r.exitCode !== 0) throw new CairnError(`depmod -b ${scratch} ${a.version} failed (exit ${r.exitCode}): ${r.all}`);
  } finally {
    removeTree(scratch);
  }
  if (!existsSync(join(outModules, 'modules.dep'))) throw new CairnError(`depmod wrote no modules.dep for ${a.version}`);
  staticNodes(outModules, ctx.out);
  loadableModules(files.map((f) => join(rel, f)), a.version, ctx.out);
});

/** Where a module tree names its modules, one link per name (see loadableModules). */
export const LOADABLE = (version: string): string => `usr/lib/cairn/kernel-modules/${version}`;
/** The drop-in of modprobe@.service a module tree ships with those names. */
export const MODPROBE_DROPIN = 'usr/lib/systemd/system/modprobe@.service.d/cairn-kernel-modules.conf';

/**
 * Units ask for modules through modprobe@<module>.service (logind for drm, the configfs mount for
 * configfs), whether or not the system has them; each such unit is a modprobe process before
 * sysinit.target that finds nothing (~0.6 s of a booting TCG guest apiece). A reduced tree lists
 * the names of its modules, `LOADABLE(version)/<name>` (a link to the module's file, under the
 * name with `_` and with `-`, as modprobe reads both), and a drop-in skips modprobe@ for any other
 * name. A built-in module has nothing to load and is not listed. The whole tree (hardware.enableAllHardware) ships neither.
 */
export function loadableModules(files: string[], version: string, root: string): void {
  const dir = join(root, LOADABLE(version));
  mkdirSync(dir, { recursive: true });
  for (const f of files) {
    const name = moduleName(f);
    for (const n of new Set([name, name.replace(/_/g, '-')])) symlinkSync(relative(dir, join(root, f)), join(dir, n));
  }
  const dropin = join(root, MODPROBE_DROPIN);
  mkdirSync(dirname(dropin), { recursive: true });
  writeFileSync(
    dropin,
    [
      '# Generated by cairn with the kernel module tree: modprobe@ loads only the modules of this system',
      '# (an instance names a module by its name, not an alias).',
      '[Unit]',
      `ConditionPathExists=/${LOADABLE('%v')}/%i`,
      '',
    ].join('\n'),
  );
}

/** Where the static device nodes of a module tree are listed, relative to its root (see staticNodes). */
export const STATIC_NODES = 'usr/lib/tmpfiles.d/static-nodes.conf';

/**
 * Turns depmod's modules.devname into the tmpfiles.d lines `kmod static-nodes --format=tmpfiles`
 * writes at every boot (kmod-static-nodes.service): the device nodes whose first open loads their
 * module (/dev/fuse, /dev/net/tun, /dev/loop-control, …). The tree never changes, so they are
 * written once here, in `STATIC_NODES`, and modules.devname goes: the unit is then skipped
 * (ConditionFileNotEmpty), one process fewer between systemd's start and udev. Under emulation
 * that process costs ~0.4 s on the way to network.target.
 */
export function staticNodes(modulesDir: string, root: string): void {
  const devname = join(modulesDir, 'modules.devname');
  if (!existsSync(devname)) return;
  const lines: string[] = [];
  for (const line of readFileSync(devname, 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // `<module> <devname> <c|b><major>:<minor>`, as kmod parses it.
    const m = /^(\S+)\s+(\S+)\s+([cb])(\d+):(\d+)\s*$/.exec(line);
    if (!m) throw new CairnError(`${devname}: cannot read the line \`${line}'`);
    const [, , dev, type, major, minor] = m;
    const slash = dev!.lastIndexOf('/');
    const dir = slash > 0 ? `d /dev/${dev!.slice(0, slash)} 0755 - - -` : undefined;
    if (dir && !lines.includes(dir)) lines.push(dir);
    lines.push(`${type}! /dev/${dev} 0600 - - - ${major}:${minor}`);
  }
  const out = join(root, STATIC_NODES);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, lines.map((l) => `${l}\n`).join(''));
  rmSync(devname);
}
