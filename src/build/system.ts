/**
 * Building a system: configuration → evaluated options → derivations → store paths → toplevel.
 *
 *   packages   base + environment.systemPackages + kernel (+ build-only boot packages), locked
 *              beside the configuration and unpacked into the store
 *   duties     alternatives and PAM files the packages' scripts would have made (one layer)
 *   sw         the merged system environment: /usr of the running system, with layers of files
 *              the packages' scripts would have made (triggers, Python's compiled modules)
 *   etc        the generated /etc (package files + environment.etc), linked via /etc/static
 *   toplevel   init, activate, etc, sw, kernel, initrd, boot.json, configuration.json, …
 *
 * Every step is a derivation, so an unchanged configuration rebuilds nothing and gives the same
 * toplevel path, from this store or an empty one.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { CairnError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { toPlain, type SystemEvaluation } from '../eval/index.js';
import { findOption } from '../eval/inspect.js';
import type { BuiltPackageSpec } from '../eval/spec.js';
import { formatLocation, type Evaluation } from '../lib/index.js';
import { buildEnv, type Derivation, type Store } from '../store/index.js';
import { lockPackages, lockPathFor, realisePackages, resolveRepositories, serializeLock, type LockFile } from '../debian/index.js';
import { bootJsonText, configurationJsonText, type LoaderSettings } from '../toplevel/index.js';
import { dutiesDerivation, readAlternatives, type BuiltPackage, type ChosenAlternative } from './duties.js';
import { etcDerivation, etcEntries } from './etc.js';
import { usersSpecDerivation, UsersOptionError } from './users.js';
import { apiMountsFstab } from './api-mounts.js';
import { activateScript, initScript, scriptText, switchScript } from './activate.js';
import { loaderFiles } from './loader.js';
import { treeDerivation, type TreeEntry } from './tree.js';
import { bootDerivations } from './initrd.js';
import { depmodDerivation, kernelFromName, kernelImageDerivation, kernelInfo, kernelTreeDerivation, readModuleIndex, unknownModules, type KernelInfo, type ModuleIndex } from './kernel.js';
import { runChecks } from './checks.js';
import { infoDirDerivation, triggersDerivation } from './triggers.js';
import { bytecodeDerivations } from './python.js';

export { portableConfig } from '../toplevel/index.js';

export interface BuildSystemOptions {
  store: Store;
  /** Lock file (default: beside the configuration, `<name>.lock`). */
  lockPath?: string;
  /** Packages unpacked at once. */
  jobs?: number;
  /** Progress lines (stages, unpacking). */
  onProgress?: (message: string) => void;
}

export interface BuiltSystem {
  /** Logical store path of the toplevel. */
  toplevel: string;
  sw: string;
  etc: string;
  /** `<kernel package>/boot/vmlinuz-<version>`, or null when the system has no kernel. */
  kernel: string | null;
  initrd: string | null;
  /** Every runtime package, by name. */
  packages: BuiltPackage[];
  alternatives: ChosenAlternative[];
  /** The toplevel's closure (sorted logical paths). */
  closure: string[];
  warnings: string[];
}

/** `file:line:col` of every definition of an option, for messages. */
export function definitionSites(ev: Evaluation, path: string[]): string {
  try {
    const found = findOption(ev, path);
    if ('namespace' in found || !found.definitions) return 'its default';
    const sites = found.definitions().map((d) => formatLocation(d.loc));
    return sites.length > 0 ? sites.join(', ') : 'its default';
  } catch {
    return 'unknown location';
  }
}

/** Where the entry `key` of an attribute-set option was defined (falls back to the option's sites). */
export function attrDefinitionSites(ev: Evaluation, path: string[], key: string): string {
  try {
    const found = findOption(ev, path);
    if ('namespace' in found || !found.definitions) return 'its default';
    const defs = found.definitions().filter((d) => d.value !== null && typeof d.value === 'object' && Object.prototype.hasOwnProperty.call(d.value, key));
    return defs.length > 0 ? defs.map((d) => formatLocation(d.loc)).join(', ') : definitionSites(ev, path);
  } catch {
    return 'unknown location';
  }
}

