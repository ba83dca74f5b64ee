/**
 * What `cairn init` learns about a machine, the facts nixos-generate-config gathers: the file
 * systems mounted under the target root (by UUID or label), active swap, the drivers the disks
 * need in the initrd, the firmware (UEFI or BIOS) and the disk the root is on, the network
 * interfaces, the host name and the invoking user's SSH keys.
 *
 * Every file is read through `host`, the folder the running machine's /proc, /sys, /dev and
 * /etc are found under ('/' normally): tests hand it a fake tree.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';

export type Firmware = 'uefi' | 'bios';

export interface DetectedFileSystem {
  mountPoint: string;
  /** Set when neither a UUID nor a label is known (or for a bind mount: the source folder). */
  device?: string;
  uuid?: string;
  label?: string;
  fsType: string;
  options?: string[];
}

export interface DetectedSwap {
  device?: string;
  uuid?: string;
  label?: string;
}

export interface Hardware {
  fileSystems: DetectedFileSystem[];
  swapDevices: DetectedSwap[];
  /** `boot.initrd.availableKernelModules`: drivers of the storage (and USB) controllers. */
  availableKernelModules: string[];
  firmware: Firmware;
  /** UEFI: where the EFI system partition is mounted (relative to the root), when it is. */
  espMountPoint: string | null;
  /** BIOS: the disk holding the root file system, for `boot.loader.grub.device`. */
  bootDisk: string | null;
  /** Network interfaces with hardware behind them (not lo, bridges or tunnels). */
  interfaces: string[];
  hostName: string | null;
  /** What could not be turned into configuration, for the user to see. */
  warnings: string[];
}

export interface DetectOptions {
  /** Where the running machine's /proc, /sys, /dev and /etc are read; '/' by default. */
  host?: string;
  /** The target's root as the running machine sees it (`--root`); '/' by default. */
  root?: string;
  /** Overrides what /sys/firmware/efi says (a disk prepared for another machine). */
  firmware?: Firmware;
  /** Leave file systems and swap out (nixos-generate-config's `--no-filesystems`). */
  noFileSystems?: boolean;
  /** UUID and label of a block device; by default /dev/disk/by-uuid and by-label, then blkid (on the real host only). */
  probe?: (device: string) => { uuid?: string; label?: string };
}

/** File systems that are the kernel's views, not storage. */
const PSEUDO = new Set([
  'proc', 'sysfs', 'devtmpfs', 'devpts', 'cgroup', 'cgroup2', 'securityfs', 'debugfs', 'tracefs', 'pstore', 'efivarfs',
  'bpf', 'mqueue', 'hugetlbfs', 'configfs', 'fusectl', 'autofs', 'binfmt_misc', 'rpc_pipefs', 'nsfs', 'ramfs',
]);

/** Host names cairn accepts (`networking.hostName`). */
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Kernel module names as the initrd option takes them. */
const MODULE_NAME = /^[A-Za-z0-9_-]+$/;

/** `d1` is `d2` or below it. */
function within(d1: string, d2: string): boolean {
  return d1 === d2 || d1.startsWith(d2 === '/' ? '/' : `${d2}/`);
}

/** A name for a message: quoted when it holds control characters, which a terminal would act on. */
function shown(s: string): string {
  return /[\x00-\x1f\x7f]/.test(s) ? JSON.stringify(s) : s;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** The module a sysfs device's driver belongs to (none for a driver built into the kernel). */
function driverModule(deviceDir: string): string | null {
  try {
    const name = basename(readlinkSync(join(deviceDir, 'driver', 'module')));
    return MODULE_NAME.test(name) ? name.replace(/-/g, '_') : null;
  } catch {
    return null;
  }
}

/** mountinfo and /proc/swaps write space, tab, newline and backslash as octal escapes. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

interface Mount {
  devId: string;
  /** The folder of the file system that is mounted (not `/` for a bind mount). */
  fsRoot: string;
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string[];
}

