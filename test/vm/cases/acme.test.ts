/**
 * Certificates from an ACME CA, without the Internet: Debian's pebble (a test CA) on `acme`, nginx
 * on `server` with enableACME + forceSSL for server.test and useACMEHost for www.server.test (one
 * certificate, both names), lego validating by HTTP-01 through nginx's webroot (pebble connects to
 * port 80 of the names: no "always valid" shortcut), and `client`, which trusts pebble's root alone:
 * - HTTPS works for both names; plain HTTP answers 301 to https://;
 * - a proxyWebsockets location passes a WebSocket handshake on to a backend on the server;
 * - a basicAuthFile location refuses without credentials and serves with them;
 * - pebble's certificates last an hour, far below `validMinDays` (30 days), so each firing of the
 *   renewal timer (every minute here) renews: a new certificate is served while nginx's main process
 *   stays the same (reloaded, not restarted).
 * The machines boot once.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriverContext, Machine } from '../../../src/testing/index.js';
import { keptFixture } from './host.js';

// pebble's own HTTPS (its ACME directory and management API) needs a certificate: a throwaway CA,
// trusted by lego (LEGO_CA_CERTIFICATES) and by the client's fetch of pebble's root. Kept from run
// to run (it is in the machines' configurations: a new one would make other systems, booted every
// run); made again a day before it ends.
const stillValid = (d: string) => ['ca.pem', 'cert.pem'].every((f) => spawnSync('openssl', ['x509', '-checkend', '86400', '-noout', '-in', join(d, f)]).status === 0);
const dir = await keptFixture(
  'pebble-listener',
  (d) => {
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
    openssl('req', '-x509', '-config', '/dev/null', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '365', '-subj', '/CN=pebble test listener CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-keyout', 'ca.key', '-out', 'ca.pem');
    openssl('req', '-new', '-config', '/dev/null', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=acme', '-keyout', 'key.pem', '-out', 'req.csr');
    writeFileSync(join(d, 'ext.cnf'), 'subjectAltName = DNS:acme\n');
    openssl('x509', '-req', '-in', 'req.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '365', '-extfile', 'ext.cnf', '-out', 'cert.pem');
  },
  { valid: stillValid },
);
const listenerCa = readFileSync(join(dir, 'ca.pem'), 'utf8');
const pebbleConfig = {
  pebble: {
    listenAddress: '0.0.0.0:14000',
    managementListenAddress: '0.0.0.0:15000',
    certificate: '/etc/pebble/cert.pem',
    privateKey: '/etc/pebble/key.pem',
    httpPort: 80,
    tlsPort: 443,
    ocspResponderURL: '',
    externalAccountBindingRequired: false,
    // An hour: well below lego's renewal threshold, so the timer renews at each run.
    certificateValidityPeriod: 3600,
  },
};

/** Machines are numbered by name on the vlan: acme 1, client 2, server 3. */
const SERVER_IP = '192.168.1.3';
const names = { [SERVER_IP]: ['server.test', 'www.server.test'] };

/** A backend that answers a WebSocket handshake (101) only when nginx passed the upgrade headers on. */
const wsBackend = `#!/bin/bash
upgrade= connection=
while IFS= read -r line; do
  line=\${line%$'\\r'}
  [ -z "$line" ] && break
  case "\${line,,}" in
    upgrade:*) upgrade=\${line#*: } ;;
    connection:*) connection=\${line#*: } ;;
  esac
done
if [ "\${upgrade,,}" = websocket ] && [ "\${connection,,}" = upgrade ]; then
  printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nX-Backend: handshake\\r\\n\\r\\n'
  sleep 2
else
  printf 'HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n'
fi
`;

/**
 * Three TCG guests on a busy 2-core machine: udev can take minutes to announce /dev/hvc0, the test
 * shell's console, past systemd's 90 s default wait for a device.
 */
const patient = { 'systemd/system.conf.d/cairn-test-timeouts.conf': { text: '[Manager]\nDefaultTimeoutStartSec=15min\n' } };

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

