/**
 * The server example boots: sshd and nginx run, OpenSSH's client on the host logs in with a key
 * through a forwarded port and runs a command, and curl on the host gets the page nginx serves.
 * The host keys are made by sshd-keygen.service, after systemd started.
 */
import { join } from 'node:path';
import { freePort, run, sshKeyPair } from './host.js';
import type { Machine } from '../../../src/testing/index.js';

const { dir: keys, publicKey } = await sshKeyPair('driver@host');

export default {
  name: 'the server example',
  nodes: {
    web1: {
      imports: ['../../../examples/server.yaml'],
      users: { users: { alice: { openssh: { authorizedKeys: { keys: [publicKey] } } } } },
    },
  },
  async testScript({ web1 }: Record<string, Machine>) {
    await web1.start();
    await web1.waitForUnit('multi-user.target');
    await web1.waitForUnit('sshd.service');
    await web1.waitForUnit('nginx.service');
    await web1.waitForOpenPort(80);

    const ssh = await freePort();
    const http = await freePort();
    await web1.forwardPort(ssh, 22);
    await web1.forwardPort(http, 80);
    const login = await run('ssh', [
      '-i', join(keys, 'id'), '-p', String(ssh),
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=60',
      'alice@127.0.0.1', 'echo "$(id -un) on $(hostname)"',
    ]);
    if (login.stdout.trim() !== 'alice on web1') throw new Error(`ssh printed ${JSON.stringify(login.stdout)}`);
    const page = await run('curl', ['-fsS', '--max-time', '60', `http://127.0.0.1:${http}/`]);
    if (!page.stdout.includes('Served by nginx on a system built by cairn.')) throw new Error(`curl got ${JSON.stringify(page.stdout)}`);
    // Password logins are off: the server offers public keys only.
    const pw = await run('ssh', ['-p', String(ssh), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'PreferredAuthentications=password', 'alice@127.0.0.1', 'true']).then(
      () => 'logged in',
      (e: { stderr: string }) => e.stderr,
    );
    if (!/Permission denied \(publickey\)/.test(pw)) throw new Error(`password login: ${pw}`);

    // The host keys came from sshd-keygen.service, once systemd ran (the hostname is in their
    // comment; activation, before systemd, saw none), and the client was shown the ed25519 one.
    const pub = (await web1.succeed('cat /etc/ssh/ssh_host_ed25519_key.pub')).trim().split(' ');
    if (pub[2] !== 'root@web1' || !(await web1.succeed('cat /etc/ssh/ssh_host_rsa_key.pub')).trim().endsWith(' root@web1')) throw new Error(`host keys: ${pub.join(' ')}`);
    const scanned = await run('ssh-keyscan', ['-t', 'ed25519', '-p', String(ssh), '127.0.0.1']);
    if (!scanned.stdout.includes(`${pub[0]} ${pub[1]}`)) throw new Error(`sshd offers ${scanned.stdout}, not /etc/ssh's ed25519 key`);
    // Started again, the unit keeps the keys (its condition: a key missing or empty).
    await web1.succeed('systemctl restart sshd-keygen.service');
    if ((await web1.succeed('cat /etc/ssh/ssh_host_ed25519_key.pub')).trim() !== pub.join(' ')) throw new Error('sshd-keygen made a new key');
  },
};
