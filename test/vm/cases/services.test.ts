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
const { key: strangerKey } = await sshKeyPair('stranger@host');

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
        // fail2ban and Prometheus: their subtests are the block at the end of the script.
        fail2ban: { enable: true, maxretry: 3 },
        prometheus: {
          enable: true,
          // A scrape of the node exporter takes seconds under emulation: a timeout as long as the interval.
          globalConfig: { scrape_interval: '15s', scrape_timeout: '15s', evaluation_interval: '2s' },
          retentionTime: '2d',
          scrapeConfigs: [{ job_name: 'node', static_configs: [{ targets: ['127.0.0.1:9100'] }] }],
          rules: ['groups:\n  - name: node\n    rules:\n      - record: cairn:up:sum\n        expr: sum(up)\n'],
          exporters: { node: { enable: true, openFirewall: true, enabledCollectors: ['processes'], disabledCollectors: ['timex'] } },
        },
      },
      environment: { systemPackages: ['curl'] },
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

    // fail2ban and Prometheus.
    await subtest('prometheus: scrapes the node exporter (up == 1), whose port the firewall opens', async () => {
      await machine.waitForUnit('prometheus-node-exporter.service');
      await machine.waitForUnit('prometheus.service');
      await machine.waitForOpenPort(9090);
      // The first scrape (every 15 s) and the recording rule's first evaluation.
      const query = (q: string, value: string) =>
        machine.waitUntilSucceeds(`r=$(curl -fsS 'http://127.0.0.1:9090/api/v1/query?query=${q}') && echo "$r" && echo "$r" | grep -q '${value}'`, { timeout: 180 });
      await query('up', '"job":"node".*"value":\\[[0-9.]*,"1"\\]');
      await query('cairn:up:sum', '"value":\\[[0-9.]*,"1"\\]');
      const flags = await machine.succeed(`curl -fsS http://127.0.0.1:9090/api/v1/status/flags`);
      check(flags.includes('"storage.tsdb.retention.time":"2d"') && flags.includes('"storage.tsdb.path":"/var/lib/prometheus2/data/"'), `flags: ${flags}`);
      check((await machine.succeed('stat -c %U /var/lib/prometheus2/data')).trim() === 'prometheus', 'the data folder is not prometheus\'s');
      // enabledCollectors adds `processes`, disabledCollectors drops `timex`; the host reaches port 9100 through the firewall.
      const port = await freePort();
      await machine.forwardPort(port, 9100);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(60_000) })).text();
      check(/^node_processes_threads \d+$/m.test(metrics) && /^node_cpu_seconds_total\{/m.test(metrics), 'no processes or cpu metrics from the host');
      check(!metrics.includes('node_timex_'), 'the timex collector still runs');
    });

    await subtest(
      'fail2ban: failed ssh logins from the host ban it in the nftables ruleset, until unbanned',
      async () => {
        await machine.waitForUnit('fail2ban.service');
        await machine.waitUntilSucceeds('fail2ban-client status sshd', { timeout: 120 });
        const attempt = (user: string, key: string) =>
          run('ssh', ['-i', key, '-p', String(ssh), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', `${user}@127.0.0.1`, 'true'], { timeout: 60_000 }).then(
            () => true,
            () => false,
          );
        // maxretry = 3 logins as a user sshd does not know (the host is 10.0.2.2 to the guest).
        for (let i = 0; i < 3; i++) check(!(await attempt('mallory', strangerKey)), 'mallory logged in');
        await machine.waitUntilSucceeds('fail2ban-client status sshd | grep -q "Banned IP list:.*\\b10\\.0\\.2\\.2\\b"', { timeout: 120 });
        const ruleset = await machine.succeed('nft list ruleset');
        check(/table inet f2b-table[\s\S]*set addr-set-sshd[^}]*elements = \{ 10\.0\.2\.2 \}/.test(ruleset), `nft list ruleset: ${ruleset}`);
        // Banned: even alice's good key gets nowhere.
        check(!(await attempt('alice', join(keys, 'id'))), 'alice logged in from a banned address');
        await machine.succeed('fail2ban-client set sshd unbanip 10.0.2.2');
        await machine.fail('nft list ruleset | grep -q 10.0.2.2');
        check(await attempt('alice', join(keys, 'id')), 'alice could not log in after the unban');
      },
      { fresh: true },
    );
  },
};