/** The options that name kernel modules, checked against the kernel before anything is built from them. */
const MODULE_OPTIONS = [
  ['boot', 'kernelModules'],
  ['boot', 'availableKernelModules'],
  ['boot', 'initrd', 'availableKernelModules'],
  ['boot', 'initrd', 'kernelModules'],
];

/** A CairnError naming the option and its definition when a module option names no module of the kernel. */
function checkModuleNames(ev: Evaluation, config: unknown, index: ModuleIndex, version: string): void {
  for (const path of MODULE_OPTIONS) {
    let value: unknown = config;
    for (const k of path) value = (value as Record<string, unknown> | undefined)?.[k];
    if (!Array.isArray(value)) continue;
    const unknown = unknownModules(index, value.filter((v): v is string => typeof v === 'string'));
    if (unknown.length === 0) continue;
    const name = unknown[0]!;
    throw new CairnError(
      `${path.join('.')}: '${name}' is no module of kernel ${version} (not a module file, built in, nor an alias of one), ` +
        `defined at ${listDefinitionSites(ev, path, name)}`,
    );
  }
}

/** Where the list option `path` got the element `item` (falls back to the option's sites). */
function listDefinitionSites(ev: Evaluation, path: string[], item: string): string {
  try {
    const found = findOption(ev, path);
    if ('namespace' in found || !found.definitions) return 'its default';
    const defs = found.definitions().filter((d) => Array.isArray(d.value) && d.value.includes(item));
    return defs.length > 0 ? defs.map((d) => formatLocation(d.loc)).join(', ') : definitionSites(ev, path);
  } catch {
    return 'unknown location';
  }
}

/** An environment.builtPackages entry's derivation: the Debian packages it names are its inputs, and its `args.packages` (name → store path). */
function builtPackageDerivation(spec: BuiltPackageSpec, realised: Map<string, string>): Derivation {
  const packages: Record<string, string> = {};
  for (const name of spec.packages) {
    const path = realised.get(name);
    if (!path) throw new CairnError(`environment.builtPackages (${spec.name}): package ${name} is not in the lock`);
    packages[name] = path;
  }
  return { name: spec.name, builder: spec.builder, args: { ...spec.args, packages }, inputs: [...new Set(Object.values(packages))].sort() };
}

/** A layer of sw linking the programs in the `bin/` of each path into usr/bin. */
function binLinksDerivation(store: Store, paths: string[]): Derivation {
  const entries: Record<string, TreeEntry> = {};
  for (const p of paths) {
    const bin = join(store.toPhysical(p), 'bin');
    for (const name of existsSync(bin) ? readdirSync(bin).sort() : []) entries[`usr/bin/${name}`] = { link: `${p}/bin/${name}` };
  }
  return treeDerivation('system-built-bin', entries, paths);
}

/** The packages reachable from `roots` through the lock's dependency records. */
export function lockClosure(lock: LockFile, roots: string[]): Set<string> {
  const byName = new Map(lock.packages.map((p) => [p.name, p]));
  const seen = new Set<string>();
  const todo = roots.filter((r) => byName.has(r));
  while (todo.length > 0) {
    const n = todo.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const d of byName.get(n)!.depends ?? []) if (!seen.has(d)) todo.push(d);
  }
  return seen;
}

/**
 * The kernel of the system: from the name of the Debian package in `root`'s closure that holds it
 * (kernelFromName); read from that package instead when it is in the store, and checked against
 * the name; found by content among every package when no name says (all of them realised then).
 */
async function kernelOf(
  store: Store,
  lock: LockFile,
  root: string,
  packages: { name: string; storePath: string }[],
  realise: (names: Iterable<string>) => Promise<void>,
): Promise<KernelInfo> {
  const closure = lockClosure(lock, [root]);
  const named = packages.flatMap((p) => (closure.has(p.name) ? (kernelFromName(p.name, p.storePath) ?? []) : []));
  if (named.length === 1) {
    const k = named[0]!;
    if (!store.isValid(k.storePath)) return k;
    const read = kernelInfo(store, k.storePath);
    if (read.version !== k.version) throw new CairnError(`${k.storePath} holds kernel ${read.version}, not the ${k.version} its name says`);
    return read;
  }
  await realise(packages.map((p) => p.name));
  return kernelInfo(store, packages.map((p) => p.storePath));
}

