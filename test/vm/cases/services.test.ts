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

// --- PostgreSQL, its backups and Redis: configuration, then the subtests at the end of the script.
/** The databases' part of the machine; the second generation changes one setting PostgreSQL reloads. */
const databases = (workMem: string) => ({
  services: {
    postgresql: {
      enable: true,
      ensureDatabases: ['app'],
      ensureUsers: [{ name: 'app', ensureDBOwnership: true, ensureClauses: { createdb: true } }],
      // Before NixOS's defaults (which let any role in over TCP with a password): app only to its database.
      authentication: 'host app app 127.0.0.1/32 scram-sha-256\nhost all app 127.0.0.1/32 reject',
      settings: { work_mem: workMem, log_connections: true },
    },
    postgresqlBackup: { enable: true, databases: ['app'] },
    redis: { servers: { '': { enable: true, requirePassFile: '/run/keys/redis' } } },
  },
  systemd: {
    services: {
      // The password is made on the machine, so it is in no file of the store.
      'redis-password': {
        description: 'a random Redis password',
        requiredBy: ['redis.service'],
        before: ['redis.service'],
        serviceConfig: { Type: 'oneshot', RemainAfterExit: true },
        script: 'install -d -m 0700 /run/keys\n[ -s /run/keys/redis ] || (umask 077; head -c 24 /dev/urandom | base64 > /run/keys/redis)',
      },
    },
  },
});
/** The machine as booted, and a second generation in its store (a switch target). */
const withDatabases = (machine: Record<string, unknown>) => ({
  configuration: { ...machine, imports: [databases('4MB')] },
  alsoInStore: [{ ...machine, imports: [databases('8MB')] }],
});
// --- end of PostgreSQL and Redis configuration.

export default {
  name: 'services sharing one machine',
  nodes: {
    machine: withDatabases({
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
    }),
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
    // --- PostgreSQL, its backups and Redis.
    const pg = (sql: string, db = 'postgres') => machine.succeed(`runuser -u postgres -- psql -X -d ${db} -tAc ${JSON.stringify(sql)}`);

    await subtest('postgresql: the ensured database and role exist, app logs in over TCP with its password only', async () => {
      await machine.waitForUnit('postgresql.service');
      check((await pg("SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'")).trim() === 'app:app', 'database app owned by app');
      check((await pg("SELECT rolcanlogin::text || rolcreatedb::text FROM pg_roles WHERE rolname = 'app'")).trim() === 'truetrue', 'role app with LOGIN CREATEDB');
      check((await pg("SELECT current_setting('server_encoding')")).trim() === 'UTF8', 'a UTF-8 cluster');
      await pg("ALTER ROLE app PASSWORD 'app-secret'");
      const tcp = (password: string, sql: string) => `PGPASSWORD=${password} psql -X -h 127.0.0.1 -U app -d app -tAc ${JSON.stringify(sql)}`;
      await machine.succeed(tcp('app-secret', 'CREATE TABLE items (name text); INSERT INTO items VALUES (\'backed up\')'));
      check((await machine.succeed(tcp('app-secret', 'SELECT name FROM items'))).trim() === 'backed up', 'app reads its table over TCP');
      await machine.fail(tcp('wrong', 'SELECT 1'));
      // The declared rules come first: app is refused any other database, whatever the defaults allow.
      const other = await machine.execute('PGPASSWORD=app-secret psql -X -h 127.0.0.1 -U app -d postgres -c "SELECT 1" 2>&1');
      check(other.status !== 0 && other.stdout.includes('pg_hba.conf rejects connection'), `app reached the database postgres: ${other.stdout}`);
      // Peer authentication on the socket: root is not postgres.
      await machine.fail('psql -X -U postgres -d postgres -c "SELECT 1"');
    });

    await subtest('postgresqlBackup: a dump appears whole and restores the table', async () => {
      await machine.succeed('systemctl start postgresqlBackup-app.service');
      await machine.succeed('test "$(stat -c %U:%a /var/backup/postgresql/app.sql.gz)" = postgres:600');
      await machine.fail('ls /var/backup/postgresql | grep in-progress');
      check((await machine.succeed('zcat /var/backup/postgresql/app.sql.gz')).includes('backed up'), 'the dump holds the row');
      // pg_dump -C: the dump recreates the database itself.
      await pg('ALTER DATABASE app RENAME TO app_old');
      await machine.succeed('zcat /var/backup/postgresql/app.sql.gz | runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres');
      check((await pg('SELECT name FROM items', 'app')).trim() === 'backed up', 'the restored database has the row');
      // A second run keeps the first as .prev.
      await machine.succeed('systemctl start postgresqlBackup-app.service && test -s /var/backup/postgresql/app.prev.sql.gz');
    });

    await subtest('redis: answers ping with its password only, which is in no file of /etc', async () => {
      await machine.waitForUnit('redis.service');
      check((await machine.succeed('redis-cli -h 127.0.0.1 ping 2>&1')).includes('NOAUTH'), 'redis answered without the password');
      check((await machine.succeed('REDISCLI_AUTH="$(cat /run/keys/redis)" redis-cli -h 127.0.0.1 ping')).trim() === 'PONG', 'no PONG with the password');
      await machine.succeed('REDISCLI_AUTH="$(cat /run/keys/redis)" redis-cli -s /run/redis/redis.sock set greeting hello');
      check((await machine.succeed('REDISCLI_AUTH="$(cat /run/keys/redis)" redis-cli -h 127.0.0.1 get greeting')).trim() === 'hello', 'get after set');
      await machine.fail('grep -rqF "$(cat /run/keys/redis)" /etc/ /etc/cairn/');
    });

    await subtest(
      'postgresql: a switch that changes work_mem reloads the server, which keeps its main process',
      async () => {
        await machine.waitForUnit('postgresql.service');
        const pid = (await machine.succeed('systemctl show -p MainPID --value postgresql.service')).trim();
        check((await pg('SHOW work_mem')).trim() === '4MB', 'work_mem before the switch');
        const gen2 = machine.otherSystems[0]!;
        const out = await machine.succeed(`${gen2}/bin/switch-to-configuration switch 2>&1`);
        check(/reload postgresql\.service/.test(out) && !/restart postgresql\.service/.test(out), `the switch did not plan a reload of postgresql:\n${out}`);
        await machine.waitUntilSucceeds(`test "$(runuser -u postgres -- psql -X -tAc 'SHOW work_mem')" = 8MB`, { timeout: 60 });
        check((await machine.succeed('systemctl show -p MainPID --value postgresql.service')).trim() === pid, 'postgresql restarted');
      },
      { fresh: true },
    );
    // --- end of PostgreSQL and Redis.
  },
};
