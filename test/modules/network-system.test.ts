import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lib } from '../../src/lib/index.js';
import { etcText, evalConfig, evalServer, hasCommand, tempDir } from './helpers.js';

describe('networking', () => {
  it('gives static interfaces their addresses and gateways through networkd', async () => {
    const c = await evalServer();
    const eth0 = etcText(c, 'systemd/network/40-eth0.network');
    expect(eth0).toContain('[Match]\nName=eth0\n');
    expect(eth0).toContain('Address=192.0.2.10/24\nAddress=2001:db8::10/64\nGateway=192.0.2.1\nGateway=2001:db8::1\nDHCP=no\n');
    expect(c.environment.etc['systemd/system/multi-user.target.wants/systemd-networkd.service'].symlink).toBe('/lib/systemd/system/systemd-networkd.service');
  });

  it('uses DHCP where nothing is static', async () => {
    const c = await evalConfig({ networking: { interfaces: { ens3: {} } } });
    expect(etcText(c, 'systemd/network/40-ens3.network')).toContain('DHCP=yes');
    expect(etcText(c, 'systemd/network/99-ethernet-default-dhcp.network')).toContain('[Match]\nName=en* eth*\nType=ether\n');
    const off = await evalConfig({ networking: { useDHCP: false } });
    expect(off.environment.etc['systemd/network/99-ethernet-default-dhcp.network']).toBeUndefined();
  });

  it('gives a gateway bound to an interface only to that interface', async () => {
    const c = await evalConfig({
      networking: {
        interfaces: { a: { ipv4: { addresses: [{ address: '10.0.0.2', prefixLength: 24 }] } }, b: { ipv4: { addresses: [{ address: '10.1.0.2', prefixLength: 24 }] } } },
        defaultGateway: { address: '10.1.0.1', interface: 'b' },
      },
    });
    expect(etcText(c, 'systemd/network/40-a.network')).not.toContain('Gateway=');
    expect(etcText(c, 'systemd/network/40-b.network')).toContain('Gateway=10.1.0.1\n');
  });

  it('writes /etc/hosts and /etc/hostname', async () => {
    const c = await evalServer();
    expect(etcText(c, 'hosts')).toContain('\n127.0.0.1 localhost\n127.0.1.1 web1.example.org web1\n');
    expect(c.networking.fqdn).toBe('web1.example.org');
    expect(etcText(c, 'hostname')).toBe('web1\n');
    const h = await evalConfig({ networking: { hosts: { '192.0.2.20': ['db', 'db.lan'] }, extraHosts: '192.0.2.21 cache' } });
    expect(etcText(h, 'hosts')).toMatch(/127\.0\.1\.1 cairn\n(.*\n)*192\.0\.2\.20 db db\.lan\n192\.0\.2\.21 cache\n$/);
  });

  it('points resolv.conf at resolved, with the declared nameservers', async () => {
    const c = await evalServer();
    expect(c.environment.etc['resolv.conf'].symlink).toBe('/run/systemd/resolve/stub-resolv.conf');
    expect(etcText(c, 'systemd/resolved.conf')).toContain('[Resolve]\nDNS=192.0.2.53\n');
    expect(c.users.users['systemd-resolve'].isSystemUser).toBe(true);
    const plain = await evalConfig({ services: { resolved: { enable: false } }, networking: { nameservers: ['192.0.2.53', '192.0.2.54'] } });
    expect(etcText(plain, 'resolv.conf')).toMatch(/\nnameserver 192\.0\.2\.53\nnameserver 192\.0\.2\.54\n$/);
  });

  describe('firewall', () => {
    it('is on by default: loopback, replies and ping allowed, the rest dropped', async () => {
      const rules = etcText(await evalConfig({}), 'nftables.conf');
      expect(rules).toContain('policy drop;');
      expect(rules).toContain('iifname "lo" accept');
      expect(rules).toContain('ct state vmap { invalid : drop, established : accept, related : accept }');
      expect(rules).toContain('icmp type echo-request');
      expect(rules).toMatch(/\n {4}drop\n {2}\}\n\}\n$/);
    });

    it('opens declared ports and ranges, honours allowPing and rejectPackets, and can be off', async () => {
      const rules = etcText(
        await evalConfig({ networking: { firewall: { allowedTCPPorts: [443, 80, 80], allowedUDPPorts: [53], allowedTCPPortRanges: [{ from: 8000, to: 8010 }], allowPing: false, rejectPackets: true } } }),
        'nftables.conf',
      );
      expect(rules).toContain('tcp dport { 80, 443, 8000-8010 } accept');
      expect(rules).toContain('udp dport { 53 } accept');
      expect(rules).not.toContain('echo-request');
      expect(rules).toMatch(/\n {4}reject\n/);
      const off = await evalConfig({ networking: { firewall: { enable: false } } });
      expect(off.environment.etc['nftables.conf']).toBeUndefined();
      expect(off.systemd.services.nftables).toBeUndefined();
    });

    it.runIf(hasCommand('nft'))('nft -c accepts the ruleset (nftables on the host)', async () => {
      const dir = tempDir('nft');
      writeFileSync(join(dir, 'rules'), etcText(await evalServer(), 'nftables.conf'));
      const r = spawnSync('nft', ['-c', '-f', join(dir, 'rules')], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    });
  });
});

