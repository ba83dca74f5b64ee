/**
 * networking.wireguard, networking.wg-quick and networking.networkmanager as they render: the
 * interface unit's script (run here against stand-in `ip`/`wg`), wg-quick's file and hooks, the
 * refusals of keys written into the configuration or kept in the store, and what enabling
 * NetworkManager changes (profiles instead of networkd files, NetworkManager.conf, D-Bus).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CairnError } from '../../src/errors.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { etcText, evalConfig, tempDir } from './helpers.js';

const PUB_A = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=';
const PUB_B = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=';
const PRIVATE = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=';

const wireguard = (wg0: object) => ({ networking: { wireguard: { interfaces: { wg0 } } } });
const wgQuick = (wg0: object) => ({ networking: { 'wg-quick': { interfaces: { wg0 } } } });

/** The script a service's ExecStart (or another key) names, from the evaluated /etc. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function unitScript(config: any, unit: string, key = 'ExecStart'): string {
  const text = etcText(config, `systemd/system/${unit}`);
  const path = new RegExp(`^${key}=(/etc/\\S+)$`, 'm').exec(text)?.[1];
  if (!path) throw new Error(`${unit} has no ${key} script:\n${text}`);
  return etcText(config, path.slice('/etc/'.length));
}

/** The message of the error evaluating a YAML configuration raises (with `file.yaml` in it). */
async function yamlFailure(yaml: string): Promise<{ message: string; file: string }> {
  const file = join(tempDir('wg'), 'machine.yaml');
  writeFileSync(file, yaml);
  try {
    const { config } = await evalConfigFile(file);
    JSON.stringify(config.environment.etc);
    JSON.stringify(config.systemd.services);
  } catch (err) {
    expect(err).toBeInstanceOf(CairnError);
    return { message: (err as Error).message, file };
  }
  throw new Error('not refused');
}

