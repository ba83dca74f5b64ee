/**
 * Debian 12 → 13 and back, live: a Debian 12 (bookworm) server switches to a Debian 13 (trixie)
 * generation of itself and rolls back. A 13 generation's programs need 13's C library, which the
 * running 12 /usr does not have: switch-to-configuration starts under the running bash, moves /usr
 * first and goes on under the new one; systemd is re-executed into 13's. After the switch the 13
 * system serves (nginx, curl on the host) and lets alice in (OpenSSH's client on the host); after
 * the rollback 12's systemd runs again and serves the first page. `boot` of the other release is
 * refused without a change (its boot entries cannot be written before /usr moves).
 */
import { join } from 'node:path';
import { freePort, run, setProfile, sshKeyPair } from './host.js';
import type { Machine } from '../../../src/testing/index.js';

const { dir: keys, publicKey } = await sshKeyPair('driver@host');

const generation = (release: 'bookworm' | 'trixie', page: string) => ({
  networking: { hostName: 'upgrade', firewall: { allowedTCPPorts: [22, 80] } },
  system: { stateVersion: '0.1', debian: { release } },
  environment: { systemPackages: ['curl'], etc: { 'www/index.html': { text: `${page}\n` } } },
  services: {
    openssh: { enable: true },
    nginx: { enable: true, virtualHosts: { upgrade: { default: true, root: '/etc/www' } } },
  },
  users: { users: { alice: { isNormalUser: true, openssh: { authorizedKeys: { keys: [publicKey] } } } } },
});


export default {
  name: 'Debian 12 to 13 and back by switches',
  timeout: 1800,
  nodes: {
    upgrade: { configuration: generation('bookworm', 'served by Debian 12'), alsoInStore: [generation('trixie', 'served by Debian 13')] },
  },
  async testScript({ upgrade: m }: Record<string, Machine>) {
    const [gen13] = m.otherSystems as [string];
    const systemd = async () => (await m.succeed('systemctl --version | head -n 1')).trim();
    const release = async () => (await m.succeed('. /usr/lib/os-release && echo "$VERSION_ID"')).trim();
    const page = async () => (await m.succeed('curl -fsS http://127.0.0.1/')).trim();
    const expect = (got: string, want: RegExp | string, what: string) => {
      if (typeof want === 'string' ? got !== want : !want.test(got)) throw new Error(`${what}: ${JSON.stringify(got)}`);
    };

    await m.start();
    await m.waitForUnit('multi-user.target');
    await m.waitForUnit('nginx.service');
    const gen12 = (await m.succeed('readlink -f /run/current-system')).trim();
    expect(await release(), '12', 'the first generation is Debian 12');
    expect(await systemd(), /^systemd 252 /, "Debian 12's systemd runs");
    expect(await page(), 'served by Debian 12', 'Debian 12 serves');

    // `boot` would need the new generation's programs before /usr moves: refused, nothing changed.
    const boot = await m.execute(`${gen13}/bin/switch-to-configuration boot 2>&1`);
    if (boot.status !== 3 || !boot.stdout.includes('another Debian release')) throw new Error(`boot of a 13 generation on 12: exit ${boot.status}\n${boot.stdout}`);
    expect((await m.succeed('readlink -f /usr')).trim(), `${(await m.succeed('readlink -f /run/current-system/sw')).trim()}/usr`, '/usr after the refusal');

    await m.succeed(setProfile(2, gen13));
    const sw = await m.execute(`${gen13}/bin/switch-to-configuration switch 2>&1`);
    if (sw.status !== 0) throw new Error(`the switch to Debian 13 exited ${sw.status}:\n${sw.stdout}`);
    for (const line of ['/usr moved to', 'reexec systemd']) if (!sw.stdout.includes(line)) throw new Error(`the switch did not say "${line}":\n${sw.stdout}`);
    expect((await m.succeed('readlink -f /run/current-system')).trim(), gen13, 'the current system after the switch');
    expect(await release(), '13', 'after the switch, /usr');
    expect(await systemd(), /^systemd 257 /, "after the switch, the running manager (re-executed)");
    await m.waitForUnit('nginx.service');
    expect(await page(), 'served by Debian 13', 'Debian 13 serves');

    // The host's clients against the switched system.
    const ssh = await freePort();
    const http = await freePort();
    await m.forwardPort(ssh, 22);
    await m.forwardPort(http, 80);
    await m.waitForUnit('sshd.service');
    const login = await run('ssh', [
      '-i', join(keys, 'id'), '-p', String(ssh),
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=60',
      'alice@127.0.0.1', '. /usr/lib/os-release; echo "$(id -un) on $VERSION_ID"',
    ]).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${(await m.execute('systemctl status sshd.service 2>&1; journalctl -b -u sshd.service -n 30 --no-pager 2>&1')).stdout}`);
    });
    expect(login.stdout.trim(), 'alice on 13', 'ssh as alice');
    expect((await run('curl', ['-fsS', '--max-time', '60', `http://127.0.0.1:${http}/`])).stdout.trim(), 'served by Debian 13', 'curl from the host');

    // Rollback: the running 13 /usr runs 12's programs, so this is an ordinary switch.
    await m.succeed(setProfile(3, gen12));
    const back = await m.execute(`${gen12}/bin/switch-to-configuration switch 2>&1`);
    if (back.status !== 0) throw new Error(`the rollback to Debian 12 exited ${back.status}:\n${back.stdout}`);
    expect(await release(), '12', 'after the rollback, /usr');
    expect(await systemd(), /^systemd 252 /, 'after the rollback, the running manager');
    await m.waitForUnit('nginx.service');
    expect(await page(), 'served by Debian 12', 'Debian 12 serves again');
  },
};
