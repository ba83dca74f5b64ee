/**
 * Several services on one machine, one subtest each: the pattern for a new service's VM test.
 * The machine boots once; a subtest costs seconds. Subtests marked `fresh` start from the
 * machine's 'booted' snapshot (taken by the first of them), so they see nothing another wrote:
 * the second subtest proves it. The driver logs each subtest's time and a summary at the end.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, keptFixture, run, sshKeyPair } from './host.js';
import type { DriverContext, Machine } from '../../../src/testing/index.js';

const { dir: keys, publicKey } = await sshKeyPair('driver@host');
const { key: strangerKey } = await sshKeyPair('stranger@host');

// --- age.secrets: the machine's identity is an ssh ed25519 key made here, which the subtest puts
// in place of the machine's host key (age.identityPaths' default) before switching to the
// generations that hold the secrets: as a real machine's host key is provisioned before the
// secrets encrypted to it are deployed. Generation 1 (the boot) has no secrets; 2 and 3 differ
// only in the encrypted file, so switching from 2 to 3 must restart the service using it.
const ageKey = await sshKeyPair('root@services', 'cairn-test-age-');
/**
 * The two secrets and their encrypted files, kept from run to run (age encrypts differently each
 * time: new files would make other systems in the machine's store, booted every run).
 */
const ageDir = await keptFixture(
  'services-age',
  async (d) => {
    for (const [i, w] of ['first', 'second'].entries()) {
      const plain = `cairn-${w}-secret-${randomBytes(12).toString('hex')}`;
      await run('sh', ['-c', 'printf %s "$1" | age -e -r "$2" -o "$3"', 'sh', plain, ageKey.publicKey, join(d, `greeting-${i + 1}.age`)]);
      writeFileSync(join(d, `greeting-${i + 1}`), plain);
    }
  },
  { inputs: ageKey.publicKey },
);
const agePlain = [1, 2].map((i) => readFileSync(join(ageDir, `greeting-${i}`), 'utf8'));
const ageFiles = [1, 2].map((i) => join(ageDir, `greeting-${i}.age`));
const withSecret = (file: string) => ({
  users: { users: { bob: { isNormalUser: true } } },
  age: { secrets: { greeting: { file, owner: 'alice', restartUnits: ['secret-reader.service'] } } },
  systemd: {
    services: {
      'secret-reader': {
        wantedBy: ['multi-user.target'],
        serviceConfig: { User: 'alice' },
        script: 'test -r /run/secrets/greeting\nexec sleep infinity',
      },
    },
  },
});
/** Plain objects merged key by key (lists concatenated): the machine's configuration and another module's. */
function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const x = out[k];
    if (Array.isArray(x) && Array.isArray(v)) out[k] = [...x, ...v];
    else if (x && v && typeof x === 'object' && typeof v === 'object') out[k] = deepMerge(x as Record<string, unknown>, v as Record<string, unknown>);
    else out[k] = v;
  }
  return out;
}
/** The machine as it boots, and in its store the same machine with each version of the secret. */
const withSecretGenerations = (machine: Record<string, unknown>) => ({ configuration: machine, alsoInStore: ageFiles.map((f) => deepMerge(machine, withSecret(f))) });
// --- end of age.secrets' setup

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
/**
 * The machine as booted (databases with work_mem 4MB); in its store, as switch targets: the two
 * generations of the secrets' subtest (otherSystems 0 and 1), then the databases' second (2).
 */
const withSecretsAndDatabases = (machine: Record<string, unknown>) => {
  const booted = { ...machine, imports: [databases('4MB')] };
  return { configuration: booted, alsoInStore: [...withSecretGenerations(booted).alsoInStore, { ...machine, imports: [databases('8MB')] }] };
};
// --- end of PostgreSQL and Redis configuration.