/** Runs a generated script with stand-ins for ip, wg, modprobe that log each argument on its own line. */
function runWithStubs(script: string): string {
  const dir = tempDir('wg-stubs');
  mkdirSync(join(dir, 'bin'));
  for (const cmd of ['ip', 'wg', 'modprobe']) {
    writeFileSync(join(dir, 'bin', cmd), `#!/bin/bash\n{ echo "$(basename "$0")"; for a in "$@"; do echo "  [$a]"; done; } >> ${JSON.stringify(join(dir, 'log'))}\n`);
    chmodSync(join(dir, 'bin', cmd), 0o755);
  }
  writeFileSync(join(dir, 'script'), script);
  const r = spawnSync('bash', [join(dir, 'script')], { env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin` }, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(join(dir, 'log'), 'utf8');
}

describe('networking.wireguard', () => {
  const wg0 = {
    ips: ['10.100.0.1/24', 'fd00:23::1/64'],
    listenPort: 51820,
    mtu: 1380,
    privateKeyFile: '/run/secrets/wg0-key',
    peers: [
      { name: 'laptop', publicKey: PUB_A, allowedIPs: ['10.100.0.2/32', 'fd00:23::2/128'], endpoint: 'vpn.example.org:51820', persistentKeepalive: 25, presharedKeyFile: '/run/secrets/psk' },
      { publicKey: PUB_B, allowedIPs: ['10.100.0.3/32'] },
    ],
    postSetup: 'echo up',
  };

  it('makes wireguard-<name>.service: link, key from its file, addresses, peers and their routes, each value one argument', async () => {
    const config = await evalConfig(wireguard(wg0));
    const unit = etcText(config, 'systemd/system/wireguard-wg0.service');
    expect(unit).toContain('Before=network.target');
    expect(unit).toContain('Type=oneshot\nRemainAfterExit=true');
    expect(config.environment.etc['systemd/system/multi-user.target.wants/wireguard-wg0.service'].symlink).toBe('/etc/systemd/system/wireguard-wg0.service');
    expect(config.environment.systemPackages.map(String)).toContain('wireguard-tools');
    expect(config.boot.availableKernelModules).toContain('wireguard');
    const log = runWithStubs(unitScript(config, 'wireguard-wg0.service'));
    expect(log).toContain('ip\n  [link]\n  [add]\n  [dev]\n  [wg0]\n  [type]\n  [wireguard]\n');
    expect(log).toContain('ip\n  [link]\n  [set]\n  [dev]\n  [wg0]\n  [mtu]\n  [1380]\n');
    expect(log).toContain('ip\n  [address]\n  [add]\n  [fd00:23::1/64]\n  [dev]\n  [wg0]\n');
    expect(log).toContain('wg\n  [set]\n  [wg0]\n  [private-key]\n  [/run/secrets/wg0-key]\n  [listen-port]\n  [51820]\n');
    expect(log).toContain(
      `wg\n  [set]\n  [wg0]\n  [peer]\n  [${PUB_A}]\n  [preshared-key]\n  [/run/secrets/psk]\n  [endpoint]\n  [vpn.example.org:51820]\n  [persistent-keepalive]\n  [25]\n  [allowed-ips]\n  [10.100.0.2/32,fd00:23::2/128]\n`,
    );
    expect(log).toContain('ip\n  [route]\n  [replace]\n  [10.100.0.3/32]\n  [dev]\n  [wg0]\n  [table]\n  [main]\n');
    // The link is up before the routes through it.
    expect(log.indexOf('[up]')).toBeLessThan(log.indexOf('[route]'));
    const stop = runWithStubs(unitScript(config, 'wireguard-wg0.service', 'ExecStopPost'));
    expect(stop).toBe('ip\n  [link]\n  [del]\n  [dev]\n  [wg0]\n');
  });

  it('generatePrivateKeyFile makes the key with wg genkey, mode 0600, only when there is none', async () => {
    const config = await evalConfig(wireguard({ ...wg0, privateKeyFile: '/var/lib/wireguard/wg0.key', generatePrivateKeyFile: true }));
    const script = unitScript(config, 'wireguard-wg0.service');
    expect(script).toContain("if [ ! -f '/var/lib/wireguard/wg0.key' ]; then mkdir -p -m 0755 \"$(dirname '/var/lib/wireguard/wg0.key')\"; (umask 077; wg genkey > '/var/lib/wireguard/wg0.key'); fi");
  });

  it('dynamicEndpointRefreshSeconds: a unit per such peer sets its endpoint again and again, named as NixOS names it', async () => {
    const config = await evalConfig(wireguard({ ...wg0, peers: [{ ...wg0.peers[0], dynamicEndpointRefreshSeconds: 30, dynamicEndpointRefreshRestartSeconds: 10 }, { ...wg0.peers[1], name: 'büro 2' }] }));
    const units = Object.keys(config.systemd.services).filter((u) => u.includes('-peer-'));
    expect(units).toEqual(['wireguard-wg0-peer-laptop-refresh']);
    const unit = etcText(config, 'systemd/system/wireguard-wg0-peer-laptop-refresh.service');
    expect(unit).toContain('BindsTo=wireguard-wg0.service');
    expect(unit).toContain('Environment="WG_ENDPOINT_RESOLUTION_RETRIES=infinity"');
    expect(unit).toContain('Restart=always\nRestartSec=10');
    expect(unitScript(config, 'wireguard-wg0-peer-laptop-refresh.service')).toContain(`while wg set 'wg0' peer '${PUB_A}' endpoint 'vpn.example.org:51820'; do sleep 30; done`);
    const byKey = await evalConfig(wireguard({ ...wg0, peers: [{ publicKey: PUB_A, allowedIPs: [], endpoint: 'h:1', dynamicEndpointRefreshSeconds: 5 }] }));
    expect(Object.keys(byKey.systemd.services)).toContain('wireguard-wg0-peer-xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg\\x3d-refresh');
  });

  it('allowedIPsAsRoutes = false and another table', async () => {
    const none = unitScript(await evalConfig(wireguard({ ...wg0, allowedIPsAsRoutes: false })), 'wireguard-wg0.service');
    expect(none).not.toContain('ip route');
    const t = unitScript(await evalConfig(wireguard({ ...wg0, table: '1000' })), 'wireguard-wg0.service');
    expect(t).toContain("ip route replace '10.100.0.2/32' dev 'wg0' table '1000'");
  });

  it('never puts a private key in the configuration: the inline key is refused, naming privateKeyFile and where it was written', async () => {
    const { message, file } = await yamlFailure(`networking:\n  wireguard:\n    interfaces:\n      wg0:\n        ips: [10.0.0.1/24]\n        privateKey: ${PRIVATE}\n`);
    expect(message).toContain("networking.wireguard.interfaces.wg0.privateKey");
    expect(message).toContain(`${file}:6`);
    expect(message).toContain('privateKeyFile');
    expect(message).toContain('world-readable store');
    // The refused key itself is not repeated on the terminal (or in CI logs).
    expect(message).not.toContain(PRIVATE);
  });

  it('refuses a key file in the store, and an inline preshared key', async () => {
    const inStore = await yamlFailure('networking:\n  wireguard:\n    interfaces:\n      wg0:\n        privateKeyFile: /cairn/store/abc-key\n');
    expect(inStore.message).toContain('networking.wireguard.interfaces.wg0.privateKeyFile');
    expect(inStore.message).toContain(`${inStore.file}:5`);
    expect(inStore.message).toContain('outside the store');
    const psk = await yamlFailure(`networking:\n  wireguard:\n    interfaces:\n      wg0:\n        privateKeyFile: /run/k\n        peers:\n          - publicKey: ${PUB_A}\n            allowedIPs: [10.0.0.2/32]\n            presharedKey: ${PRIVATE}\n`);
    expect(psk.message).toContain('presharedKey');
    expect(psk.message).toContain(`${psk.file}:9`);
  });

  it('refuses values that would break the script or the file: a bad key, an endpoint with a shell word, a quote in a path', async () => {
    for (const [line, option] of [
      ['privateKeyFile: "/run/k\'; rm -rf /"', 'privateKeyFile'],
      ['ips: ["10.0.0.1/24 dev lo"]', 'ips'],
    ] as const) {
      const { message } = await yamlFailure(`networking:\n  wireguard:\n    interfaces:\n      wg0:\n        ${line}\n`);
      expect(message).toContain(`networking.wireguard.interfaces.wg0.${option}`);
    }
    const bad = await yamlFailure('networking:\n  wireguard:\n    interfaces:\n      wg0:\n        privateKeyFile: /run/k\n        peers:\n          - publicKey: notakey\n            allowedIPs: []\n            endpoint: "h:1;reboot"\n');
    expect(bad.message).toMatch(/publicKey|endpoint/);
  });

  it('an interface without a key file fails the build, saying where keys come from', async () => {
    await expect(evalConfig(wireguard({ ips: ['10.0.0.1/24'] }))).rejects.toThrow(/networking\.wireguard\.interfaces\.wg0\.privateKeyFile: .*outside the store/);
  });

  it('does not open listenPort in the firewall (as NixOS)', async () => {
    const config = await evalConfig(wireguard(wg0));
    expect(config.networking.firewall.allowedUDPPorts).not.toContain(51820);
  });
});

describe('networking.wg-quick', () => {
  const wg0 = {
    address: ['10.200.0.2/24'],
    dns: ['10.200.0.53'],
    listenPort: 51821,
    privateKeyFile: '/run/secrets/wg-quick',
    table: 'main',
    mtu: 1280,
    postUp: 'logger "tunnel up"',
    peers: [{ publicKey: PUB_A, allowedIPs: ['10.200.0.0/24'], endpoint: '[2001:db8::1]:51820', presharedKeyFile: '/run/secrets/psk', persistentKeepalive: 25 }],
  };

  it('writes /etc/wireguard/<name>.conf without any key; the PostUp hook sets the keys from their files', async () => {
    const config = await evalConfig(wgQuick(wg0));
    const entry = config.environment.etc['wireguard/wg0.conf'];
    expect(entry.mode).toBe('0600');
    const text: string = entry.text;
    expect(text).toContain('[Interface]\nAddress = 10.200.0.2/24\nDNS = 10.200.0.53\nTable = main\nMTU = 1280\nListenPort = 51821\n');
    expect(text).toContain(`[Peer]\nPublicKey = ${PUB_A}\nEndpoint = [2001:db8::1]:51820\nPersistentKeepalive = 25\nAllowedIPs = 10.200.0.0/24\n`);
    expect(text).not.toMatch(/PrivateKey|PresharedKey/);
    const postUp = /^PostUp = (\/etc\/cairn\/scripts\/wg-quick-wg0-post-up-[0-9a-f]+)$/m.exec(text)![1]!;
    const hook = config.environment.etc[postUp.slice('/etc/'.length)];
    expect(hook.mode).toBe('0755');
    const log = runWithStubs(hook.text);
    expect(log).toBe(`wg\n  [set]\n  [wg0]\n  [private-key]\n  [/run/secrets/wg-quick]\nwg\n  [set]\n  [wg0]\n  [peer]\n  [${PUB_A}]\n  [preshared-key]\n  [/run/secrets/psk]\n`);
    expect(hook.text).toContain('logger "tunnel up"');
    const unit = etcText(config, 'systemd/system/wg-quick-wg0.service');
    expect(unit).toContain('Requires=network-online.target');
    expect(unit).toContain('ExecStop=/usr/bin/wg-quick down /etc/wireguard/wg0.conf');
    expect(unitScript(config, 'wg-quick-wg0.service')).toContain("wg-quick up '/etc/wireguard/wg0.conf'");
    expect(config.environment.etc['systemd/system/multi-user.target.wants/wg-quick-wg0.service']).toBeDefined();
  });

  it('autostart = false leaves the unit for systemctl start', async () => {
    const config = await evalConfig(wgQuick({ ...wg0, autostart: false }));
    expect(config.environment.etc['systemd/system/multi-user.target.wants/wg-quick-wg0.service']).toBeUndefined();
  });

  it('configFile is copied to the unit\'s private /tmp and used instead', async () => {
    const config = await evalConfig(wgQuick({ configFile: '/run/secrets/wg0.conf' }));
    expect(config.environment.etc['wireguard/wg0.conf']).toBeUndefined();
    const script = unitScript(config, 'wg-quick-wg0.service');
    expect(script).toContain("cp '/run/secrets/wg0.conf' '/tmp/wg0.conf'\nwg-quick up '/tmp/wg0.conf'");
  });

  it("refuses the inline key, a store path, and a `#` (wg-quick's comment) in a value", async () => {
    const inline = await yamlFailure(`networking:\n  wg-quick:\n    interfaces:\n      wg0:\n        address: [10.0.0.1/24]\n        privateKey: ${PRIVATE}\n`);
    expect(inline.message).toContain('networking.wg-quick.interfaces.wg0.privateKey');
    expect(inline.message).toContain(`${inline.file}:6`);
    expect(inline.message).toContain('privateKeyFile');
    expect(inline.message).not.toContain(PRIVATE);
    const store = await yamlFailure('networking:\n  wg-quick:\n    interfaces:\n      wg0:\n        configFile: /cairn/store/x-wg0.conf\n');
    expect(store.message).toContain('networking.wg-quick.interfaces.wg0.configFile');
    expect(store.message).toContain(`${store.file}:5`);
    const hash = await yamlFailure('networking:\n  wg-quick:\n    interfaces:\n      wg0:\n        privateKeyFile: /run/k\n        extraOptions: { FwMark: "0x1 # x" }\n');
    expect(hash.message).toContain('networking.wg-quick.interfaces.wg0.extraOptions.FwMark');
  });
});

