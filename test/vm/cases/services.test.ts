/**
 * Several services on one machine, one subtest each: the pattern for a new service's VM test.
 * The machine boots once; a subtest costs seconds. Subtests marked `fresh` start from the
 * machine's 'booted' snapshot (taken by the first of them), so they see nothing another wrote:
 * the second subtest proves it. The driver logs each subtest's time and a summary at the end.
 */
import { join } from 'node:path';
import { freePort, run, sshKeyPair } from './host.js';
import type { DriverContext, Machine } from '../../../src/testing/index.js';

const { dir: keys, publicKey } = await sshKeyPair('driver@host');

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

export default {
  name: 'services sharing one machine',
  nodes: {
    machine: {
      networking: { hostName: 'services' },
      system: { stateVersion: '0.1' },
      services: {
        journald: { storage: 'volatile' },
        timesyncd: { servers: ['ntp1.cairn.test', 'ntp2.cairn.test'] },
        fstrim: { interval: 'Mon *-*-* 03:00:00' },
        qemuGuest: { enable: true },
        openssh: { enable: true },
      },
      security: { sudo: { extraRules: [{ users: ['alice'], runAs: 'root', commands: [{ command: '/usr/bin/id', options: ['NOPASSWD'] }] }] } },
      users: { users: { alice: { isNormalUser: true, openssh: { authorizedKeys: { keys: [publicKey] } } } } },
    },
  },
  async testScript({ machine }: Record<string, Machine>, { subtest }: DriverContext) {
    await machine.start();
    // Added before the snapshot: forwards live in QEMU and outlast restores.
    const ssh = await freePort();
    await machine.forwardPort(ssh, 22);

    await subtest(
      'journald: storage = volatile keeps the journal in /run',
      async () => {
        await machine.succeed('echo "written by the journald subtest" | systemd-cat -t cairn-subtest');
        await machine.waitUntilSucceeds('journalctl -t cairn-subtest -o cat | grep -qx "written by the journald subtest"', { timeout: 60 });
        const files = await machine.succeed('journalctl --header | sed -n "s/^File path: //p"');
        check(/^\/run\/log\/journal\//m.test(files) && !files.includes('/var/log/journal'), `journal files: ${files}`);
        // Left behind for the next subtest not to see: a file, a running unit.
        await machine.succeed('echo left > /var/lib/left-behind && sync && systemd-run --unit=left-behind sleep 10000');
      },
      { fresh: true },
    );

    await subtest(
      'a fresh subtest does not see what another wrote',
      async () => {
        await machine.fail('test -e /var/lib/left-behind');
        await machine.fail('systemctl is-active --quiet left-behind.service');
        const seen = await machine.succeed('journalctl -t cairn-subtest -o cat');
        check(seen.trim() === '', `the journal still holds: ${seen}`);
      },
      { fresh: true },
    );

    await subtest('qemuGuest: the host reaches the guest agent', async () => {
      await machine.waitForUnit('qemu-guest-agent.service');
      const name = await machine.guestAgent<{ 'host-name': string }>('guest-get-host-name');
      check(name['host-name'] === 'services', `guest-get-host-name: ${JSON.stringify(name)}`);
    });

    await subtest('timesyncd: asks the configured NTP servers', async () => {
      await machine.waitForUnit('systemd-timesyncd.service');
      const servers = await machine.succeed('timedatectl show-timesync --property=SystemNTPServers --value');
      check(servers.trim() === 'ntp1.cairn.test ntp2.cairn.test', `SystemNTPServers: ${servers}`);
    });

    await subtest('fstrim: the timer is armed for Mondays at 03:00', async () => {
      await machine.waitForUnit('fstrim.timer');
      const calendar = await machine.succeed('systemctl show fstrim.timer --property=TimersCalendar --value');
      check(calendar.includes('OnCalendar=Mon *-*-* 03:00:00') && !calendar.includes('weekly'), `TimersCalendar: ${calendar}`);
      const next = await machine.succeed('systemctl show fstrim.timer --property=NextElapseUSecRealtime --value');
      check(next.startsWith('Mon '), `next run: ${next}`);
    });

    await subtest('sudo: extraRules give alice exactly one command as root', async () => {
      // Asked as root: sudo's own view of alice's rules (sudo -l reads /etc/sudoers as a login would).
      const rules = await machine.succeed('sudo -n -l -U alice 2>&1');
      check(/\(root\) NOPASSWD: \/usr\/bin\/id$/m.test(rules), `sudo -l -U alice: ${rules}`);
      check((await machine.succeed('sudo -n -l -U alice /usr/bin/id')).trim() === '/usr/bin/id', 'alice may not run id');
      await machine.fail('sudo -n -l -U alice /usr/bin/true');
      // And as alice herself: sudo must be setuid root on the machine (the store cannot carry the bit).
      check((await machine.succeed('runuser -u alice -- sudo -n /usr/bin/id -u')).trim() === '0', 'alice could not run id as root');
      await machine.fail('runuser -u alice -- sudo -n /usr/bin/true');
    });

    await subtest(
      'openssh: alice logs in with her authorized key, through a forward added before the restore',
      async () => {
        await machine.waitForUnit('sshd.service');
        const login = await run('ssh', [
          '-i', join(keys, 'id'), '-p', String(ssh),
          '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=60',
          'alice@127.0.0.1', 'echo "$(id -un) on $(hostname)"',
        ]);
        check(login.stdout.trim() === 'alice on services', `ssh printed ${JSON.stringify(login.stdout)}`);
      },
      { fresh: true },
    );
  },
};
