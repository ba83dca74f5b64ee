/**
 * The server example boots: sshd and nginx run, OpenSSH's client on the host logs in with a key
 * through a forwarded port and runs a command, and curl on the host gets the page nginx serves.
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
  },
};