describe('system settings', () => {
  it('links /etc/localtime into tzdata', async () => {
    const c = await evalServer();
    expect(c.environment.etc.localtime.symlink).toBe('/usr/share/zoneinfo/Europe/Paris');
    expect(etcText(c, 'timezone')).toBe('Europe/Paris\n');
    expect(c.environment.systemPackages.map(String)).toContain('tzdata');
    await expect(evalConfig({ time: { timeZone: '../../etc/shadow' } })).rejects.toThrow(/time.timeZone/);
  });

  it('sets the locale; C.UTF-8 needs no compiling, others are compiled at activation', async () => {
    const c = await evalConfig({});
    expect(etcText(c, 'default/locale')).toMatch(/\nLANG=C\.UTF-8\n$/);
    expect(c.system.activationScripts.locales).toBeUndefined();
    const de = await evalConfig({ i18n: { defaultLocale: 'de_DE.UTF-8', extraLocaleSettings: { LC_TIME: 'en_GB.UTF-8' } } });
    expect(etcText(de, 'default/locale')).toMatch(/\nLANG=de_DE\.UTF-8\nLC_TIME=en_GB\.UTF-8\n$/);
    expect(de.environment.variables.LOCPATH).toBe('/var/lib/cairn/locales');
    expect(etcText(de, 'systemd/system.conf.d/cairn.conf')).toContain('[Manager]\nDefaultEnvironment="LOCPATH=/var/lib/cairn/locales"\n');
    expect(de.system.activationScripts.locales.text).toContain("-i 'de_DE' -f 'UTF-8' '/var/lib/cairn/locales/de_DE.utf8'");
  });

  it.runIf(hasCommand('localedef') && existsSync('/usr/share/i18n/locales/de_DE'))('the locale step compiles locales glibc then uses (locales on the host)', () => {
    const dir = tempDir('locales');
    // The view holds shell words, quoted as the module quotes them.
    const q = lib.shellQuote;
    const locales = [{ name: q('de_DE.UTF-8'), input: q('de_DE'), charmap: q('UTF-8'), folder: q(`${dir}/de_DE.utf8`), ctype: q(`${dir}/de_DE.utf8/LC_CTYPE`) }];
    const script = lib.renderTemplate('i18n/locale.locales.sh', { dir: q(dir), locales });
    expect(spawnSync('bash', ['-e', '-c', script]).status).toBe(0);
    expect(existsSync(join(dir, 'de_DE.utf8/LC_CTYPE'))).toBe(true);
    const r = spawnSync('date', ['-d', '2024-03-01', '+%B'], { env: { LOCPATH: dir, LC_ALL: 'de_DE.UTF-8' }, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('März');
  });

  it('exports environment variables and aliases that a shell sees', async () => {
    const c = await evalConfig({ environment: { variables: { EDITOR: 'vim', QUOTE: "it's", LIST: ['/a', '/b'] }, shellAliases: { ll: 'ls -l', say: "echo 'hi'" } } });
    expect(etcText(c, 'environment')).toContain('\nEDITOR="vim"\nQUOTE="it\'s"\nLIST="/a:/b"\n');
    const dir = tempDir('profile');
    writeFileSync(join(dir, 'env.sh'), etcText(c, 'profile.d/cairn-environment.sh'));
    writeFileSync(join(dir, 'aliases.sh'), etcText(c, 'profile.d/cairn-aliases.sh'));
    const r = spawnSync('bash', ['-i', '-c', `. ${dir}/env.sh; . ${dir}/aliases.sh; echo "$QUOTE|$LIST"; alias say`], { encoding: 'utf8' });
    expect(r.stdout).toContain("it's|/a:/b\n");
    expect(r.stdout).toContain("alias say='echo '\\''hi'\\'''");
    // Not interactive: the aliases file returns early and defines nothing.
    expect(spawnSync('sh', ['-c', `. ${dir}/aliases.sh; alias ll`]).status).not.toBe(0);
  });

  it('puts an autologin getty on the serial console', async () => {
    const c = await evalConfig({ services: { getty: { autologinUser: 'root' } } });
    expect(etcText(c, 'systemd/system/serial-getty@ttyS0.service.d/overrides.conf')).toContain("[Service]\nExecStart=\nExecStart=-/sbin/agetty -o '-p -f -- \\\\u' --autologin root --keep-baud 115200,57600,38400,9600 - $TERM\n");
    expect(c.environment.etc['systemd/system/getty.target.wants/serial-getty@ttyS0.service'].symlink).toBe('/lib/systemd/system/serial-getty@.service');
    expect(etcText(await evalConfig({}), 'systemd/system/serial-getty@ttyS0.service.d/overrides.conf')).not.toContain('--autologin');
  });

  it('configures journald and timesyncd, restarting them when their files change', async () => {
    const c = await evalConfig({ services: { journald: { storage: 'volatile', console: '/dev/ttyS0', extraConfig: 'MaxRetentionSec=1month' }, timesyncd: { servers: ['ntp1.example.org'] } } });
    expect(etcText(c, 'systemd/journald.conf')).toContain('[Journal]\nStorage=volatile\nForwardToConsole=true\nTTYPath=/dev/ttyS0\n');
    expect(etcText(c, 'systemd/journald.conf')).toMatch(/\nMaxRetentionSec=1month\n$/);
    expect(etcText(c, 'systemd/timesyncd.conf')).toContain('[Time]\nNTP=ntp1.example.org\n');
    const d = await evalConfig({});
    const trig = (x: any, f: string) => /X-Restart-Triggers=(\S+)/.exec(etcText(x, f))![1];
    expect(trig(c, 'systemd/system/systemd-journald.service.d/overrides.conf')).not.toBe(trig(d, 'systemd/system/systemd-journald.service.d/overrides.conf'));
    expect(trig(c, 'systemd/system/systemd-timesyncd.service.d/overrides.conf')).not.toBe(trig(d, 'systemd/system/systemd-timesyncd.service.d/overrides.conf'));
    expect((await evalConfig({ services: { timesyncd: { enable: false } } })).environment.etc['systemd/timesyncd.conf']).toBeUndefined();
  });

  it('runs no time daemon and no serial login prompt in a test VM, unless asked', async () => {
    const vm = await evalConfig({ virtualisation: { vm: true }, testing: { enable: true } });
    expect(vm.services.timesyncd.enable).toBe(false);
    expect(vm.environment.etc['systemd/timesyncd.conf']).toBeUndefined();
    expect(vm.environment.etc['systemd/system/serial-getty@ttyS0.service'].symlink).toBe('/dev/null');
    expect(vm.environment.etc['systemd/system/getty.target.wants/serial-getty@ttyS0.service']).toBeUndefined();
    const on = await evalConfig({ virtualisation: { vm: true }, services: { timesyncd: { enable: true } } });
    expect(etcText(on, 'systemd/timesyncd.conf')).toContain('services.timesyncd');
    expect(on.environment.etc['systemd/system/sysinit.target.wants/systemd-timesyncd.service']).toBeDefined();
    expect(on.environment.etc['systemd/system/getty.target.wants/serial-getty@ttyS0.service'].symlink).toBe('/lib/systemd/system/serial-getty@.service');
  });

  it('keeps the motd module of the example working', async () => {
    expect(etcText(await evalServer(), 'motd')).toBe('This is web1.\nManaged by cairn: local changes are replaced on the next switch.\n');
  });
});
