/**
 * The hand-off from options to the build: what later stages (build, image, vm, testing, the CLI)
 * need of an evaluated configuration, read at its option paths once and checked, as one typed
 * record. Defaults live in the option declarations only: this file restates none.
 *
 * Sections are read on first use, so a caller that needs one (the VM's vlans) does not force the
 * whole configuration; a value of the wrong shape (a module declaring an option differently) is a
 * CairnError naming the option.
 */
import { CairnError } from '../errors.js';
import { showOption } from '../lib/show.js';
import type { RepositorySpec } from '../debian/sources.js';

/** An entry of `environment.builtPackages`: a store path of cairn's own builders. */
export interface BuiltPackageSpec {
  name: string;
  builder: string;
  args: Record<string, unknown>;
  /** Debian package names it is built from. */
  packages: string[];
}

/** A file system stage 1 mounts (`boot.initrd.fileSystems`). */
export interface BootFileSystem {
  device: string;
  mountPoint: string;
  fsType: string;
  options: string;
}

/** `boot.loader.systemd-boot` when enabled, with the ESP's mount point when the machine has one. */
export interface SystemdBootSpec {
  timeout: number | null;
  editor: boolean;
  configurationLimit: number | null;
  /** Boots a new default generation gets; 0: no boot counting. */
  tries: number;
  /** `boot.loader.efi.efiSysMountPoint` when `fileSystems` mounts it; null: no ESP (a directly booted VM). */
  esp: string | null;
}

export interface GrubSpec {
  timeout: number | null;
  configurationLimit: number;
  /** `boot.loader.grub.devices` (with `device`): disks `cairn boot --root` installs GRUB to. */
  devices: string[];
  extraEntries: string;
  /** As for systemd-boot: where the FAT partition with grub.cfg and the kernels is mounted, or null. */
  esp: string | null;
}

/** An entry of `environment.etc`. */
export interface EtcOption {
  enable: boolean;
  target: string;
  text: string | null;
  source: string | null;
  symlink: string | null;
  mode: string;
  user: string;
  group: string;
}

/** An entry of `users.users`. */
export interface UserOption {
  name: string;
  uid: number | null;
  isNormalUser: boolean;
  isSystemUser: boolean;
  description: string;
  group: string;
  extraGroups: string[];
  home: string;
  createHome: boolean;
  shell: string;
  hashedPassword: string | null;
  hashedPasswordFile: string | null;
  /** Plain text: hashed by the users builder, never stored as is. */
  password?: string | null;
  initialPassword?: string | null;
  initialHashedPassword?: string | null;
}

/** An entry of `users.groups`. */
export interface GroupOption {
  name: string;
  gid: number | null;
  members: string[];
}

/** A snippet of `system.activationScripts`: a string, or text with dependencies. */
export type SnippetOption = string | { text: string; deps: string[] };

/** A port forward of `virtualisation.forwardPorts`. */
export interface ForwardPort {
  proto: 'tcp' | 'udp';
  hostPort: number;
  guestPort: number;
}

/** An entry of `system.checks`: a program of `package` checking generated files (src/build/checks.ts). */
export interface CheckSpec {
  enable: boolean;
  package: string;
  program: string;
  args: string[];
  setup: string[][];
  files: Record<string, string>;
  options: string[];
}