/**
 * Builds the toplevel of an evaluated configuration (`evalConfigFile`): its lock is beside the
 * configuration file, and paths under the file's folder are recorded relative to it.
 */
export async function buildSystem(system: SystemEvaluation, opts: BuildSystemOptions): Promise<BuiltSystem> {
  const { store } = opts;
  const progress = opts.onProgress ?? (() => {});
  // 1. Options: evaluated by the caller; the build reads the spec.
  const { evaluation: ev, spec, warnings, file } = system;
  if (file === null) throw new CairnError('a system is built from a configuration file (its lock and relative paths are beside it): evaluate it with evalConfigFile');
  const systemName = spec.name;
  const label = spec.label;

  // 2. Packages: what runs on the system, and what only its build needs (initrd tools).
  const pkgs = spec.packages;
  const kernelNames = pkgs.kernel === null ? [] : [pkgs.kernel];
  const built = pkgs.built;
  const runtimeRoots = [...pkgs.base, ...pkgs.system, ...built.flatMap((b) => b.packages), ...kernelNames];
  const request = [...new Set([...runtimeRoots, ...pkgs.bootOnly])].sort();
  // Completed here, outside the package errors below: a missing archive is not a package's fault.
  const repositories = resolveRepositories(pkgs.repositories);
  const lockPath = opts.lockPath ?? lockPathFor(file);
  progress('locking packages');
  let locked;
  try {
    locked = await lockPackages({ packages: request, repositories, installRecommends: pkgs.installRecommends }, { lockPath });
  } catch (err) {
    if (!(err instanceof CairnError)) throw err;
    // Name the options the failing package may come from, with where they were defined.
    const sites = [
      `environment.systemPackages (${definitionSites(ev, ['environment', 'systemPackages'])})`,
      ...(kernelNames.length > 0 ? [`boot.kernelPackage = ${kernelNames[0]}`] : []),
    ];
    throw new CairnError(`${err.message}\n  the system's packages come from ${sites.join('; ')}`, { cause: err });
  }
  const { lock } = locked;
  progress(locked.resolved ? `resolved ${lock.packages.length} packages (wrote ${lockPath})` : `${lock.packages.length} packages from ${lockPath}`);
  // Every package's store path; made valid are the system's own packages, and the build-only
  // ones (initrd tools, a kernel package whose modules a tree stands in for) only when something
  // must be built from them: a machine building its next generation has none of them.
  const unpack = { jobs: opts.jobs, onProgress: (done: number, total: number, name: string) => progress(`unpacking ${done}/${total} ${name}`) };
  const realised = await realisePackages(lock, locked.repositories, store, { ...unpack, only: new Set() });
  const made = new Set<string>();
  const realise = async (names: Iterable<string>): Promise<void> => {
    const todo = new Set([...names].filter((n) => !made.has(n)));
    if (todo.size === 0) return;
    await realisePackages(lock, locked.repositories, store, { ...unpack, only: todo });
    for (const n of todo) made.add(n);
  };
  const nameOf = new Map(realised.map((p) => [p.storePath, p.name]));
  /** Builds `drv` (or finds its output valid), first realising the packages among its inputs when it must be built. */
  const build = async (drv: Derivation): Promise<string> => {
    if (!store.isValid(store.outputPath(drv))) await realise(drv.inputs.flatMap((i) => nameOf.get(i) ?? []));
    return store.build(drv);
  };

  // 3. Kernel, its module index (depmod, a layer of sw) and the initrd (the initrd's tools are
  //    build-only). Without hardware.enableAllHardware, a tree of the modules the system can load
  //    stands in for the kernel package (and its ~400 MB of modules) in sw and the toplevel.
  const selection = spec.boot.kernelModules;
  const info = kernelNames.length > 0 ? await kernelOf(store, lock, kernelNames[0]!, realised, realise) : undefined;
  const treeMode = info !== undefined && selection !== null;
  const runtime = lockClosure(lock, runtimeRoots);
  if (treeMode) runtime.delete(nameOf.get(info.storePath)!);
  await realise(runtime);
  const packages = realised.filter((p) => runtime.has(p.name)).map((p) => ({ name: p.name, storePath: p.storePath })).sort((a, b) => (a.name < b.name ? -1 : 1));
  // The packages' other outputs the configuration asks for (documentation, translations), named
  // `<package>:<output>` (no Debian package name has a colon): they join sw and the duties' view of it.
  const outputs = (pkgs.outputs.length === 0 ? [] : await realisePackages(lock, locked.repositories, store, { ...unpack, only: runtime, outputs: pkgs.outputs }))
    .filter((p) => runtime.has(p.name))
    .flatMap((p) => Object.entries(p.outputs).map(([o, storePath]) => ({ name: `${p.name}:${o}`, storePath })))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  // The generated files, checked by the system's own programs before anything else is built.
  await runChecks(store, ev, spec.checks, packages, progress);

  let kernel: { image: string; version: string; pkg: string } | undefined;
  let initrd: string | null = null;
  const swLayers: string[] = [];
  if (info) {
    const all = realised.map((p) => ({ name: p.name, storePath: p.storePath }));
    const { depmod, initrd: initrdDrv } = bootDerivations(store, spec.boot.initrd, all, info);
    const tree = selection === null ? undefined : kernelTreeDerivation(info, store.outputPath(depmod), selection);
    const valid = (drv: Derivation) => store.isValid(store.outputPath(drv));
    // Module names are checked against the kernel's whole index before the initrd or the tree is
    // built from them, the unknown one reported with the option defining it; outputs already valid
    // were built from names checked then, and need neither the index nor the kernel package.
    // depmod's output is built here whenever anything below needs it: the initrd, the tree, or sw
    // (without a tree, it is a layer of sw).
    let meta: string | undefined;
    if (!tree || !valid(tree) || !valid(initrdDrv)) {
      meta = await build(depmod);
      await realise([nameOf.get(info.storePath)!]);
      checkModuleNames(ev, system.config, readModuleIndex(join(store.toPhysical(meta), info.modulesDir), join(store.toPhysical(info.storePath), info.modulesDir)), info.version);
    }
    progress('building the initrd');
    initrd = `${await build(initrdDrv)}/initrd`;
    if (!tree) {
      kernel = { image: `${info.storePath}/${info.image}`, version: info.version, pkg: info.storePath };
      swLayers.push(meta!);
    } else {
      progress('building the kernel module tree');
      const treePath = await build(tree);
      const image = await build(kernelImageDerivation(info));
      kernel = { image: `${image}/${info.image}`, version: info.version, pkg: image };
      swLayers.push(treePath);
    }
  }

  // 4. sw: the packages plus the generated layers, which win where they overlap.
  if (built.length > 0) {
    progress(`building ${built.map((b) => b.name).join(', ')}`);
    const byName = new Map(packages.map((p) => [p.name, p.storePath]));
    const paths = await Promise.all(built.map((b) => store.build(builtPackageDerivation(b, byName))));
    swLayers.push(await store.build(binLinksDerivation(store, paths)));
  }
  progress('building sw');
  // Alternatives' slave links into an output (a manual page) are made when the output is there.
  const dutiesPath = await store.build(dutiesDerivation([...packages, ...outputs]));
  const triggers = triggersDerivation(store, packages);
  if (triggers) swLayers.push(await store.build(triggers));
  const infoDir = infoDirDerivation(store, [...packages, ...outputs]);
  if (infoDir) swLayers.push(await store.build(infoDir));
  swLayers.push(...(await store.buildAll(bytecodeDerivations(store, packages))));
  const sw = await store.build(
    buildEnv('system-sw', [dutiesPath, ...swLayers, ...[...packages, ...outputs].map((p) => p.storePath)], { priority: { [dutiesPath]: 0 } }),
  );

  // 5. etc.
  progress('building etc');
  const entries = etcEntries(spec.etc, (name) => attrDefinitionSites(ev, ['environment', 'etc'], name));
  const etc = await store.build(etcDerivation(sw, entries));

  // 6. The toplevel.
  progress('building the toplevel');
  const bash = `${sw}/usr/bin/bash`;
  const kernelParams = spec.boot.kernelParams;
  const snippets = spec.activationScripts;
  // Checked before anything is written: a bad user or group fails the build with its option named.
  const usersPath = await store
    .build(usersSpecDerivation(packages, { users: spec.users.users, groups: spec.users.groups }, scriptText('activate/users.awk')))
    .catch((err: unknown) => {
      // The builder names the option; the evaluation knows where the user defined it.
      for (let e = err; e instanceof Error; e = e.cause) {
        if (e instanceof UsersOptionError) throw new CairnError(`${e.message} (${definitionSites(ev, e.option)})`, { cause: err });
      }
      throw err;
    });
  const lockHash = createHash('sha256').update(serializeLock(lock)).digest('hex');
  const sd = spec.boot.systemdBoot;
  const rootFs = spec.boot.root;
  // Key order is part of boot.json (and so of the toplevel's hash).
  const grub = spec.boot.grub;
  const loader: LoaderSettings | null = sd
    ? {
        type: 'systemd-boot',
        efi: `${sw}/usr/lib/systemd/boot/efi/systemd-bootx64.efi`,
        timeout: sd.timeout,
        editor: sd.editor,
        configurationLimit: sd.configurationLimit,
        tries: sd.tries,
        esp: sd.esp,
        ...(grub ? { grub: { timeout: grub.timeout, configurationLimit: grub.configurationLimit, devices: grub.devices } } : {}),
      }
    : grub
      ? {
          // GRUB alone: the shared settings are GRUB's; no boot counting (see install-bootloader).
          type: 'grub',
          efi: null,
          timeout: grub.timeout,
          editor: false,
          configurationLimit: grub.configurationLimit,
          tries: 0,
          esp: grub.esp,
          grub: { timeout: grub.timeout, configurationLimit: grub.configurationLimit, devices: grub.devices },
        }
      : null;
  const bootLabel = `cairn ${label} (${systemName})`;
  const apiMounts = apiMountsFstab(store.toPhysical(sw), spec.etc);
  const files: Record<string, TreeEntry> = {
    activate: { text: activateScript({ bash, sw, etc, users: usersPath, mutableUsers: spec.users.mutableUsers }, snippets), executable: true },
    init: { text: initScript({ bash, sw, systemd: `${sw}/usr/lib/systemd/systemd` }), executable: true },
    ...(apiMounts ? { 'api-mounts': { text: apiMounts } } : {}),
    'bin/switch-to-configuration': { text: switchScript({ bash, sw }), executable: true },
    etc: { link: `${etc}/etc` },
    sw: { link: sw },
    'kernel-params': { text: kernelParams.join(' ') + '\n' },
    'boot.json': {
      text: bootJsonText({ label: bootLabel, kernel: kernel?.image ?? null, kernelVersion: kernel?.version ?? null, initrd, kernelParams, root: rootFs, loader }),
    },
    // The whole option tree, not the spec: `cairn generations` compares it, and images read options from it.
    'configuration.json': { text: configurationJsonText(lockHash, toPlain(system.config), dirname(file)) },
    'cairn-version': { text: `${label}\n` },
    system: { text: 'x86_64-linux\n' },
    users: { link: usersPath },
  };
  if (kernel) files.kernel = { link: kernel.image };
  if (initrd) files.initrd = { link: initrd };
  if (kernel && initrd && loader && rootFs) {
    Object.assign(files, loaderFiles({ label: bootLabel, kernel, initrd, rootDevice: rootFs.device, kernelParams, sw, bash, loader, grubExtraEntries: grub?.extraEntries ?? '' }));
  }
  const inputs = [sw, etc, usersPath, ...(kernel ? [kernel.pkg] : []), ...(initrd ? [store.parse(initrd).logical] : [])];
  const toplevel = await store.build(treeDerivation(`cairn-system-${systemName}-${label}`, files, inputs));
  let closure: string[] | undefined;
  return {
    toplevel,
    sw,
    etc,
    kernel: kernel?.image ?? null,
    initrd,
    packages,
    alternatives: readAlternatives(store, dutiesPath),
    // It reads the metadata of every path, and most callers don't need it.
    get closure() {
      return (closure ??= store.closure([toplevel]));
    },
    warnings,
  };
}

/** Paths of this machine that must never occur in a closure. */
export function hostPathNeedles(store: Store, configPath: string): string[] {
  const home = process.env.HOME ?? homedir();
  // A HOME that Debian's own files name (/root, /) cannot be told apart from them.
  const needles = [store.dir, projectRoot, dirname(resolve(configPath))];
  if (home && !['/', '/root'].includes(home)) needles.push(home);
  return [...new Set(needles)];
}