describe('networking.networkmanager', () => {
  const nm = { networking: { networkmanager: { enable: true, unmanaged: ['wg0', 'mac:52:54:00:12:34:56'] }, interfaces: { eth1: { ipv4: { addresses: [{ address: '192.168.1.2', prefixLength: 24 }], routes: [{ address: '10.9.0.0', prefixLength: 16, via: '192.168.1.254', options: { metric: '50' } }] }, mtu: 1400 } }, defaultGateway: '192.168.1.1' } };

  it('turns networkd\'s interface files and DHCP off and makes the interfaces NetworkManager profiles', async () => {
    const config = await evalConfig(nm);
    expect(config.networking.useDHCP).toBe(false);
    expect(config.environment.etc['systemd/network/40-eth1.network']).toBeUndefined();
    expect(config.environment.etc['systemd/network/99-ethernet-default-dhcp.network']).toBeUndefined();
    const profile = config.environment.etc['NetworkManager/cairn-profiles/eth1.nmconnection'];
    expect(profile.mode).toBe('0600');
    expect(profile.text).toBe(
      '[connection]\nid=eth1\ntype=ethernet\ninterface-name=eth1\nautoconnect=true\n\n[ethernet]\nmtu=1400\n\n' +
        '[ipv4]\nmethod=manual\naddress1=192.168.1.2/24\ngateway=192.168.1.1\nroute1=10.9.0.0/16,192.168.1.254,50\n\n[ipv6]\nmethod=link-local\n',
    );
    const script = unitScript(config, 'NetworkManager-ensure-profiles.service');
    expect(script).toContain("envsubst < '/etc/NetworkManager/cairn-profiles/eth1.nmconnection' > '/run/NetworkManager/system-connections/eth1.nmconnection'");
    expect(etcText(config, 'systemd/system/NetworkManager-ensure-profiles.service')).toContain('UMask=0177');
  });

  it('writes NetworkManager.conf, enables its units and the D-Bus system bus, and stops waiting for networkd', async () => {
    const config = await evalConfig(nm, { networking: { networkmanager: { settings: { main: { 'no-auto-default': '*' } } } } });
    const conf = etcText(config, 'NetworkManager/NetworkManager.conf');
    expect(conf).toContain('[main]\nplugins=keyfile\ndhcp=internal\ndns=systemd-resolved\nrc-manager=unmanaged\nauth-polkit=root-only\nno-auto-default=*\n');
    expect(conf).toContain('[keyfile]\nunmanaged-devices=interface-name:wg0;mac:52:54:00:12:34:56\n');
    expect(conf).toContain('[device]\nwifi.scan-rand-mac-address=true\nwifi.backend=wpa_supplicant\n');
    const pkgs = config.environment.systemPackages.map(String);
    expect(pkgs).toEqual(expect.arrayContaining(['network-manager', 'dbus', 'wpasupplicant', 'gettext-base']));
    expect(config.services.dbus.enable).toBe(true);
    expect(config.environment.etc['systemd/system/multi-user.target.wants/NetworkManager.service'].symlink).toBe('/lib/systemd/system/NetworkManager.service');
    expect(config.environment.etc['systemd/system/network-online.target.wants/NetworkManager-wait-online.service']).toBeDefined();
    expect(config.environment.etc['systemd/system/network-online.target.wants/systemd-networkd-wait-online.service']).toBeUndefined();
    expect(config.environment.etc['systemd/system/sockets.target.wants/dbus.socket']).toBeDefined();
    expect(config.environment.etc['systemd/system/dbus-org.freedesktop.nm-dispatcher.service'].symlink).toBe('/lib/systemd/system/NetworkManager-dispatcher.service');
    expect(config.users.groups.networkmanager).toBeDefined();
  });

  it('a user setting overrides a default of the module; the dns default follows services.resolved', async () => {
    const config = await evalConfig(nm, { networking: { networkmanager: { settings: { main: { 'auth-polkit': true } } } }, services: { resolved: { enable: false } } });
    const conf = etcText(config, 'NetworkManager/NetworkManager.conf');
    expect(conf).toContain('auth-polkit=true');
    expect(conf).toContain('dns=default');
  });

  it('ensureProfiles takes secrets from environment files outside the store', async () => {
    const config = await evalConfig({
      networking: {
        networkmanager: {
          enable: true,
          ensureProfiles: { environmentFiles: ['/run/secrets/wifi.env'], profiles: { home: { connection: { id: 'home', type: 'wifi' }, wifi: { ssid: 'home' }, 'wifi-security': { 'key-mgmt': 'wpa-psk', psk: '$HOME_PSK' } } } },
        },
      },
    });
    expect(etcText(config, 'NetworkManager/cairn-profiles/home.nmconnection')).toContain('[wifi-security]\nkey-mgmt=wpa-psk\npsk=$HOME_PSK\n');
    expect(etcText(config, 'systemd/system/NetworkManager-ensure-profiles.service')).toContain('EnvironmentFile=/run/secrets/wifi.env');
    const store = await yamlFailure('networking:\n  networkmanager:\n    enable: true\n    ensureProfiles:\n      environmentFiles: [/cairn/store/abc-wifi.env]\n');
    expect(store.message).toContain('networking.networkmanager.ensureProfiles.environmentFiles');
    expect(store.message).toContain(`${store.file}:5`);
  });

  it('leaves the links systemd.network still declares to networkd', async () => {
    const config = await evalConfig(nm, { systemd: { network: { networks: { '30-lan': { matchConfig: { Name: 'lan0 br*' }, address: ['10.0.0.1/24'] } } } } });
    expect(etcText(config, 'systemd/network/30-lan.network')).toContain('Address=10.0.0.1/24');
    expect(etcText(config, 'NetworkManager/NetworkManager.conf')).toContain('[keyfile]\nunmanaged-devices=interface-name:lan0;interface-name:br*;interface-name:wg0;mac:52:54:00:12:34:56\n');
  });

  it('is off by default: networkd keeps the interfaces', async () => {
    const config = await evalConfig({ networking: { interfaces: { eth1: { ipv4: { addresses: [{ address: '192.168.1.2', prefixLength: 24 }] } } } } });
    expect(etcText(config, 'systemd/network/40-eth1.network')).toContain('Address=192.168.1.2/24');
    expect(config.environment.systemPackages.map(String)).not.toContain('network-manager');
    expect(config.environment.etc['NetworkManager/NetworkManager.conf']).toBeUndefined();
  });
});