export interface SystemSpec {
  /** `system.name`, `system.label`. */
  name: string;
  label: string;
  packages: {
    /** `system.basePackages`. */
    base: string[];
    /** `environment.systemPackages`. */
    system: string[];
    /** `environment.builtPackages`. */
    built: BuiltPackageSpec[];
    /** `system.build.bootPackages`: what only the build uses (initrd tools). */
    bootOnly: string[];
    /** `boot.kernelPackage`; null: a system without a kernel. */
    kernel: string | null;
    /** `packages.repositories`; an entry without `uri` or `keyring` takes the host's for its suite. */
    repositories: RepositorySpec[];
    installRecommends: boolean;
    /** `environment.extraOutputsToInstall`: the packages' outputs besides `out`. */
    outputs: string[];
  };
  boot: {
    kernelParams: string[];
    /** `earlyMicrocode`: CPU vendors whose microcode is prepended to the initrd; `blacklist`: modules whose aliases stage 1 leaves out. */
    initrd: { modules: string[]; load: string[]; fileSystems: BootFileSystem[]; earlyMicrocode: ('intel' | 'amd')[]; blacklist: string[] };
    /** `system.build.kernelModules`: what the system's module tree holds; null: the kernel's whole tree. */
    kernelModules: { required: string[]; optional: string[] } | null;
    /** The root file system stage 1 mounts, or null when none is declared. */
    root: { device: string; fsType: string } | null;
    /** null: systemd-boot is not enabled. */
    systemdBoot: SystemdBootSpec | null;
    /** null: GRUB is not enabled. */
    grub: GrubSpec | null;
  };
  etc: Record<string, EtcOption>;
  users: { users: Record<string, UserOption>; groups: Record<string, GroupOption>; mutableUsers: boolean };
  activationScripts: Record<string, SnippetOption>;
  /** `system.checks`. */
  checks: Record<string, CheckSpec>;
  image: { headroom: string; espSize: string };
  vm: {
    /** `virtualisation.vm`: built to boot in QEMU (state disk, store disk). */
    enable: boolean;
    useBootLoader: boolean;
    /** `virtualisation.useEFIBoot`: OVMF rather than SeaBIOS. */
    useEFIBoot: boolean;
    memorySize: number;
    cores: number;
    diskSize: string;
    vlans: number[];
    forwardPorts: ForwardPort[];
    /** `services.qemuGuest.enable`: the VM gets the agent's virtio port. */
    guestAgent: boolean;
    /** What the user network needs of `networking`: eth0's first static IPv4 address, the gateway, name servers. */
    network: { eth0Ipv4: { address: string; prefixLength: number } | null; defaultGateway: string | null; nameservers: string[] };
  };
}

type Path = readonly string[];

function wrong(path: Path, expected: string, v: unknown): CairnError {
  let shown: string;
  try {
    shown = JSON.stringify(v) ?? String(v);
  } catch {
    shown = String(v);
  }
  return new CairnError(`${showOption(path)}: expected ${expected}, got ${shown} (is a module declaring this option differently?)`);
}

/** The value at an option path; a missing namespace means a module that declares it is missing. */
function at(config: unknown, path: Path): unknown {
  let v = config;
  for (let i = 0; i < path.length; i++) {
    if (v === null || typeof v !== 'object') throw new CairnError(`${showOption(path.slice(0, i))} holds no options: \`${showOption(path)}' is not declared`);
    v = (v as Record<string, unknown>)[path[i]!];
    if (v === undefined) throw new CairnError(`the option \`${showOption(path)}' is not declared (a built-in module is missing?)`);
  }
  return v;
}

type Read<T> = (v: unknown, path: Path) => T;

const str: Read<string> = (v, p) => {
  if (typeof v !== 'string') throw wrong(p, 'a string', v);
  return v;
};
const bool: Read<boolean> = (v, p) => {
  if (typeof v !== 'boolean') throw wrong(p, 'a boolean', v);
  return v;
};
const int: Read<number> = (v, p) => {
  if (!Number.isSafeInteger(v)) throw wrong(p, 'an integer', v);
  return v as number;
};
const nullOr =
  <T>(read: Read<T>): Read<T | null> =>
  (v, p) =>
    v === null ? null : read(v, p);
const listOf =
  <T>(read: Read<T>): Read<T[]> =>
  (v, p) => {
    if (!Array.isArray(v)) throw wrong(p, 'a list', v);
    return v.map((x, i) => read(x, [...p.slice(0, -1), `${p[p.length - 1]}[${i}]`]));
  };
const record: Read<Record<string, unknown>> = (v, p) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw wrong(p, 'an attribute set', v);
  return v as Record<string, unknown>;
};
const attrsOf =
  <T>(read: Read<T>): Read<Record<string, T>> =>
  (v, p) => {
    const r = record(v, p);
    return Object.fromEntries(Object.keys(r).map((k) => [k, read(r[k], [...p, k])]));
  };
/** A submodule value: each field read by its reader (only the fields the build uses). */
const fields =
  <T>(readers: { [K in keyof T]: Read<T[K]> }): Read<T> =>
  (v, p) => {
    const r = record(v, p);
    const out = {} as T;
    for (const k of Object.keys(readers) as (keyof T & string)[]) out[k] = readers[k](r[k], [...p, k]);
    return out;
  };