export default {
  name: 'ACME certificates for nginx from pebble, renewed by the timer',
  timeout: 1800,
  nodes: {
    acme: {
      virtualisation: { cores: 1 },
      networking: { hostName: 'acme', hosts: names, firewall: { allowedTCPPorts: [14000, 15000] } },
      system: { stateVersion: '0.1' },
      environment: {
        systemPackages: ['pebble'],
        etc: {
          ...patient,
          'pebble/config.json': { text: JSON.stringify(pebbleConfig, null, 2) },
          'pebble/cert.pem': { text: readFileSync(join(dir, 'cert.pem'), 'utf8') },
          'pebble/key.pem': { text: readFileSync(join(dir, 'key.pem'), 'utf8'), mode: '0400' },
        },
      },
      systemd: {
        services: {
          pebble: {
            description: 'pebble, a test ACME CA',
            wantedBy: ['multi-user.target'],
            after: ['network.target'],
            // No random waits before validating, no refused nonces: the test's time is the renewals'.
            environment: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
            serviceConfig: { ExecStart: '/usr/bin/pebble -config /etc/pebble/config.json' },
          },
        },
      },
    },
    server: {
      virtualisation: { cores: 1 },
      networking: { hostName: 'server', firewall: { allowedTCPPorts: [80, 443] } },
      system: { stateVersion: '0.1' },
      environment: {
        systemPackages: ['socat'],
        etc: {
          ...patient,
          'www/index.html': { text: 'hello over https\n' },
          'www-private/index.html': { text: 'for alice only\n' },
          'pebble-listener-ca.pem': { text: listenerCa },
          'acme-test.env': { text: 'LEGO_CA_CERTIFICATES=/etc/pebble-listener-ca.pem\n' },
          'ws-backend': { text: wsBackend, mode: '0755' },
        },
      },
      security: {
        acme: {
          acceptTerms: true,
          defaults: { email: 'admin@server.test', server: 'https://acme:14000/dir', environmentFile: '/etc/acme-test.env', renewInterval: 'minutely' },
          certs: { 'server.test': { extraDomainNames: ['www.server.test'] } },
        },
      },
      services: {
        nginx: {
          enable: true,
          recommendedTlsSettings: true,
          recommendedProxySettings: true,
          virtualHosts: {
            'server.test': {
              enableACME: true,
              forceSSL: true,
              root: '/etc/www',
              locations: {
                '/ws/': { proxyPass: 'http://127.0.0.1:9000', proxyWebsockets: true },
                '/private/': { alias: '/etc/www-private/', basicAuthFile: '/var/lib/htpasswd' },
              },
            },
            'www.server.test': { useACMEHost: 'server.test', forceSSL: true, root: '/etc/www' },
          },
        },
      },
      systemd: {
        // Every minute, on the minute: the renewal is seen within the test's time.
        timers: { 'acme-server.test': { timerConfig: { RandomizedDelaySec: 0, FixedRandomDelay: false, AccuracySec: '1s' } } },
        services: {
          'ws-backend': {
            description: 'a WebSocket handshake backend',
            wantedBy: ['multi-user.target'],
            serviceConfig: { ExecStart: '/usr/bin/socat TCP-LISTEN:9000,bind=127.0.0.1,reuseaddr,fork EXEC:/etc/ws-backend' },
          },
        },
      },
    },
    client: {
      virtualisation: { cores: 1 },
      networking: { hostName: 'client', hosts: names },
      system: { stateVersion: '0.1' },
      environment: { systemPackages: ['curl', 'openssl'], etc: { ...patient, 'pebble-listener-ca.pem': { text: listenerCa } } },
    },
  },
  async testScript({ acme, server, client }: Record<string, Machine>, { subtest }: DriverContext) {
    // One after another: three TCG guests booting at once on a small shared machine starve each other.
    for (const m of [acme, server, client]) await m.start();
    const curl = 'curl -sS --max-time 20 --cacert /root/pebble-root.pem';

    await subtest('the first certificate comes from pebble by HTTP-01, after nginx started with the placeholder', async () => {
      await acme.waitForUnit('pebble.service');
      await acme.waitForOpenPort(14000);
      await server.waitForUnit('nginx.service');
      await server.waitUntilSucceeds('openssl x509 -in /var/lib/acme/server.test/cert.pem -noout -issuer | grep -qi pebble');
      const key = await server.succeed('stat -c "%U:%G %a" /var/lib/acme/server.test/key.pem');
      check(key.trim() === 'acme:www-data 640', `key.pem: ${key}`);
    });

    await subtest('the client trusts pebble\'s root alone and gets both names over HTTPS', async () => {
      // pebble makes a new root at each start: the client takes it from pebble's management API.
      // The client may still be bringing its network up (once seen on Debian 13: refused at once).
      const fetchRoot = 'curl -sS --max-time 20 --cacert /etc/pebble-listener-ca.pem https://acme:15000/roots/0 -o /root/pebble-root.pem';
      await client.waitUntilSucceeds(fetchRoot).catch(async (err: Error) => {
        const why = (await acme.execute('ss -ltnp 2>&1; nft list ruleset 2>&1 | head -60')).stdout + (await client.execute('getent ahosts acme 2>&1; ip -br addr; ip route')).stdout;
        throw new Error(`${err.message}\n${why}`);
      });
      await client.waitUntilSucceeds(`${curl} https://server.test/ | grep -qx 'hello over https'`);
      check((await client.succeed(`${curl} https://www.server.test/`)) === 'hello over https\n', 'www.server.test');
      // Only pebble's root: the system's CAs do not know it.
      await client.fail('curl -sS --max-time 20 https://server.test/');
      const validity = await client.succeed('echo | openssl s_client -connect server.test:443 -servername server.test 2>/dev/null | openssl x509 -noout -startdate -enddate');
      const [start, end] = [...validity.matchAll(/=(.*)/g)].map((m) => Date.parse(m[1]!));
      check(end! - start! <= 3600_000 + 60_000, `pebble's short validity: ${validity}`);
    });

    await subtest('plain HTTP is redirected to HTTPS with 301', async () => {
      const r = await client.succeed("curl -sS --max-time 20 -o /dev/null -w '%{http_code} %{redirect_url}' http://server.test/some/page");
      check(r === '301 https://server.test/some/page', `http://server.test/: ${r}`);
    });

    await subtest('a proxyWebsockets location passes the WebSocket handshake on', async () => {
      await server.waitForOpenPort(9000);
      const r = await client.execute(
        `${curl} -i --http1.1 --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' https://server.test/ws/`,
      );
      check(/^HTTP\/1\.1 101 /m.test(r.stdout) && /^X-Backend: handshake/im.test(r.stdout), `handshake: ${r.stdout}`);
    });

    await subtest('a basicAuthFile location refuses without credentials and serves with them', async () => {
      await server.succeed("printf 'alice:%s\\n' \"$(openssl passwd -apr1 s3cret)\" > /var/lib/htpasswd && chgrp www-data /var/lib/htpasswd && chmod 0640 /var/lib/htpasswd");
      const without = await client.succeed(`${curl} -o /dev/null -w '%{http_code}' https://server.test/private/`);
      check(without === '401', `without credentials: ${without}`);
      const wrong = await client.succeed(`${curl} -o /dev/null -w '%{http_code}' -u alice:wrong https://server.test/private/`);
      check(wrong === '401', `with a wrong password: ${wrong}`);
      check((await client.succeed(`${curl} -u alice:s3cret https://server.test/private/`)) === 'for alice only\n', 'with credentials');
    });

    await subtest('the timer renews the short-lived certificate and nginx serves it without restarting', async () => {
      const serial = () => client.succeed('echo | openssl s_client -connect server.test:443 -servername server.test 2>/dev/null | openssl x509 -noout -serial');
      const pid = (await server.succeed('systemctl show -P MainPID nginx.service')).trim();
      const before = await serial();
      await client.waitUntilSucceeds(`test "$(echo | openssl s_client -connect server.test:443 -servername server.test 2>/dev/null | openssl x509 -noout -serial)" != '${before.trim()}'`);
      const after = await serial();
      check(after !== before, 'the served certificate did not change');
      check((await server.succeed('systemctl show -P MainPID nginx.service')).trim() === pid, 'nginx was restarted');
      check((await server.succeed('systemctl show -P NRestarts nginx.service')).trim() === '0', 'nginx restarted');
      // The renewed one is trusted as the first was.
      await client.succeed(`${curl} https://server.test/ | grep -qx 'hello over https'`);
      await server.succeed("journalctl -u acme-server.test.service -o cat | grep -q 'renew'");
    });
  },
};
