/**
 * The kernel file systems systemd mounts through static units at every boot (hugetlbfs, mqueue,
 * debugfs, tracefs, /run/lock), as one fstab that stage 2 mounts with a single `mount -a` before it
 * becomes systemd. systemd finds them mounted and starts none of those units: each would cost two
 * processes (systemd-executor, mount), ~0.2 s of CPU apiece in an emulated guest, ahead of
 * sysinit.target. Only units the generation's systemd ships and enables are taken, with their own
 * What/Where/Type/Options, and only those that need nothing systemd would do first (another unit,
 * a condition stage 2 cannot stand for); anything else stays with systemd, as does every mount
 * the generation overrides in /etc or declares in fstab. The one unit a mount may need is
 * `modprobe@M.service` for a module M built into the generation's kernel: loading it is a no-op
 * (the FUSE control file system's `modprobe@fuse`, which systemd then skips: /sys/module/fuse
 * exists, see modules/boot/kernel.ts).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EtcOption } from '../eval/spec.js';
import { readBuiltinModules } from './kernel.js';

const UNIT_DIR = 'usr/lib/systemd/system';
/** The targets whose static wants are the boot's API mounts. */
const TARGETS = ['sysinit.target', 'local-fs.target'];
/**
 * [Unit] keys a unit may have and still be mounted by stage 2: ordering before later units, and
 * conditions that hold for a stage 2 (PID 1 with every capability, never in a container or user
 * namespace) or that make the mount itself fail when they do not (a missing path).
 */
const UNIT_KEYS = new Set(['Description', 'Documentation', 'DefaultDependencies', 'Before', 'Conflicts', 'ConditionPathExists', 'ConditionCapability', 'ConditionVirtualization']);
/** Dependencies a unit may have when each names `modprobe@M.service` of a built-in module M. */
const MODPROBE_KEYS = new Set(['After', 'Requires', 'Wants']);
/** Keys systemd reads as lists: repeated lines add up. */
const LIST_KEYS = new Set([...MODPROBE_KEYS, 'Before', 'Conflicts']);
const MOUNT_KEYS = new Set(['What', 'Where', 'Type', 'Options']);
/** Where API file systems go; / itself, /run, /dev/pts and /dev/shm are stage 2's own. */
const API_PLACE = /^\/(dev|sys|run)\/[^\s]+$/;
const OWN = new Set(['/dev/pts', '/dev/shm']);

/** A unit file's sections: each key's last value (list keys: their values joined). */
function sections(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[([^\]]+)\]$/.exec(line);
    if (head) {
      current = out.get(head[1]!) ?? new Map();
      out.set(head[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) return new Map([['', new Map()]]); // not understood: left to systemd
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const before = current.get(key);
    current.set(key, LIST_KEYS.has(key) && before && value ? `${before} ${value}` : value);
  }
  return out;
}

/**
 * One fstab line for a unit's mount, or null when systemd must mount it itself. `builtin`: the
 * names of the modules built into the kernel (modules.builtin), whose modprobe@ units may be needed.
 */
export function apiMountLine(text: string, builtin: ReadonlySet<string> = new Set()): string | null {
  const s = sections(text);
  for (const name of s.keys()) if (!['Unit', 'Mount', 'Install'].includes(name)) return null;
  const unit = s.get('Unit') ?? new Map<string, string>();
  const mount = s.get('Mount');
  if (!mount) return null;
  for (const [k, v] of unit) if (!UNIT_KEYS.has(k) && !(MODPROBE_KEYS.has(k) && v.split(/\s+/).every((u) => builtin.has(modprobeOf(u))))) return null;
  for (const k of mount.keys()) if (!MOUNT_KEYS.has(k)) return null;
  const what = mount.get('What');
  const where = mount.get('Where');
  const type = mount.get('Type');
  const options = mount.get('Options') ?? 'defaults';
  if (!what || !where || !type || !API_PLACE.test(where) || OWN.has(where)) return null;
  // Specifiers (%) and blanks would need systemd's or fstab's escapes.
  if ([what, where, type, options].some((v) => /[%\s]/.test(v))) return null;
  // X-mount.mkdir: as systemd does, the mount point is made when missing (/dev/hugepages).
  return `${what} ${where} ${type} ${options},X-mount.mkdir 0 0`;
}

/** The module of a `modprobe@M.service` unit name (`-` read as `_`, as the kernel does), or ''. */
function modprobeOf(unit: string): string {
  const m = /^modprobe@(.+)\.service$/.exec(unit);
  return m ? m[1]!.replace(/-/g, '_') : '';
}

/** Names of the modules built into the kernel of a generation whose sw is at `swPhys` (none without a kernel). */
function builtinModules(swPhys: string): Set<string> {
  const dir = join(swPhys, 'usr', 'lib', 'modules');
  if (!existsSync(dir)) return new Set();
  return new Set(readdirSync(dir).flatMap((version) => [...readBuiltinModules(join(dir, version))]));
}

/**
 * The fstab of API mounts for a generation whose sw is readable at `swPhys`, or '' when there are
 * none. `etc` is the generation's /etc: a unit it overrides (or masks), and a place its fstab
 * mounts, are left to systemd.
 */
export function apiMountsFstab(swPhys: string, etc: Record<string, EtcOption>): string {
  const fstab = etc['fstab']?.text ?? '';
  const declared = new Set(fstab.split('\n').map((l) => l.trim().split(/\s+/)[1]).filter((x): x is string => !!x));
  const overridden = (unit: string) => Object.keys(etc).some((k) => etc[k]!.enable && (k === `systemd/system/${unit}` || k.startsWith(`systemd/system/${unit}.d/`)));
  const lines = new Set<string>();
  const builtin = builtinModules(swPhys);
  for (const target of TARGETS) {
    const wants = join(swPhys, UNIT_DIR, `${target}.wants`);
    if (!existsSync(wants)) continue;
    for (const unit of readdirSync(wants).sort()) {
      if (!unit.endsWith('.mount') || overridden(unit)) continue;
      const file = join(swPhys, UNIT_DIR, unit);
      if (!existsSync(file)) continue;
      const line = apiMountLine(readFileSync(file, 'utf8'), builtin);
      if (line && !declared.has(line.split(' ')[1]!)) lines.add(line);
    }
  }
  if (lines.size === 0) return '';
  return ['# Kernel file systems systemd would mount through its units; stage 2 mounts them in one go.', ...lines, ''].join('\n');
}