/** A package value: a `Package` (by its name) or a name. */
const packageName: Read<string> = (v, p) => {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { name?: unknown }).name === 'string') return (v as { name: string }).name;
  throw new CairnError(`${showOption(p)}: cannot use ${JSON.stringify(v)} as a Debian package`);
};
const packageNames: Read<string[]> = (v, p) => {
  if (!Array.isArray(v)) throw wrong(p, 'a list of packages', v);
  return v.map((x) => packageName(x, p));
};

/** An object whose properties are computed on first read, once. */
function lazily<T extends object>(make: { [K in keyof T]: () => T[K] }): T {
  const out = {} as T;
  for (const k of Object.keys(make) as (keyof T & string)[]) {
    let done = false;
    let value: T[typeof k];
    Object.defineProperty(out, k, {
      enumerable: true,
      get: () => {
        if (!done) {
          value = make[k]();
          done = true;
        }
        return value;
      },
    });
  }
  return out;
}

/** The build's record of an evaluated configuration (`config` of an evaluation). */
export function systemSpec(config: unknown): SystemSpec {
  const get = <T>(read: Read<T>, ...path: string[]): T => read(at(config, path), path);
  return lazily<SystemSpec>({
    name: () => get(str, 'system', 'name'),
    label: () => get(str, 'system', 'label'),
    packages: () => {
      const builtPath = ['environment', 'builtPackages'];
      const built = listOf(record)(at(config, builtPath), builtPath).map((b, i): BuiltPackageSpec => {
        const p = [...builtPath.slice(0, -1), `builtPackages[${i}]`];
        const name = str(b.name, [...p, 'name']);
        return { name, builder: str(b.builder, [...p, 'builder']), args: record(b.args, [...p, 'args']), packages: packageNames(b.packages, [`environment.builtPackages (${name}).packages`]) };
      });
      const kernel = at(config, ['boot', 'kernelPackage']);
      return {
        base: get(packageNames, 'system', 'basePackages'),
        system: get(packageNames, 'environment', 'systemPackages'),
        built,
        bootOnly: get(packageNames, 'system', 'build', 'bootPackages'),
        kernel: kernel === null ? null : packageName(kernel, ['boot', 'kernelPackage']),
        repositories: get(listOf(fields({ uri: nullOr(str), suite: str, components: listOf(str), architecture: str, keyring: nullOr(str) })), 'packages', 'repositories').map(
          (r): RepositorySpec => ({ suite: r.suite, components: r.components, architecture: r.architecture, ...(r.uri ? { uri: r.uri } : {}), ...(r.keyring ? { keyring: r.keyring } : {}) }),
        ),
        installRecommends: get(bool, 'packages', 'installRecommends'),
        outputs: get(listOf(str), 'environment', 'extraOutputsToInstall'),
      };
    },
    boot: () => {
      const fileSystems = get(listOf(fields<BootFileSystem>({ device: str, mountPoint: str, fsType: str, options: str })), 'boot', 'initrd', 'fileSystems');
      const rootFs = fileSystems.find((f) => f.mountPoint === '/');
      const sdPath = ['boot', 'loader', 'systemd-boot'];
      const sd = get(
        fields({ enable: bool, timeout: nullOr(int), editor: bool, configurationLimit: nullOr(int), bootCounting: fields({ enable: bool, tries: int }) }),
        ...sdPath,
      );
      const grubOpts = get(fields({ enable: bool, devices: listOf(str), configurationLimit: int, extraEntries: str }), 'boot', 'loader', 'grub');
      const espMount = get(str, 'boot', 'loader', 'efi', 'efiSysMountPoint');
      const mounted = Object.prototype.hasOwnProperty.call(get(record, 'fileSystems'), espMount);
      const grub: GrubSpec | null = grubOpts.enable
        ? {
            timeout: get(nullOr(int), 'boot', 'loader', 'timeout'),
            configurationLimit: grubOpts.configurationLimit,
            devices: [...new Set(grubOpts.devices)],
            extraEntries: grubOpts.extraEntries,
            esp: mounted ? espMount : null,
          }
        : null;
      let systemdBoot: SystemdBootSpec | null = null;
      if (sd.enable) {
        systemdBoot = {
          timeout: sd.timeout,
          editor: sd.editor,
          configurationLimit: sd.configurationLimit,
          tries: sd.bootCounting.enable ? sd.bootCounting.tries : 0,
          esp: mounted ? espMount : null,
        };
      }
      return {
        kernelParams: get(listOf(str), 'boot', 'kernelParams'),
        initrd: {
          modules: get(listOf(str), 'boot', 'initrd', 'modules'),
          load: get(listOf(str), 'boot', 'initrd', 'load'),
          fileSystems,
          earlyMicrocode: [...new Set(get(listOf(str), 'boot', 'initrd', 'earlyMicrocode'))].sort() as ('intel' | 'amd')[],
          blacklist: get(listOf(str), 'boot', 'blacklistedKernelModules'),
        },
        kernelModules: get(nullOr(fields({ required: listOf(str), optional: listOf(str) })), 'system', 'build', 'kernelModules'),
        root: rootFs ? { device: rootFs.device, fsType: rootFs.fsType } : null,
        systemdBoot,
        grub,
      };
    },
    etc: () =>
      get(
        attrsOf(
          fields<EtcOption>({
            enable: bool,
            target: str,
            text: nullOr(str),
            source: nullOr(str),
            symlink: nullOr(str),
            mode: str,
            user: str,
            group: str,
          }),
        ),
        'environment',
        'etc',
      ),
    users: () => ({
      users: get(
        attrsOf(
          fields<UserOption>({
            name: str,
            uid: nullOr(int),
            isNormalUser: bool,
            isSystemUser: bool,
            description: str,
            group: str,
            extraGroups: listOf(str),
            home: str,
            createHome: bool,
            shell: str,
            hashedPassword: nullOr(str),
            hashedPasswordFile: nullOr(str),
            password: nullOr(str),
            initialPassword: nullOr(str),
            initialHashedPassword: nullOr(str),
          }),
        ),
        'users',
        'users',
      ),
      groups: get(attrsOf(fields<GroupOption>({ name: str, gid: nullOr(int), members: listOf(str) })), 'users', 'groups'),
      mutableUsers: get(bool, 'users', 'mutableUsers'),
    }),
    activationScripts: () =>
      get(
        attrsOf<SnippetOption>((v, p) => (typeof v === 'string' ? v : fields({ text: str, deps: listOf(str) })(v, p))),
        'system',
        'activationScripts',
      ),
    checks: () =>
      get(
        attrsOf(fields<CheckSpec>({ enable: bool, package: packageName, program: str, args: listOf(str), setup: listOf(listOf(str)), files: attrsOf(str), options: listOf(str) })),
        'system',
        'checks',
      ),
    image: () => ({ headroom: get(str, 'image', 'headroom'), espSize: get(str, 'image', 'espSize') }),
    vm: () => {
      const eth0 = (get(record, 'networking', 'interfaces').eth0 ?? null) as unknown;
      const addresses = eth0 === null ? [] : listOf(fields({ address: str, prefixLength: int }))(at(eth0, ['ipv4', 'addresses']), ['networking', 'interfaces', 'eth0', 'ipv4', 'addresses']);
      const gw = at(config, ['networking', 'defaultGateway']);
      const gwPath = ['networking', 'defaultGateway'];
      return {
        enable: get(bool, 'virtualisation', 'vm'),
        useBootLoader: get(bool, 'virtualisation', 'useBootLoader'),
        useEFIBoot: get(bool, 'virtualisation', 'useEFIBoot'),
        memorySize: get(int, 'virtualisation', 'memorySize'),
        cores: get(int, 'virtualisation', 'cores'),
        diskSize: get(str, 'virtualisation', 'diskSize'),
        vlans: get(listOf(int), 'virtualisation', 'vlans'),
        forwardPorts: get(
          listOf(
            fields<ForwardPort>({
              proto: (v, p) => {
                if (v !== 'tcp' && v !== 'udp') throw wrong(p, "'tcp' or 'udp'", v);
                return v;
              },
              hostPort: int,
              guestPort: int,
            }),
          ),
          'virtualisation',
          'forwardPorts',
        ),
        guestAgent: get(bool, 'services', 'qemuGuest', 'enable'),
        network: {
          eth0Ipv4: addresses[0] ?? null,
          defaultGateway: gw === null ? null : typeof gw === 'string' ? gw : str(record(gw, gwPath).address, [...gwPath, 'address']),
          nameservers: get(listOf(str), 'networking', 'nameservers'),
        },
      };
    },
  });
}
