import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalSystem } from '../../src/eval/index.js';
import { sha512Crypt } from '../../src/build/crypt.js';
import { usersSpecDerivation } from '../../src/build/users.js';
import { mkForce } from '../../src/lib/index.js';
import { etcText, evalConfig, hasCommand, root, tempDir } from './helpers.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const services = (c: any) => c.systemd.services as Record<string, any>;
/** The names of the system's packages. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const pkgs = (c: any): string[] => c.environment.systemPackages.map((p: string | { name: string }) => (typeof p === 'string' ? p : p.name));

describe('boot.kernel.sysctl', () => {
  it('writes sysctl.d with true as 1, leaves null out, and restarts systemd-sysctl when it changes', async () => {
    const c = await evalConfig({ boot: { kernel: { sysctl: { 'vm.swappiness': 10, 'net.ipv4.ip_forward': true, 'kernel.sysrq': false, 'net.core.default_qdisc': 'fq', 'kernel.x': null } } } });
    expect(etcText(c, 'sysctl.d/60-cairn.conf')).toBe('vm.swappiness=10\nnet.ipv4.ip_forward=1\nkernel.sysrq=0\nnet.core.default_qdisc=fq\n');
    expect(services(c)['systemd-sysctl'].restartTriggers).toHaveLength(1);
    expect((await evalConfig({})).environment.etc['sysctl.d/60-cairn.conf']).toBeUndefined();
  });

  it('refuses a key or value that would become another line', async () => {
    await expect(evalConfig({ boot: { kernel: { sysctl: { 'vm.a\nkernel.b': 1 } } } })).rejects.toThrow(/boot\.kernel\.sysctl/);
    await expect(evalConfig({ boot: { kernel: { sysctl: { 'vm.a': '1\nkernel.panic=1' } } } })).rejects.toThrow(/boot\.kernel\.sysctl/);
  });
});

describe('systemd.generators', () => {
  const link = (c: { environment: { etc: Record<string, { symlink?: string | null }> } }, name: string) => c.environment.etc[`systemd/system-generators/${name}`]?.symlink;
  it("masks the generators of Debian's systemd for what cairn has not (SysV, rc.local, offline updates, resume, TPM2, vsock sshd) by default, links a user's, and can restore a masked one", async () => {
    const plain = await evalConfig({});
    for (const g of ['sysv', 'rc-local', 'system-update', 'hibernate-resume', 'tpm2', 'ssh']) expect(link(plain, `systemd-${g}-generator`)).toBe('/dev/null');
    // What a cairn system uses runs: mounts, gettys, boot counting, debugging from the kernel command line.
    for (const g of ['fstab', 'getty', 'bless-boot', 'debug', 'run', 'gpt-auto']) expect(link(plain, `systemd-${g}-generator`)).toBeUndefined();
    const c = await evalConfig({
      systemd: { generators: { 'systemd-gpt-auto-generator': '/dev/null', 'systemd-rc-local-generator': '/usr/lib/systemd/system-generators/systemd-rc-local-generator' } },
    });
    expect(link(c, 'systemd-gpt-auto-generator')).toBe('/dev/null');
    expect(link(c, 'systemd-rc-local-generator')).toBe('/usr/lib/systemd/system-generators/systemd-rc-local-generator');
    expect(link(c, 'systemd-sysv-generator')).toBe('/dev/null');
  });

  it('refuses a name that is not one file name', async () => {
    await expect(evalConfig({ systemd: { generators: { '../x': '/dev/null' } } })).rejects.toThrow(/systemd\.generators/);
  });
});

describe('systemd.suppressedSystemUnits', () => {
  const link = (c: { environment: { etc: Record<string, { symlink?: string | null }> } }, unit: string) => c.environment.etc[`systemd/system/${unit}`]?.symlink;
  it("masks what cairn leaves out (the graceful /dev pass, udev rules from credentials) and a user's units on top, even one declared", async () => {
    const plain = await evalConfig({});
    expect(plain.systemd.suppressedSystemUnits).toEqual(['systemd-tmpfiles-setup-dev-early.service', 'systemd-udev-load-credentials.service', 'systemd-remount-fs.service']);
    for (const u of plain.systemd.suppressedSystemUnits) expect(link(plain, u)).toBe('/dev/null');
    // The strict pass stays: it makes the static device nodes alone.
    expect(link(plain, 'systemd-tmpfiles-setup-dev.service')).toBeUndefined();
    const c = await evalConfig({ systemd: { suppressedSystemUnits: ['systemd-backlight@.service', 'foo.service'], services: { foo: { script: 'true' } } } });
    expect(c.systemd.suppressedSystemUnits).toContain('systemd-tmpfiles-setup-dev-early.service');
    expect(link(c, 'systemd-backlight@.service')).toBe('/dev/null');
    expect(link(c, 'foo.service')).toBe('/dev/null');
    // Taken back with mkForce.
    const kept = await evalConfig({ systemd: { suppressedSystemUnits: mkForce([]) } });
    expect(link(kept, 'systemd-tmpfiles-setup-dev-early.service')).toBeUndefined();
  });

  it('keeps systemd-remount-fs when fileSystems gives /usr or a kernel file system options to apply', async () => {
    const remount = (c: { systemd: { suppressedSystemUnits: string[] } }) => !c.systemd.suppressedSystemUnits.includes('systemd-remount-fs.service');
    expect(remount(await evalConfig({ fileSystems: { '/srv': { device: '/dev/vdb', fsType: 'ext4' } } }))).toBe(false);
    expect(remount(await evalConfig({ fileSystems: { '/dev/shm': { device: 'tmpfs', fsType: 'tmpfs', options: ['size=64m'] } } }))).toBe(true);
    expect(remount(await evalConfig({ fileSystems: { '/usr': { device: '/dev/vdc', fsType: 'ext4' } } }))).toBe(true);
  });

  it('refuses a name that is no unit', async () => {
    await expect(evalConfig({ systemd: { suppressedSystemUnits: ['../x'] } })).rejects.toThrow(/systemd\.suppressedSystemUnits/);
  });
});

describe('modprobe@ units', () => {
  it('are skipped when their module is already in the kernel (/sys/module/<name>)', async () => {
    expect(etcText(await evalConfig({}), 'systemd/system/modprobe@.service.d/overrides.conf')).toMatch(/^\[Unit\]\nConditionPathExists=!\/sys\/module\/%i$/m);
  });
});

describe('file systems, swap and /tmp', () => {
  it("keeps /tmp on the root: Debian 13's own tmp.mount is masked unless useTmpfs or fileSystems./tmp mounts it", async () => {
    const masked = (c: { environment: { etc: Record<string, { symlink?: string | null }> } }) => c.environment.etc['systemd/system/tmp.mount']?.symlink;
    expect(masked(await evalConfig({}))).toBe('/dev/null');
    const tmpfs = await evalConfig({ boot: { tmp: { useTmpfs: true } } });
    expect(masked(tmpfs)).toBeUndefined();
    expect(etcText(tmpfs, 'fstab')).toMatch(/^tmpfs \/tmp tmpfs /m);
    expect(masked(await evalConfig({ fileSystems: { '/tmp': { device: '/dev/vdb', fsType: 'ext4' } } }))).toBeUndefined();
  });

  it('makes a swap file with its size at boot, before its swap unit, the path quoted', async () => {
    const c = await evalConfig({ swapDevices: [{ device: "/var/lib/swap'file", size: 512 }] });
    expect(etcText(c, 'fstab')).toContain("\n/var/lib/swap'file none swap defaults 0 0\n");
    const unit = services(c)['mkswap-var-lib-swap\\x27file'];
    expect(unit.before).toEqual(['var-lib-swap\\x27file.swap']);
    expect(unit.requiredBy).toEqual(['var-lib-swap\\x27file.swap']);
    expect(unit.script).toContain(`file='/var/lib/swap'\\''file'\n`);
    expect(unit.script).toContain('= 536870912 ]');
    expect(unit.script).toContain('fallocate -l 512MiB');
    await expect(evalConfig({ swapDevices: [{ label: 'swap', size: 512 }] })).rejects.toThrow(/swapDevices\[0\]\.size is set: device must then be the absolute path of a swap file/);
    await expect(evalConfig({ swapDevices: [{ device: '/swap file', size: 512 }] })).rejects.toThrow(/swapDevices\[0\]\.size/);
  });

  it('grows file systems with autoResize (systemd-growfs), which stage 1 does not pass to mount', async () => {
    const c = await evalConfig({ fileSystems: { '/': { autoResize: true }, '/data': { device: '/dev/vdb', fsType: 'ext4', autoResize: true } } });
    const fstab = etcText(c, 'fstab');
    expect(fstab).toContain('\nLABEL=root / ext4 defaults,x-systemd.growfs 0 1\n');
    expect(fstab).toContain('\n/dev/vdb /data ext4 defaults,x-systemd.growfs 0 2\n');
    expect(c.boot.initrd.fileSystems[0]).toMatchObject({ mountPoint: '/', options: 'defaults' });
    // The generator leaves the mounted root alone: its growfs unit is written here.
    expect(services(c)['systemd-growfs-root'].serviceConfig.ExecStart).toBe('/lib/systemd/systemd-growfs /');
    expect(services(await evalConfig({}))['systemd-growfs-root']).toBeUndefined();
  });

  it('grows the root partition with boot.growPartition before systemd-growfs', async () => {
    const c = await evalConfig({ boot: { growPartition: true } });
    const unit = services(c).growpart;
    expect(unit.before).toContain('systemd-growfs-root.service');
    expect(unit.wantedBy).toEqual(['-.mount']);
    expect(unit.script).toContain('exec growpart "/dev/$disk" "$part"');
    expect(pkgs(c)).toContain('cloud-guest-utils');
    expect(services(await evalConfig({})).growpart).toBeUndefined();
  });

  it('makes zram swap with zram-generator', async () => {
    const c = await evalConfig({ zramSwap: { enable: true, memoryPercent: 30, memoryMax: 2147483648, priority: 7, algorithm: 'lz4' } });
    expect(etcText(c, 'systemd/zram-generator.conf')).toContain('[zram0]\nzram-size = min(ram * 30 / 100, 2048)\ncompression-algorithm = lz4\nswap-priority = 7\n');
    expect(pkgs(c)).toContain('systemd-zram-generator');
    expect(c.boot.availableKernelModules).toEqual(expect.arrayContaining(['zram', 'crypto-lz4']));
    await expect(evalConfig({ zramSwap: { enable: true, swapDevices: 2, writebackDevice: '/dev/vdb' } })).rejects.toThrow(/zramSwap\.writebackDevice needs zramSwap\.swapDevices = 1/);
  });

  it('cleans /tmp at boot or makes it a tmpfs, also by the old NixOS names', async () => {
    const c = await evalConfig({ boot: { cleanTmpDir: true, tmp: { useTmpfs: true, tmpfsSize: '1G' } } });
    expect(etcText(c, 'tmpfiles.d/00-cairn.conf')).toContain('\nD! /tmp 1777 root root\n');
    expect(etcText(c, 'fstab')).toContain('\ntmpfs /tmp tmpfs mode=1777,strictatime,rw,nosuid,nodev,size=1G 0 0\n');
  });

  it('adds the modules and tools of boot.supportedFilesystems', async () => {
    const c = await evalConfig({ boot: { supportedFilesystems: ['btrfs', 'xfs'] } });
    expect(c.boot.availableKernelModules).toEqual(expect.arrayContaining(['fs-btrfs', 'fs-xfs']));
    expect(pkgs(c)).toEqual(expect.arrayContaining(['btrfs-progs', 'xfsprogs']));
  });
});

describe('boot.extraModulePackages', () => {
  it("takes NixOS's empty list, and refuses a package where it was written, saying why", async () => {
    expect((await evalConfig({ boot: { extraModulePackages: [] } })).boot.extraModulePackages).toEqual([]);
    const dir = tempDir('extra-modules');
    const file = join(dir, 'configuration.yaml');
    writeFileSync(file, 'boot:\n  extraModulePackages: [v4l2loopback-dkms]\n');
    await expect(evalSystem([file])).rejects.toThrow(/boot\.extraModulePackages[\s\S]*cannot build yet \(Debian ships them as DKMS sources[\s\S]*configuration\.yaml:2/);
  });
});

describe('system.debian.release', () => {
  it("derives the default repositories from the release, with the firmware options' component", async () => {
    const suites = (c: { packages: { repositories: { suite: string; components: string[] }[] } }) => c.packages.repositories.map((r) => `${r.suite} ${r.components.join(',')}`);
    expect(suites(await evalConfig({}))).toEqual(['trixie main', 'trixie-updates main', 'trixie-security main']);
    expect(suites(await evalConfig({ system: { debian: { release: 'bookworm' } }, hardware: { cpu: { amd: { updateMicrocode: true } } } }))).toEqual([
      'bookworm main,non-free-firmware', 'bookworm-updates main,non-free-firmware', 'bookworm-security main,non-free-firmware',
    ]);
    // usr-is-merged satisfies Debian 12's init-system-helpers; 13's base-files is merged itself.
    const base = async (m: object) => ((await evalConfig(m)).system.basePackages as unknown[]).map(String);
    expect(await base({ system: { debian: { release: 'bookworm' } } })).toContain('usr-is-merged');
    expect(await base({})).not.toContain('usr-is-merged');
    expect(await base({})).toContain('systemd');
  });

  it('refuses repositories of another release than the one named', async () => {
    await expect(evalConfig({ packages: { repositories: [{ suite: 'bookworm' }, { suite: 'bookworm-security' }] } })).rejects.toThrow(
      /packages\.repositories lists bookworm, bookworm-security, not of system\.debian\.release \(trixie\)/,
    );
    expect((await evalConfig({ system: { debian: { release: 'bookworm' } }, packages: { repositories: [{ suite: 'bookworm' }] } })).packages.repositories).toHaveLength(1);
  });
});

describe('users', () => {
  it('hashes plain-text passwords when built (only the hash enters the derivation), with warnings', async () => {
    const ev = await evalSystem([{ users: { users: { alice: { isNormalUser: true, initialPassword: 'first one' }, bob: { isNormalUser: true, password: 'hunter2', hashedPassword: '!' } } } }] as never[]);
    expect(ev.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^users\.users\.alice\.initialPassword is a plain-text password/),
        expect.stringMatching(/^users\.users\.bob\.password is a plain-text password/),
        expect.stringMatching(/^users\.users\.bob has more than one of hashedPassword, password set/),
      ]),
    );
    const drv = usersSpecDerivation([], { users: ev.spec.users.users, groups: ev.spec.users.groups }, '');
    const args = JSON.stringify(drv.args);
    expect(args).not.toContain('first one');
    expect(args).not.toContain('hunter2');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const users = (drv.args as any).users;
    const initial = users.alice.initialHashedPassword as string;
    expect(initial).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    expect(sha512Crypt('first one', initial.split('$')[2]!)).toBe(initial);
    expect(users.bob.hashedPassword).toBe('!'); // hashedPassword wins over password
    // The same configuration builds the same system.
    expect(JSON.stringify(usersSpecDerivation([], { users: ev.spec.users.users, groups: ev.spec.users.groups }, '').args)).toBe(args);
  });

  it.skipIf(!hasCommand('openssl'))('hashes as crypt(3) does (SHA-512, checked against openssl)', () => {
    for (const [pw, salt] of [['hunter2', 'abcdefgh'], ['x'.repeat(70), 'saltsaltsaltsalt'], ['pässwörd', 'Z./9']] as const) {
      const ref = spawnSync('openssl', ['passwd', '-6', '-salt', salt, pw], { encoding: 'utf8' }).stdout.trim();
      expect(sha512Crypt(pw, salt)).toBe(ref);
    }
  });

  it('gives normal users and root users.defaultUserShell', async () => {
    const c = await evalConfig({ users: { defaultUserShell: '/bin/zsh', users: { alice: { isNormalUser: true }, svc: { isSystemUser: true, group: 'nogroup' }, root: {} } } });
    expect(c.users.users.alice.shell).toBe('/bin/zsh');
    expect(c.users.users.root.shell).toBe('/bin/zsh');
    expect(c.users.users.svc.shell).toBe('/usr/sbin/nologin');
  });
});

describe('networking', () => {
  it('opens ports per interface and refuses iptables commands and an iptables firewall', async () => {
    const c = await evalConfig({ networking: { firewall: { interfaces: { wg0: { allowedTCPPorts: [9100], allowedUDPPortRanges: [{ from: 60000, to: 60010 }] } } } } });
    expect(c.networking.firewall.ruleset).toContain('\n    iifname "wg0" tcp dport { 9100 } accept\n    iifname "wg0" udp dport { 60000-60010 } accept\n');
    await expect(evalConfig({ networking: { firewall: { extraCommands: 'iptables -A INPUT -j ACCEPT' } } })).rejects.toThrow(/networking\.firewall\.extraCommands holds iptables shell commands/);
    await expect(evalConfig({ networking: { nftables: { enable: false } } })).rejects.toThrow(/networking\.nftables\.enable = false/);
    expect(pkgs(await evalConfig({ networking: { firewall: { enable: false }, nftables: { enable: false } } }))).not.toContain('nftables');
  });

  it("loads the modules of the firewall's expressions in one go before the ruleset", async () => {
    const c = await evalConfig({});
    expect(c.boot.kernelModules).toEqual(['nf_tables', 'nft_ct', 'nft_limit']);
    expect(c.environment.etc['systemd/system/nftables.service'].text).toMatch(/\nAfter=systemd-modules-load\.service\n/);
    const all = await evalConfig({ networking: { firewall: { allowPing: false, logRefusedConnections: true, rejectPackets: true } } });
    expect(all.boot.kernelModules).toEqual(['nf_tables', 'nft_ct', 'nft_limit', 'nft_log', 'nft_reject_inet']);
    expect((await evalConfig({ networking: { firewall: { enable: false, allowPing: false } } })).boot.kernelModules).toEqual([]);
  });

  it('writes static routes as networkd [Route] sections', async () => {
    const c = await evalConfig({
      networking: {
        interfaces: {
          eth0: {
            ipv4: { addresses: [{ address: '192.0.2.10', prefixLength: 24 }], routes: [{ address: '198.51.100.0', prefixLength: 24, via: '192.0.2.254', options: { metric: '50' } }] },
            ipv6: { routes: [{ address: '2001:db8:1::', prefixLength: 48, type: 'blackhole' }] },
          },
        },
      },
    });
    expect(etcText(c, 'systemd/network/40-eth0.network')).toContain('[Route]\nDestination=198.51.100.0/24\nGateway=192.0.2.254\nMetric=50\n\n[Route]\nDestination=2001:db8:1::/48\nType=blackhole\n');
    await expect(evalConfig({ networking: { interfaces: { eth0: { ipv4: { routes: [{ address: '10.0.0.0\n[Network]', prefixLength: 8 }] } } } } })).rejects.toThrow(/routes/);
  });

  it('names interfaces by the kernel order without predictable names; only networkd', async () => {
    expect((await evalConfig({ networking: { usePredictableInterfaceNames: false } })).boot.kernelParams).toContain('net.ifnames=0');
    expect((await evalConfig({})).boot.kernelParams).not.toContain('net.ifnames=0');
    await expect(evalConfig({ networking: { useNetworkd: false } })).rejects.toThrow(/networking\.useNetworkd = false/);
  });

  it('writes services.udev.extraRules to 99-local.rules and restarts udevd when they change', async () => {
    const c = await evalConfig({ services: { udev: { extraRules: 'KERNEL=="null", SYMLINK+="x"' } } });
    expect(etcText(c, 'udev/rules.d/99-local.rules')).toContain('\nKERNEL=="null", SYMLINK+="x"\n');
    expect(services(c)['systemd-udevd'].overrideStrategy).toBe('asDropin');
  });
});

describe('openssh', () => {
  it('starts sshd per connection with startWhenNeeded, and drops SFTP when not allowed', async () => {
    const c = await evalConfig({ services: { openssh: { enable: true, startWhenNeeded: true, ports: [22, 2222], allowSFTP: false } } });
    expect(c.systemd.sockets.sshd.listenStreams).toEqual(['22', '2222']);
    expect(c.systemd.sockets.sshd.socketConfig.Accept).toBe(true);
    expect(services(c)['sshd@'].serviceConfig.ExecStart).toBe('-/usr/sbin/sshd -i -f /etc/ssh/sshd_config');
    expect(services(c).sshd.wantedBy).toEqual([]);
    expect(c.services.openssh.configText).not.toContain('Subsystem');
    const d = await evalConfig({ services: { openssh: { enable: true, sftpFlags: ['-l INFO'] } } });
    expect(d.services.openssh.configText).toContain('\nSubsystem sftp internal-sftp -l INFO\n');
    expect(services(d).sshd.wantedBy).toEqual(['multi-user.target']);
  });
});

describe('hardware, console, time, programs', () => {
  it('installs microcode and firmware packages', async () => {
    const c = await evalConfig({ hardware: { enableRedistributableFirmware: true, cpu: { intel: { updateMicrocode: true }, amd: { updateMicrocode: true } } } });
    expect(pkgs(c)).toEqual(expect.arrayContaining(['firmware-linux-nonfree', 'intel-microcode', 'amd64-microcode']));
  });

  it('writes vconsole.conf for another keymap or font, and adjtime for a local-time RTC', async () => {
    const c = await evalConfig({ console: { keyMap: 'de-latin1', font: 'Lat2-Terminus16' }, time: { hardwareClockInLocalTime: true } });
    expect(etcText(c, 'vconsole.conf')).toContain('\nKEYMAP=de-latin1\nFONT=Lat2-Terminus16\n');
    expect(etcText(c, 'adjtime')).toBe('0.0 0 0.0\n0\nLOCAL\n');
    const d = await evalConfig({});
    expect(d.environment.etc['vconsole.conf']).toBeUndefined();
    expect(d.environment.etc.adjtime).toBeUndefined();
    await expect(evalConfig({ console: { keyMap: 'us\nFONT=x' } })).rejects.toThrow(/console\.keyMap/);
  });

  it('configures zsh as a login shell', async () => {
    const c = await evalConfig({ programs: { zsh: { enable: true, shellAliases: { ll: "ls -l '$x'" }, interactiveShellInit: 'bindkey -e' } } });
    expect(pkgs(c)).toContain('zsh');
    expect(etcText(c, 'shells')).toContain('\n/bin/zsh\n');
    expect(etcText(c, 'zsh/zprofile')).toContain("emulate sh -c 'source /etc/profile'");
    const rc = etcText(c, 'zsh/zshrc');
    expect(rc).toContain(`alias -- 'll=ls -l '\\''$x'\\'''\n`);
    expect(rc).toContain('\nbindkey -e\n');
    expect(rc).toContain('autoload -U compinit && compinit');
  });

  it('takes NixOS names: boot.kernelPackages, environment.sessionVariables', async () => {
    const c = await evalConfig({ boot: { kernelPackages: 'linux-image-cloud-amd64' }, environment: { sessionVariables: { EDITOR: 'vim' } } });
    expect(c.boot.kernelPackage.name).toBe('linux-image-cloud-amd64');
    expect(c.environment.variables.EDITOR).toBe('vim');
  });

  it('configures fish, bash, git, tmux, htop, vim and neovim', async () => {
    const c = await evalConfig({
      programs: {
        fish: { enable: true, shellAliases: { ll: "ls -l 'x'" } },
        bash: { shellAliases: { gs: 'git status' }, interactiveShellInit: 'set -o vi' },
        git: { enable: true, config: { init: { defaultBranch: 'main' }, url: { 'https://example.org/': { insteadOf: ['ex:', 'e"x:'] } } } },
        tmux: { enable: true, clock24: true, keyMode: 'vi', shortcut: 'a', historyLimit: 5000 },
        htop: { enable: true, settings: { tree_view: true, hide_kernel_threads: false, fields: [0, 48, 17] } },
        vim: { enable: true },
        neovim: { enable: true, defaultEditor: true, viAlias: true, configure: { customRC: 'set number' } },
      },
    });
    expect(pkgs(c)).toEqual(expect.arrayContaining(['fish', 'git', 'tmux', 'htop', 'vim', 'neovim']));
    expect(etcText(c, 'shells')).toContain('\n/usr/bin/fish\n');
    expect(etcText(c, 'fish/conf.d/cairn.fish')).toContain("\n  alias 'll' 'ls -l \\'x\\''\n");
    expect(etcText(c, 'profile.d/cairn-bash.sh')).toContain(`    alias 'gs=git status'\nset -o vi\n`);
    expect(etcText(c, 'gitconfig')).toContain('[init]\n\tdefaultBranch = "main"\n[url "https://example.org/"]\n\tinsteadOf = "ex:"\n\tinsteadOf = "e\\"x:"\n');
    const tmux = etcText(c, 'tmux.conf');
    for (const l of ['set -g prefix C-a', 'setw -g clock-mode-style 24', 'set -g mode-keys vi', 'set -g history-limit 5000']) expect(tmux).toContain(`\n${l}\n`);
    expect(etcText(c, 'htoprc')).toBe('tree_view=1\nhide_kernel_threads=0\nfields=0 48 17\n');
    expect(c.environment.variables.EDITOR).toBe('nvim');
    expect(c.environment.shellAliases.vi).toBe('nvim');
    expect(etcText(c, 'xdg/nvim/sysinit.vim')).toContain('\nset number\n');
    await expect(evalConfig({ programs: { git: { enable: true, config: { core: { editor: 'vim\n[alias]' } } } } })).rejects.toThrow(/programs\.git\.config/);
  });

  it('accepts NixOS settings cairn has no use for, saying so', async () => {
    const ev = await evalSystem([{ boot: { loader: { efi: { canTouchEfiVariables: true } } } }] as never[]);
    expect(ev.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/canTouchEfiVariables: cairn writes no EFI boot variables/)]));
    expect(pkgs(await evalConfig({ documentation: { man: { enable: true } } }))).toContain('man-db');
    expect(pkgs(await evalConfig({ documentation: { enable: false, man: { enable: true } } }))).not.toContain('man-db');
  });
});

describe("packages' outputs: documentation and translations", () => {
  const outputs = async (m: object): Promise<string[]> => [...(await evalConfig(m)).environment.extraOutputsToInstall].sort();

  it('asks for no output but the main one by default: no documentation, and C.UTF-8 reads no translation', async () => {
    expect(await outputs({})).toEqual([]);
  });

  it("adds the documentation outputs and their readers by NixOS's options, none when documentation.enable is off", async () => {
    const all = { documentation: { man: { enable: true }, doc: { enable: true }, info: { enable: true } } };
    expect(await outputs(all)).toEqual(['doc', 'info', 'man']);
    expect(pkgs(await evalConfig(all))).toEqual(expect.arrayContaining(['man-db', 'info']));
    expect(await outputs({ documentation: { ...all.documentation, enable: false } })).toEqual([]);
  });

  it('adds the translations of the languages of every locale the system names', async () => {
    expect(await outputs({ i18n: { defaultLocale: 'en_US.UTF-8' } })).toEqual(['lang-en', 'lang-en_US']);
    expect(await outputs({ i18n: { defaultLocale: 'de_CH.UTF-8', extraLocaleSettings: { LC_TIME: 'sr_RS.UTF-8@latin' }, supportedLocales: ['pt_BR.UTF-8', 'C.UTF-8'] } })).toEqual([
      'lang-de', 'lang-de_CH', 'lang-pt', 'lang-pt_BR', 'lang-sr', 'lang-sr@latin', 'lang-sr_RS', 'lang-sr_RS@latin',
    ]);
  });
});

describe('initial passwords at activation (users.awk)', () => {
  const run = (dir: string, users: string, shadow: string, mutable: 0 | 1): string => {
    const f = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const out = join(dir, 'out');
    mkdirSync(out, { recursive: true });
    const vars = {
      spec_users: f('spec-users', users),
      spec_groups: f('spec-groups', 'users\t100\t\tbase\n'),
      old_passwd: f('passwd', shadow ? 'alice:x:1000:100::/home/alice:/bin/zsh\n' : ''),
      old_group: f('group', ''),
      old_shadow: f('shadow', shadow),
      old_gshadow: f('gshadow', ''),
      uid_map: f('uid-map', ''),
      gid_map: f('gid-map', ''),
      prev_users: f('prev-users', ''),
      prev_groups: f('prev-groups', ''),
      hashes: f('hashes', ''),
      mutable: String(mutable),
      out,
    };
    const r = spawnSync('awk', [...Object.entries(vars).flatMap(([k, v]) => ['-v', `${k}=${v}`]), '-f', join(root, 'scripts/activate/users.awk')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return readFileSync(join(out, 'shadow'), 'utf8');
  };
  const alice = (hash: string, initial: string) => `alice\t-\tusers\t\t/home/alice\t/bin/zsh\tnormal\t1\t${hash}\t-\t${initial}\n`;

  it('gives a new account its initial password and keeps the one a mutable account has since', () => {
    const dir = tempDir('users-awk');
    expect(run(dir, alice('-', '$6$init'), '', 1)).toMatch(/^alice:\$6\$init:/m);
    expect(run(dir, alice('-', '$6$init'), 'alice:$6$changed:19000:0:99999:7:::\n', 1)).toMatch(/^alice:\$6\$changed:/m);
    // Immutable users: the initial password is the declared one when nothing else is; hashedPassword wins.
    expect(run(dir, alice('-', '$6$init'), 'alice:$6$changed:19000:0:99999:7:::\n', 0)).toMatch(/^alice:\$6\$init:/m);
    expect(run(dir, alice('$6$declared', '$6$init'), '', 0)).toMatch(/^alice:\$6\$declared:/m);
  });
});