/** /proc/self/mountinfo, line by line (see proc(5)). */
export function parseMountInfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    mounts.push({
      devId: fields[2]!,
      fsRoot: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      fsType: fields[sep + 1]!,
      source: unescapeOctal(fields[sep + 2]!),
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return mounts;
}

export function detectHardware(opts: DetectOptions = {}): Hardware {
  const host = opts.host ?? '/';
  const root = opts.root === undefined || opts.root === '/' ? '/' : opts.root.replace(/\/+$/, '');
  const at = (p: string) => join(host, p);
  const warnings: string[] = [];
  const probe = opts.probe ?? ((device: string) => probeDevice(host, device));

  /** UUID, else label, else the device path: what fileSystems and swapDevices entries name. */
  const identify = (device: string): { device?: string; uuid?: string; label?: string } => {
    const found = device.startsWith('/dev/') ? probe(device) : {};
    if (found.uuid) return { uuid: found.uuid };
    if (found.label) return { label: found.label };
    return { device };
  };

  // File systems under the root, as nixos-generate-config finds them.
  const fileSystems: DetectedFileSystem[] = [];
  const swapDevices: DetectedSwap[] = [];
  const mounts = parseMountInfo(readText(at('proc/self/mountinfo')) ?? '');
  let rootSource: string | null = null;
  if (!opts.noFileSystems) {
    const seen = new Map<string, Mount & { relative: string }>();
    for (const m of mounts) {
      if (!within(m.mountPoint, root)) continue;
      const relative = root === '/' ? m.mountPoint : m.mountPoint.slice(root.length) || '/';
      if (['/proc', '/dev', '/sys', '/run'].some((p) => within(relative, p)) || PSEUDO.has(m.fsType)) continue;
      // /tmp on tmpfs is the configuration's business (boot.tmp), as NixOS leaves it.
      if (relative === '/tmp' && m.fsType === 'tmpfs') continue;
      if (m.fsType === 'fuse' || m.fsType === 'fuseblk' || m.fsType.startsWith('fuse.')) {
        warnings.push(`${shown(relative)}: a FUSE file system (${shown(m.fsType)}) is left out; declare it yourself`);
        continue;
      }
      // A later mount of a file system seen already is a bind mount (btrfs subvolumes share the
      // device number, and say which subvolume they are in their options instead).
      const earlier = seen.get(m.devId);
      if (earlier && m.fsType !== 'btrfs') {
        // The store's read-only bind mount onto itself is made by the system, not declared.
        if (relative === '/cairn/store') continue;
        const base = earlier.relative === '/' ? '' : earlier.relative;
        const from = earlier.fsRoot === '/' ? m.fsRoot : m.fsRoot.slice(earlier.fsRoot.length);
        fileSystems.push({ mountPoint: relative, device: posix.join(base || '/', from), fsType: 'none', options: ['bind'] });
        continue;
      }
      seen.set(m.devId, { ...m, relative });
      // A later mount on the same point hides an earlier one: the last one counts.
      const dup = fileSystems.findIndex((f) => f.mountPoint === relative);
      if (dup >= 0) fileSystems.splice(dup, 1);
      const options: string[] = [];
      const subvol = m.fsType === 'btrfs' ? m.superOptions.find((o) => o.startsWith('subvol=')) : undefined;
      if (subvol && subvol !== 'subvol=/') options.push(subvol);
      const fs: DetectedFileSystem = { mountPoint: relative, ...identify(m.source), fsType: m.fsType };
      if (options.length) fs.options = options;
      fileSystems.push(fs);
      if (relative === '/') rootSource = m.source;
    }
    fileSystems.sort((a, b) => (a.mountPoint < b.mountPoint ? -1 : a.mountPoint > b.mountPoint ? 1 : 0));

    // Active swap: partitions by UUID or label (not zram, which configurations make), files under the root.
    const swaps = (readText(at('proc/swaps')) ?? '').split('\n').slice(1);
    for (const line of swaps) {
      const [name, type] = line.trim().split(/\s+/);
      if (!name || !type) continue;
      const path = unescapeOctal(name);
      if (type === 'partition') {
        if (/^\/dev\/zram\d+$/.test(path)) continue;
        swapDevices.push(identify(path));
      } else if (type === 'file') {
        if (within(path, root) && path !== root) swapDevices.push({ device: root === '/' ? path : path.slice(root.length) });
      }
    }
  }

  // Drivers the initrd needs to reach the disks: storage, FireWire and USB controllers on PCI,
  // USB mass storage (and keyboards, for a shell in the initrd), and every block device's driver.
  const modules = new Set<string>();
  for (const dev of list(at('sys/bus/pci/devices'))) {
    const dir = at(`sys/bus/pci/devices/${dev}`);
    const cls = (readText(join(dir, 'class')) ?? '').trim();
    const module = driverModule(dir);
    if (module && (/^0x01/.test(cls) || /^0x0c00/.test(cls) || /^0x0c03/.test(cls))) modules.add(module);
    // virtio SCSI: its disks are found through virtio_scsi, which the PCI device's driver is not.
    const vendor = (readText(join(dir, 'vendor')) ?? '').trim();
    const device = (readText(join(dir, 'device')) ?? '').trim();
    if (vendor === '0x1af4' && (device === '0x1004' || device === '0x1048')) modules.add('virtio_scsi');
  }
  for (const dev of list(at('sys/bus/usb/devices'))) {
    const dir = at(`sys/bus/usb/devices/${dev}`);
    const cls = readText(join(dir, 'bInterfaceClass'))?.trim();
    if (cls === undefined) continue;
    const protocol = readText(join(dir, 'bInterfaceProtocol'))?.trim();
    const module = driverModule(dir);
    if (module && (cls === '08' || (cls === '03' && protocol === '01'))) modules.add(module);
  }
  for (const cls of ['block', 'mmc_host']) {
    for (const dev of list(at(`sys/class/${cls}`))) {
      const module = driverModule(at(`sys/class/${cls}/${dev}/device`));
      if (module) modules.add(module);
    }
  }

  const firmware: Firmware = opts.firmware ?? (existsSync(at('sys/firmware/efi')) ? 'uefi' : 'bios');
  let espMountPoint: string | null = null;
  let bootDisk: string | null = null;
  if (firmware === 'uefi') {
    // Where NixOS and systemd look for the ESP, in that order.
    for (const p of ['/boot', '/boot/efi', '/efi']) {
      if (fileSystems.some((f) => f.mountPoint === p && f.fsType === 'vfat')) {
        espMountPoint = p;
        break;
      }
    }
    if (!espMountPoint && !opts.noFileSystems) warnings.push('no EFI system partition (vfat) is mounted at /boot, /boot/efi or /efi under the root: mount it, or set boot.loader.efi.efiSysMountPoint');
  } else {
    bootDisk = rootSource ? diskOf(host, rootSource) : null;
    if (!bootDisk) warnings.push('the disk the root file system is on was not found: set boot.loader.grub.device in cairn.yaml');
  }

  // Interfaces with a device behind them; virtual ones (bridges, tunnels, veth) are made by configurations.
  const interfaces = list(at('sys/class/net')).filter((n) => n !== 'lo' && isLink(at(`sys/class/net/${n}/device`)) && /^[A-Za-z0-9_.-]{1,15}$/.test(n));

  // The root's own name when it has one (a machine being reconfigured), else this machine's.
  let hostName: string | null = null;
  for (const file of root === '/' ? [at('etc/hostname'), at('proc/sys/kernel/hostname')] : [join(root, 'etc/hostname'), at('proc/sys/kernel/hostname')]) {
    const name = (readText(file) ?? '').split('\n')[0]!.trim();
    if (HOST_NAME.test(name) && name !== 'localhost') {
      hostName = name;
      break;
    }
  }

  return { fileSystems, swapDevices, availableKernelModules: [...modules].sort(), firmware, espMountPoint, bootDisk, interfaces, hostName, warnings };
}

/**
 * UUID and label of a block device: the /dev/disk/by-uuid and by-label links udev makes, else
 * blkid's answer (a machine without udev, such as a container). blkid only runs on the real host.
 */
function probeDevice(host: string, device: string): { uuid?: string; label?: string } {
  const name = basename(device);
  const byLink = (dir: string): string | undefined => {
    for (const entry of list(join(host, 'dev/disk', dir))) {
      try {
        if (basename(readlinkSync(join(host, 'dev/disk', dir, entry))) === name) return unescapeUdev(entry);
      } catch {
        // not a link
      }
    }
    return undefined;
  };
  const uuid = byLink('by-uuid');
  if (uuid) return { uuid };
  const label = byLink('by-label');
  if (label) return { label };
  if (host !== '/') return {};
  try {
    const out = execFileSync('blkid', ['-c', '/dev/null', '-o', 'export', device], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const value = (key: string) => out.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
    const u = value('UUID');
    if (u) return { uuid: u };
    const l = value('LABEL');
    if (l) return { label: unescapeBlkid(l) };
  } catch {
    // no blkid, or nothing it recognises: the device path it is
  }
  return {};
}

/** udev writes unsafe characters of a label as `\xNN`. */
function unescapeUdev(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** `blkid -o export` escapes shell-special characters with a backslash. */
function unescapeBlkid(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

/** The whole disk a partition is on (`/dev/vda2` → `/dev/vda`), by a stable by-id name when udev made one. */
function diskOf(host: string, device: string): string | null {
  if (!device.startsWith('/dev/')) return null;
  let name = basename(device);
  const classDir = join(host, 'sys/class/block', name);
  if (!existsSync(classDir)) return null;
  if (existsSync(join(classDir, 'partition'))) {
    try {
      name = basename(dirname(realpathSync(classDir)));
    } catch {
      return null;
    }
  }
  for (const entry of list(join(host, 'dev/disk/by-id'))) {
    // wwn- names repeat the others; partitions are not the disk.
    if (entry.startsWith('wwn-') || /-part\d+$/.test(entry)) continue;
    try {
      if (basename(readlinkSync(join(host, 'dev/disk/by-id', entry))) === name) return `/dev/disk/by-id/${entry}`;
    } catch {
      // not a link
    }
  }
  return `/dev/${name}`;
}
