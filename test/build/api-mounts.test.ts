/** Which of systemd's static mount units stage 2 may mount itself (src/build/api-mounts.ts). */
import { describe, expect, it } from 'vitest';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiMountLine, apiMountsFstab } from '../../src/build/api-mounts.js';
import type { EtcOption } from '../../src/eval/spec.js';
import { tempDir } from '../modules/helpers.js';

const unit = (unitLines: string[], mountLines: string[]) => ['[Unit]', 'Description=x', ...unitLines, '', '[Mount]', ...mountLines, ''].join('\n');
const HUGEPAGES = unit(
  ['DefaultDependencies=no', 'Before=sysinit.target', 'ConditionPathExists=/sys/kernel/mm/hugepages', 'ConditionCapability=CAP_SYS_ADMIN', 'ConditionVirtualization=!private-users'],
  ['What=hugetlbfs', 'Where=/dev/hugepages', 'Type=hugetlbfs', 'Options=nosuid,nodev'],
);
const FUSE = unit(['DefaultDependencies=no', 'After=modprobe@fuse.service', 'Requires=modprobe@fuse.service'], ['What=fusectl', 'Where=/sys/fs/fuse/connections', 'Type=fusectl', 'Options=nosuid,nodev,noexec']);
const TMP = unit(['ConditionPathIsSymbolicLink=!/tmp', 'DefaultDependencies=no'], ['What=tmpfs', 'Where=/tmp', 'Type=tmpfs', 'Options=mode=1777,strictatime,size=50%%']);

describe('API mounts', () => {
  it("takes a unit's mount as it is, the mount point made when missing", () => {
    expect(apiMountLine(HUGEPAGES)).toBe('hugetlbfs /dev/hugepages hugetlbfs nosuid,nodev,X-mount.mkdir 0 0');
  });

  it("takes a mount whose only other unit loads a module the kernel has built in: that modprobe@ does nothing", () => {
    expect(apiMountLine(FUSE, new Set(['fuse']))).toBe('fusectl /sys/fs/fuse/connections fusectl nosuid,nodev,noexec,X-mount.mkdir 0 0');
    // A module to load (not built in) stays with systemd, and so does any other unit among repeated lines.
    expect(apiMountLine(FUSE, new Set(['configfs']))).toBeNull();
    const twice = unit(['After=modprobe@fuse.service', 'After=systemd-udevd.service'], ['What=fusectl', 'Where=/sys/fs/fuse/connections', 'Type=fusectl']);
    expect(apiMountLine(twice, new Set(['fuse']))).toBeNull();
  });

  it('leaves to systemd what needs another unit first, a condition stage 2 cannot stand for, specifiers, or a place outside /dev, /sys, /run', () => {
    expect(apiMountLine(FUSE)).toBeNull();
    expect(apiMountLine(TMP)).toBeNull();
    expect(apiMountLine(unit([], ['What=tmpfs', 'Where=/run/user-%i', 'Type=tmpfs']))).toBeNull();
    expect(apiMountLine(unit([], ['What=tmpfs', 'Where=/run/x', 'Type=tmpfs', 'Options=size=%%']))).toBeNull();
    expect(apiMountLine(unit([], ['What=tmpfs', 'Where=/run/x', 'Type=tmpfs', 'TimeoutSec=5']))).toBeNull();
    expect(apiMountLine(unit([], ['What=tmpfs', 'Where=/dev/pts', 'Type=devpts']))).toBeNull();
    expect(apiMountLine(unit([], ['What=none', 'Where=/srv', 'Type=tmpfs']))).toBeNull();
    expect(apiMountLine('[Unit]\nnonsense\n[Mount]\nWhat=a\nWhere=/run/a\nType=tmpfs\n')).toBeNull();
  });

  it("reads the units the generation's systemd enables, except those its /etc overrides or its fstab mounts", () => {
    const sw = tempDir('cairn-api-mounts-');
    const units = join(sw, 'usr/lib/systemd/system');
    mkdirSync(join(units, 'sysinit.target.wants'), { recursive: true });
    mkdirSync(join(units, 'local-fs.target.wants'), { recursive: true });
    const mqueue = unit(['DefaultDependencies=no'], ['What=mqueue', 'Where=/dev/mqueue', 'Type=mqueue', 'Options=nosuid,nodev,noexec']);
    const lock = unit(['DefaultDependencies=no', 'Conflicts=umount.target'], ['Type=tmpfs', 'What=tmpfs', 'Where=/run/lock', 'Options=mode=1777,nosuid,nodev,noexec,size=5242880']);
    for (const [name, text, target] of [
      ['dev-hugepages.mount', HUGEPAGES, 'sysinit'],
      ['dev-mqueue.mount', mqueue, 'sysinit'],
      ['sys-fs-fuse-connections.mount', FUSE, 'sysinit'],
      ['run-lock.mount', lock, 'local-fs'],
    ] as const) {
      writeFileSync(join(units, name), text);
      symlinkSync(`../${name}`, join(units, `${target}.target.wants`, name));
    }
    writeFileSync(join(units, 'sys-kernel-debug.mount'), unit([], ['What=debugfs', 'Where=/sys/kernel/debug', 'Type=debugfs'])); // shipped, not enabled
    const all = apiMountsFstab(sw, {});
    expect(all.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'hugetlbfs /dev/hugepages hugetlbfs nosuid,nodev,X-mount.mkdir 0 0',
      'mqueue /dev/mqueue mqueue nosuid,nodev,noexec,X-mount.mkdir 0 0',
      'tmpfs /run/lock tmpfs mode=1777,nosuid,nodev,noexec,size=5242880,X-mount.mkdir 0 0',
    ]);
    // With a kernel in sw that has fuse built in, its control file system is stage 2's too.
    mkdirSync(join(sw, 'usr/lib/modules/6.12.0-test'), { recursive: true });
    writeFileSync(join(sw, 'usr/lib/modules/6.12.0-test/modules.builtin'), 'kernel/fs/fuse/fuse.ko\nkernel/fs/ext4/ext4.ko\n');
    expect(apiMountsFstab(sw, {})).toContain('fusectl /sys/fs/fuse/connections fusectl nosuid,nodev,noexec,X-mount.mkdir 0 0\n');
    const entry = (e: Partial<EtcOption>): EtcOption => ({ enable: true, target: '', text: null, source: null, symlink: null, mode: 'symlink', user: '+0', group: '+0', ...e });
    const etc = {
      'systemd/system/dev-hugepages.mount': entry({ symlink: '/dev/null' }),
      'systemd/system/sys-fs-fuse-connections.mount.d/cairn.conf': entry({ text: '[Mount]\nOptions=ro\n' }),
      'systemd/system/dev-mqueue.mount.d/overrides.conf': entry({ text: '[Mount]\nOptions=nosuid\n' }),
      fstab: entry({ text: '# fstab\ntmpfs /run/lock tmpfs size=1M 0 0\n' }),
    };
    expect(apiMountsFstab(sw, etc)).toBe('');
  });
});