export default {
  name: 'services sharing one machine',
  // Many services, one boot: the first boot (initdb, fail2ban's Python) alone can take minutes under emulation.
  timeout: 1800,
  nodes: {
    machine: withSecretsAndDatabases({
      networking: { hostName: 'services' },
      system: { stateVersion: '0.1' },
      services: {
        journald: { storage: 'volatile' },
        // On: a VM runs no time daemon by default.
        timesyncd: { enable: true, servers: ['ntp1.cairn.test', 'ntp2.cairn.test'] },
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
    }),
  },
  async testScript({ machine }: Record<string, Machine>, { subtest, log }: DriverContext) {
    await machine.start();
    // Added before the snapshot: forwards live in QEMU and outlast restores.
    const ssh = await freePort();
    await machine.forwardPort(ssh, 22);
    // fail2ban's server gives its own configuration 30 s by the wall clock (fail2ban-server's
    // `--timeout`) and quits with status 255, which Debian's unit does not restart. The 'booted'
    // snapshot must not catch it inside that window: each restore sets the guest's clock ahead by the
    // time since the snapshot, and the restored server would give up at once. multi-user.target does
    // not wait for that start (the unit is Type=simple), and an idle CPU for a moment does not prove it.
    await machine.waitForUnit('fail2ban.service');
    await machine.waitUntilSucceeds(`journalctl -o cat _SYSTEMD_UNIT=fail2ban.service | grep -q "Jail 'sshd' started"`).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${(await machine.execute('systemctl status --no-pager -n 40 fail2ban.service')).stdout}`);
    });

    await subtest(
      'journald: storage = volatile keeps the journal in /run',
      async () => {
        await machine.succeed('echo "written by the journald subtest" | systemd-cat -t cairn-subtest');
        await machine.waitUntilSucceeds('journalctl -t cairn-subtest -o cat | grep -qx "written by the journald subtest"');
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
      'age.secrets: decrypted for its owner only, never in the store, kept by a switch, and a changed one restarts its service',
      async () => {
        const [withFirst, withSecond] = machine.otherSystems as [string, string];
        // The identity goes through a folder only root can enter, so it is never readable by others.
        await machine.succeed('install -d -m 0700 /root/age-provision');
        await machine.copyToMachine(ageKey.key, '/root/age-provision/key');
        await machine.succeed(
          'chmod 0600 /root/age-provision/key && mv /root/age-provision/key /etc/ssh/ssh_host_ed25519_key && ' +
            `echo ${JSON.stringify(ageKey.publicKey)} > /etc/ssh/ssh_host_ed25519_key.pub && rmdir /root/age-provision`,
        );
        const activate = async (toplevel: string) => {
          const r = await machine.execute(`${toplevel}/bin/switch-to-configuration test 2>&1`);
          check(r.status === 0, `switch-to-configuration test of ${toplevel} exited ${r.status}:\n${r.stdout}`);
          return r.stdout;
        };
        const invocation = () => machine.succeed('systemctl show -P InvocationID secret-reader.service');

        await activate(withFirst);
        await machine.waitForUnit('secret-reader.service');
        check((await machine.succeed('runuser -u alice -- cat /run/secrets/greeting')) === agePlain[0], 'alice does not read the first secret');
        const denied = await machine.execute('runuser -u bob -- cat /run/secrets/greeting 2>&1');
        check(denied.status !== 0 && denied.stdout.includes('Permission denied'), `bob read the secret: ${denied.stdout}`);
        check((await machine.succeed('stat -L -c "%U %G %a" /run/secrets/greeting')).trim() === 'alice users 400', 'owner, group or mode');
        check((await machine.succeed('findmnt -n -o FSTYPE /run/secrets.d')).trim() === 'ramfs', '/run/secrets.d is not a ramfs');
        // Neither version of the plaintext is anywhere in the store (every generation's closure):
        // searched on the host, in the folders the machine's store disk was made from.
        const storePaths = await machine.storeOnHost();
        check(storePaths.length > 100, `the machine's store has only ${storePaths.length} paths`);
        const grep = await run('grep', ['-rlF', ...agePlain.flatMap((p) => ['-e', p]), ...storePaths], { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 1 << 24 }).then(
          (r) => ({ code: 0, out: r.stdout }),
          (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
        );
        // grep: 1 = searched everything, found nothing; 0 = found; 2 = could not read something.
        check(grep.code === 1, `the store holds a plaintext secret, or could not be searched whole (grep exit ${grep.code}):\n${grep.out.slice(0, 2000)}`);
        const first = await invocation();

        // The same generation again: decrypted anew, the service left running.
        const link = await machine.succeed('readlink /run/secrets');
        await activate(withFirst);
        check((await machine.succeed('readlink /run/secrets')) !== link, 'the secrets were not decrypted again');
        check((await machine.succeed('runuser -u alice -- cat /run/secrets/greeting')) === agePlain[0], 'the secret did not survive the switch');
        check((await invocation()) === first, 'secret-reader was restarted though its secret did not change');

        // A changed secret: the service using it restarts, and reads the new one.
        const plan = await activate(withSecond);
        check(/stop secret-reader\.service before activation, start it after/.test(plan), `the switch did not restart secret-reader:\n${plan}`);
        await machine.waitForUnit('secret-reader.service');
        check((await invocation()) !== first, 'secret-reader kept running with the old secret');
        check((await machine.succeed('runuser -u alice -- cat /run/secrets/greeting')) === agePlain[1], 'alice does not read the second secret');
        check((await machine.succeed('ls /run/secrets.d')).trim().split('\n').length === 1, 'old generations of secrets are left');
      },
      { fresh: true },
    );

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
        machine.waitUntilSucceeds(`r=$(curl -fsS 'http://127.0.0.1:9090/api/v1/query?query=${q}') && echo "$r" && echo "$r" | grep -q '${value}'`);
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
        const t0 = performance.now();
        const since = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
        // ConnectTimeout bounds the TCP connection and the banner: tight only where the guest must not answer.
        const attempt = (user: string, key: string, connectTimeout = 300) =>
          run('ssh', ['-i', key, '-p', String(ssh), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', `ConnectTimeout=${connectTimeout}`, `${user}@127.0.0.1`, 'true'], {
            timeout: (connectTimeout + 120) * 1000,
          }).then(
            () => true,
            () => false,
          );
        /** What sshd and fail2ban logged and how their units are, for a failure's message. */
        const journal = async () =>
          (await machine.execute('systemctl status --no-pager -n 0 fail2ban.service sshd.service; journalctl --no-pager -o short-precise _COMM=sshd _COMM=sshd-session + _SYSTEMD_UNIT=fail2ban.service | tail -n 40')).stdout;
        const explained = async (e: Error): Promise<never> => {
          throw new Error(`${e.message}\n--- sshd and fail2ban ---\n${await journal()}`);
        };
        // maxretry = 3 logins as a user sshd does not know (the host is 10.0.2.2 to the guest). Each
        // counts once sshd has logged it; on a starved guest a client can give up before that. The
        // jail reads the journal from `findtime` ago when it starts: logins before it is up count too.
        const logged = async () => Number((await machine.succeed("timeout 120 journalctl --sync; journalctl -o cat _COMM=sshd _COMM=sshd-session | grep -c 'Invalid user mallory from 10\\.0\\.2\\.2' || true").catch(explained)).trim());
        let attempts = 0;
        for (let i = 1; i <= 3; i++) {
          for (let tries = 0; (await logged()) < i; tries++) {
            if (tries === 3) throw new Error(`sshd logged ${await logged()} of ${i} failed logins (${since()} into the subtest):\n${await journal()}`);
            check(!(await attempt('mallory', strangerKey)), 'mallory logged in');
            attempts++;
          }
        }
        log(`fail2ban: 3 failed logins logged by sshd (${attempts} attempts) after ${since()}`);
        // The ban, seen in the nftables set (fail2ban-client is a Python start per call under emulation);
        // a server that quit ends the wait at once.
        await machine
          .succeed("until nft list set inet f2b-table addr-set-sshd 2>/dev/null | grep -qw '10\\.0\\.2\\.2'; do systemctl is-active -q fail2ban.service || { echo 'fail2ban.service is not running' >&2; exit 1; }; sleep 1; done")
          .catch(explained);
        log(`fail2ban: banned after ${since()}`);
        const ruleset = await machine.succeed('nft list ruleset');
        check(/table inet f2b-table[\s\S]*set addr-set-sshd[^}]*elements = \{ 10\.0\.2\.2 \}/.test(ruleset), `nft list ruleset: ${ruleset}`);
        // Banned: even alice's good key gets nowhere.
        check(!(await attempt('alice', join(keys, 'id'), 20)), 'alice logged in from a banned address');
        await machine.succeed('fail2ban-client set sshd unbanip 10.0.2.2');
        await machine.fail('nft list ruleset | grep -q 10.0.2.2');
        check(await attempt('alice', join(keys, 'id')), 'alice could not log in after the unban');
      },
      { fresh: true },
    );

    await subtest("python: modules load from the bytecode compiled at build time (the standard library's, fail2ban's)", async () => {
      // -v names the file each module's code came from: its pyc, or the source when it was compiled now.
      const loaded = await machine.succeed("python3 -B -v -c 'import json, fail2ban.server.jail' 2>&1 | grep '^# code object from'");
      check(/\/json\/__pycache__\/__init__\.cpython-3\d+\.pyc'$/m.test(loaded), `json was compiled at its import:\n${loaded}`);
      check(/\/dist-packages\/fail2ban\/server\/__pycache__\/jail\.cpython-3\d+\.pyc'$/m.test(loaded), `fail2ban's jail module was compiled at its import:\n${loaded}`);
      // Only Debian's sitecustomize.py, a link to /etc (the administrator's to change), is compiled as it is imported.
      const compiled = loaded.split('\n').filter((l) => l.endsWith(".py'") && !l.endsWith("/sitecustomize.py'"));
      check(compiled.length === 0, `modules compiled at their import:\n${compiled.join('\n')}`);
    });

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
        const gen2 = machine.otherSystems[2]!;
        const out = await machine.succeed(`${gen2}/bin/switch-to-configuration switch 2>&1`);
        check(/reload postgresql\.service/.test(out) && !/restart postgresql\.service/.test(out), `the switch did not plan a reload of postgresql:\n${out}`);
        await machine.waitUntilSucceeds(`test "$(runuser -u postgres -- psql -X -tAc 'SHOW work_mem')" = 8MB`);
        check((await machine.succeed('systemctl show -p MainPID --value postgresql.service')).trim() === pid, 'postgresql restarted');
      },
      { fresh: true },
    );
    // --- end of PostgreSQL and Redis.
  },
};
