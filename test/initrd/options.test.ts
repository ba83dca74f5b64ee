/** The boot and file system options: defaults, what they derive (fstab, initrd modules, kernel parameters), errors. */
import { describe, it, expect } from 'vitest';
import { evalSystem } from '../../src/eval/index.js';
import { systemSpec } from '../../src/eval/spec.js';

async function evalConfig(config: Record<string, unknown>) {
  return (await evalSystem([{ config }])).config;
}

describe('boot options', () => {
  it('defaults: Debian kernel, serial console last, the root on LABEL=root ext4 with its driver in the initrd', async () => {
    const c = await evalConfig({});
    expect(String(c.boot.kernelPackage)).toBe('linux-image-amd64');
    expect(c.boot.kernelParams).toEqual(['console=tty0', 'console=ttyS0,115200', 'loglevel=4']);
    expect(c.boot.initrd.modules).toEqual(expect.arrayContaining(['virtio_pci', 'virtio_blk', 'ext4']));
    expect(c.boot.initrd.fileSystems).toEqual([{ device: 'LABEL=root', mountPoint: '/', fsType: 'ext4', options: 'defaults' }]);
    expect(c.environment.etc.fstab.text).toContain('LABEL=root / ext4 defaults 0 1\n');
    // The ESP is an automount, unmounted when idle: the boot does not wait for its device.
    expect(c.environment.etc.fstab.text).toContain('LABEL=ESP /boot vfat umask=0077,x-systemd.automount,x-systemd.idle-timeout=120 0 2\n');
    // Options of the user's own replace it all; another mount point moves it.
    const own = await evalConfig({ fileSystems: { '/boot': { options: ['fmask=0077', 'dmask=0077'] } } });
    expect(own.environment.etc.fstab.text).toContain('LABEL=ESP /boot vfat fmask=0077,dmask=0077 0 2\n');
    const efi = await evalConfig({ boot: { loader: { efi: { efiSysMountPoint: '/efi' } } } });
    expect(efi.environment.etc.fstab.text).toContain('LABEL=ESP /efi vfat umask=0077,x-systemd.automount,x-systemd.idle-timeout=120 0 2\n');
    expect(c.boot.loader['systemd-boot']).toEqual({ enable: true, timeout: 5, editor: false, configurationLimit: null, bootCounting: { enable: true, tries: 3 } });
    // The loader's EFI binary is part of the system (images copy it to the ESP; bootctl finds it).
    expect(c.environment.systemPackages.map(String)).toContain('systemd-boot-efi');
    expect(c.system.build.bootPackages.map(String)).toContain('busybox-static');
    // Only the firewall's modules (its ruleset's expressions) are loaded by name.
    expect(c.environment.etc['modules-load.d/cairn.conf'].text).toBe('nf_tables\nnft_ct\nnft_limit\n');
    expect((await evalConfig({ networking: { firewall: { enable: false } } })).environment.etc['modules-load.d/cairn.conf']).toBeUndefined();
  });

  it('boot.consoleLogLevel: loglevel=4 by default as in NixOS, another level when set, nothing out of 0-7', async () => {
    expect((await evalConfig({ boot: { consoleLogLevel: 7 } })).boot.kernelParams).toContain('loglevel=7');
    expect((await evalConfig({ boot: { consoleLogLevel: 7 } })).boot.kernelParams).not.toContain('loglevel=4');
    await expect(evalConfig({ boot: { consoleLogLevel: 8 } }).then((c) => c.boot.kernelParams)).rejects.toThrow(/boot\.consoleLogLevel/);
  });

  it('blacklisted modules: none by default; blacklist lines in modprobe.d; a VM never autoloads cfg80211 or ahci', async () => {
    expect((await evalConfig({})).environment.etc['modprobe.d/cairn-blacklist.conf']).toBeUndefined();
    const c = await evalConfig({ boot: { blacklistedKernelModules: ['pcspkr', 'floppy'] } });
    expect(c.environment.etc['modprobe.d/cairn-blacklist.conf'].text).toBe('blacklist pcspkr\nblacklist floppy\n');
    // The initrd gets them too (stage 1 leaves their aliases out), as NixOS's stage 1 reads its modprobe.d.
    expect(systemSpec(c).boot.initrd.blacklist).toEqual(['pcspkr', 'floppy']);
    const vm = await evalConfig({ virtualisation: { vm: true } });
    expect(vm.environment.etc['modprobe.d/cairn-blacklist.conf'].text).toBe('blacklist cfg80211\nblacklist ahci\n');
    expect(systemSpec(vm).boot.initrd.blacklist).toEqual(['cfg80211', 'ahci']);
  });

  it('file systems: device over label, fsck passes, escaping, swap, file systems needed for boot', async () => {
    const c = await evalConfig({
      fileSystems: {
        '/': { device: '/dev/vda2' },
        '/boot': { label: 'ESP', fsType: 'vfat', neededForBoot: true },
        '/srv/my data': { uuid: '1234-abcd', fsType: 'xfs', options: ['noatime', 'nofail'] },
        '/tmp': { fsType: 'tmpfs', options: ['size=1G'] },
      },
      swapDevices: [{ label: 'swap', priority: 10 }],
      boot: { kernelParams: ['quiet'], kernelModules: ['br_netfilter'] },
    });
    expect(c.environment.etc.fstab.text.split('\n').slice(1)).toEqual([
      '/dev/vda2 / ext4 defaults 0 1',
      'LABEL=ESP /boot vfat umask=0077 0 2', // the loader's default for an ESP stage 1 mounts: no automount over it
      'UUID=1234-abcd /srv/my\\040data xfs noatime,nofail 0 2',
      'tmpfs /tmp tmpfs size=1G 0 0',
      'LABEL=swap none swap pri=10 0 0',
      '',
    ]);
    expect(c.boot.initrd.fileSystems.map((f: { mountPoint: string }) => f.mountPoint)).toEqual(['/', '/boot']);
    // Debian's kernels mount FAT with the ascii character set by default (CONFIG_FAT_DEFAULT_IOCHARSET):
    // without nls_ascii, stage 1 cannot mount /boot.
    expect(c.boot.initrd.modules).toEqual(expect.arrayContaining(['vfat', 'nls_cp437', 'nls_ascii', 'ext4']));
    expect(c.boot.kernelParams).toEqual(['console=tty0', 'console=ttyS0,115200', 'loglevel=4', 'quiet']);
    expect(c.environment.etc['modules-load.d/cairn.conf'].text.split('\n')).toContain('br_netfilter');
  });

  it('a file system without a source is an error naming it', async () => {
    await expect(evalSystem([{ config: { fileSystems: { '/data': { fsType: 'ext4' } } } }])).rejects.toThrow(/fileSystems."\/data" needs a device, uuid or label/);
  });
});
