/**
 * WireGuard between two machines on a vlan, both directions: `a` sets its tunnel up with
 * networking.wireguard (and systemd-networkd for its vlan card), `b` with networking.wg-quick, its
 * vlan card managed by NetworkManager (nmcli shows it connected with the test's address). The keys
 * are made here at load time; the public keys are in the configurations, the private ones are
 * age.secrets: encrypted here to each machine's age identity (an ssh key), decrypted on the machine
 * once the test has put the identity there (as a real machine's key is provisioned before the
 * secrets encrypted to it are deployed) and activation has run again.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keptFixture, run, sshKeyPair } from './host.js';
import type { DriverContext, Machine } from '../../../src/testing/index.js';

/** A WireGuard key pair from node's X25519: the raw 32-byte keys in base64, as `wg genkey`/`wg pubkey` print them. */
function keyPair(): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const b64 = (s: string | undefined) => Buffer.from(s!, 'base64url').toString('base64');
  return { privateKey: b64(jwk.d), publicKey: b64(jwk.x) };
}

/** Each machine's age identity. */
const identities = { a: await sshKeyPair('root@a', 'cairn-test-wireguard-'), b: await sshKeyPair('root@b', 'cairn-test-wireguard-') };
/**
 * Each machine's WireGuard key pair and its private key encrypted to its identity, kept from run to
 * run (age encrypts differently each time: new files would make other systems, booted every run).
 */
const wgDir = await keptFixture(
  'wireguard-keys',
  async (d) => {
    const made = { a: keyPair(), b: keyPair() };
    for (const n of ['a', 'b'] as const) {
      await run('sh', ['-c', 'printf "%s\\n" "$1" | age -e -r "$2" -o "$3"', 'sh', made[n].privateKey, identities[n].publicKey, join(d, `${n}.age`)]);
    }
    writeFileSync(join(d, 'keys.json'), JSON.stringify(made));
  },
  { inputs: `${identities.a.publicKey}\n${identities.b.publicKey}\n` },
);
const keys = JSON.parse(readFileSync(join(wgDir, 'keys.json'), 'utf8')) as Record<'a' | 'b', { privateKey: string; publicKey: string }>;
const IDENTITY = '/root/age/identity';
/** The machine's WireGuard key as a secret, decrypted with the identity the test puts in place. */
const wgSecret = (n: 'a' | 'b', unit: string) => ({
  identityPaths: [IDENTITY],
  secrets: { [`wg-${n}`]: { file: join(wgDir, `${n}.age`), restartUnits: [unit] } },
});

/** Machines are numbered by name on the vlan: a is 192.168.1.1, b 192.168.1.2. */
const PORT = 51820;

/** Two TCG guests on a busy 2-core machine: systemd's 90 s default wait for a device can be too short. */
const patient = { 'systemd/system.conf.d/cairn-test-timeouts.conf': { text: '[Manager]\nDefaultTimeoutStartSec=15min\n' } };

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

export default {
  name: 'WireGuard both ways: networking.wireguard and wg-quick; NetworkManager on the vlan',
  timeout: 1800,
  nodes: {
    a: {
      virtualisation: { cores: 1 },
      networking: {
        hostName: 'a',
        firewall: { allowedUDPPorts: [PORT] },
        wireguard: {
          interfaces: {
            wg0: {
              ips: ['10.23.0.1/24'],
              listenPort: PORT,
              privateKeyFile: '/run/secrets/wg-a',
              peers: [{ name: 'b', publicKey: keys.b.publicKey, allowedIPs: ['10.23.0.2/32'], endpoint: `192.168.1.2:${PORT}` }],
            },
          },
        },
      },
      age: wgSecret('a', 'wireguard-wg0.service'),
      environment: { systemPackages: ['iputils-ping'], etc: patient },
      system: { stateVersion: '0.1' },
    },
    b: {
      virtualisation: { cores: 1 },
      networking: {
        hostName: 'b',
        firewall: { allowedUDPPorts: [PORT] },
        networkmanager: { enable: true },
        'wg-quick': {
          interfaces: {
            wg0: {
              address: ['10.23.0.2/24'],
              listenPort: PORT,
              privateKeyFile: '/run/secrets/wg-b',
              peers: [{ publicKey: keys.a.publicKey, allowedIPs: ['10.23.0.1/32'], endpoint: `192.168.1.1:${PORT}` }],
            },
          },
        },
      },
      age: wgSecret('b', 'wg-quick-wg0.service'),
      environment: { systemPackages: ['iputils-ping'], etc: patient },
      system: { stateVersion: '0.1' },
    },
  },
  async testScript({ a, b }: Record<string, Machine>, { subtest }: DriverContext) {
    // Two TCG guests on a shared 2-core machine: the test shell can take minutes to appear.
    await Promise.all([a.start(), b.start()]);

    await subtest('NetworkManager: b\'s vlan card is connected, with its address from networking.interfaces', async () => {
      await b.waitForUnit('NetworkManager.service');
      await b.waitUntilSucceeds('nmcli -t -f DEVICE,STATE device | grep -qx eth1:connected');
      const addr = (await b.succeed('nmcli -g IP4.ADDRESS device show eth1')).trim();
      check(addr === '192.168.1.2/24', `eth1's address as nmcli shows it: ${addr}`);
      const profile = (await b.succeed('nmcli -g GENERAL.CONNECTION device show eth1')).trim();
      check(profile === 'eth1', `eth1's profile: ${profile}`);
      // networkd no longer configures it.
      await b.fail('test -e /etc/systemd/network/40-eth1.network');
      await b.waitForUnit('network-online.target');
      await b.waitUntilSucceeds('ping -c 1 -W 2 a');
    });

    await subtest('the private keys come from age.secrets once the identities are there, and the tunnels come up', async () => {
      for (const [m, n] of [[a, 'a'], [b, 'b']] as const) {
        // The boot's activation could not decrypt (no identity yet): no key file.
        await m.fail(`test -e /run/secrets/wg-${n}`);
        // Through a folder only root can enter, so the identity is never readable by others.
        await m.succeed(`install -d -m 0700 ${join(IDENTITY, '..')}`);
        await m.copyToMachine(identities[n].key, IDENTITY);
        await m.succeed('/run/current-system/bin/switch-to-configuration test 2>&1');
        check((await m.succeed(`stat -L -c '%U %a' /run/secrets/wg-${n}`)).trim() === 'root 400', `the key file of ${n} is not root's alone`);
      }
      await a.succeed('systemctl restart wireguard-wg0.service');
      await b.succeed('systemctl restart wg-quick-wg0.service');
      await a.waitForUnit('wireguard-wg0.service');
      await b.waitForUnit('wg-quick-wg0.service');
      const pub = (await a.succeed('wg show wg0 public-key')).trim();
      check(pub === keys.a.publicKey, `a's wg0 has the public key ${pub}`);
      check((await b.succeed('wg show wg0 public-key')).trim() === keys.b.publicKey, "b's wg0 has another public key");
    });

    await subtest('the generated files name the key files; the keys are nowhere in /etc', async () => {
      await b.succeed(`grep -qx 'PostUp = /etc/cairn/scripts/wg-quick-wg0-post-up-.*' /etc/wireguard/wg0.conf`);
      await b.fail(`grep -rqF ${JSON.stringify(keys.b.privateKey)} /etc/`);
      await a.fail(`grep -rqF ${JSON.stringify(keys.a.privateKey)} /etc/`);
    });

    await subtest('wireguard: a pings b through the tunnel', async () => {
      await a.waitUntilSucceeds('ping -c 1 -W 2 10.23.0.2');
      const route = await a.succeed('ip route get 10.23.0.2');
      check(/ dev wg0 /.test(route), `a's route to 10.23.0.2: ${route}`);
    });

    await subtest('wg-quick: b pings a through the tunnel', async () => {
      await b.waitUntilSucceeds('ping -c 1 -W 2 10.23.0.1');
      const hs = (await b.succeed('wg show wg0 latest-handshakes')).trim();
      check(hs.startsWith(keys.a.publicKey) && !/\t0$/.test(hs), `b's handshake with a: ${hs}`);
    });

    await subtest('stopping the units takes the tunnels down', async () => {
      await a.succeed('systemctl stop wireguard-wg0.service');
      await b.succeed('systemctl stop wg-quick-wg0.service');
      await a.fail('ip link show wg0');
      await b.fail('ip link show wg0');
      await b.fail('ping -c 1 -W 2 10.23.0.1');
    });
  },
};
