/**
 * services.postgresql, services.postgresqlBackup and services.redis.servers: what they render
 * (configuration files, units, the scripts' SQL and shell quoting), when a switch reloads rather
 * than restarts PostgreSQL, what they refuse, and Debian's postgres accepting the generated
 * postgresql.conf as the build check runs it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CairnError } from '../../src/errors.js';
import { evalSystem } from '../../src/eval/index.js';
import { etcText, evalConfig, tempDir, refusal } from './helpers.js';
import { storePrograms, type StorePrograms } from './store-programs.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Cfg = any;

const pg = (o: object = {}, more: object = {}) => ({ services: { postgresql: { enable: true, ...o }, ...more } });
const redis = (servers: object) => ({ services: { redis: { servers } } });

const failure = refusal;

/** The text of the unit's script for `phase` (`pre-start`, `start`, `post-start`, …). */
function script(c: Cfg, unit: string, phase: string): string {
  const name = Object.keys(c.environment.etc).find((k) => k.startsWith(`cairn/scripts/${unit}-${phase}-`));
  if (!name) throw new Error(`no ${phase} script of ${unit}`);
  return etcText(c, name);
}

/** The `X-…-Triggers=` digest of a unit. */
const trigger = (c: Cfg, unit: string, kind: 'Restart' | 'Reload') => new RegExp(`^X-${kind}-Triggers=(.*)$`, 'm').exec(etcText(c, `systemd/system/${unit}.service`))?.[1];

/**
 * Runs a generated script with bash, its server programs replaced by a stub that logs its last
 * argument (the SQL) and prints nothing (so every "does it exist" query says no).
 */
function runWithStubPsql(text: string): string[] {
  const dir = tempDir('pg-stub');
  const log = join(dir, 'log');
  writeFileSync(join(dir, 'psql'), `#!/bin/bash\nfor a; do last=$a; done\nprintf '%s\\0' "$last" >> ${log}\n`, { mode: 0o755 });
  const body = text.replace(/^\[ -n "\$major" \].*$/m, '').replace('bin=/usr/lib/postgresql/$major/bin', `bin=${dir}`).replace(/^PGDATA=.*$/m, `PGDATA=${dir}`);
  const r = spawnSync('bash', ['-c', body], { encoding: 'utf8', env: { ...process.env, MAINPID: String(process.pid) } });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(log, 'utf8').split('\0').filter(Boolean);
}

describe('services.postgresql', () => {
  it('renders postgresql.conf, pg_hba.conf (declared rules before NixOS\'s defaults) and pg_ident.conf', async () => {
    const c = await evalConfig(pg({ authentication: 'host app app 10.0.0.0/8 scram-sha-256', identMap: 'postgres root postgres', settings: { work_mem: '4MB', log_connections: true, search_path: "\"$user\", it's" } }));
    const conf = etcText(c, 'cairn/postgresql/postgresql.conf');
    expect(conf).toContain("port = 5432\n");
    expect(conf).toContain("listen_addresses = 'localhost'\n");
    expect(conf).toContain("hba_file = '/etc/cairn/postgresql/pg_hba.conf'\n");
    expect(conf).toContain("log_connections = on\n");
    expect(conf).toContain(`search_path = '"$user", it''s'\n`);
    const hba = etcText(c, 'cairn/postgresql/pg_hba.conf').split('\n');
    const declared = hba.indexOf('host app app 10.0.0.0/8 scram-sha-256');
    expect(declared).toBeGreaterThan(0);
    expect(hba.indexOf('local all postgres         peer map=postgres')).toBeGreaterThan(declared);
    expect(hba).toContain('host  all all 127.0.0.1/32 md5');
    expect(etcText(c, 'cairn/postgresql/pg_ident.conf')).toBe('postgres root postgres\npostgres postgres postgres\n');
    expect(c.users.users.postgres.group).toBe('postgres');
    expect(c.environment.systemPackages.map(String)).toContain('postgresql');
    const unit = etcText(c, 'systemd/system/postgresql.service');
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^User=postgres$/m);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    // initdb at the first start takes minutes on a slow machine: no start timeout.
    expect(unit).toMatch(/^TimeoutStartSec=infinity$/m);
  });

  it('enableTCPIP listens everywhere; `port` and `extraPlugins` are the older names of settings.port and extensions (with warnings)', async () => {
    const ev = await evalSystem([pg({ enableTCPIP: true, port: 5433, extraPlugins: ['postgresql-15-postgis-3'] })] as never[]);
    const c = ev.config as Cfg;
    expect(c.services.postgresql.settings.port).toBe(5433);
    expect(etcText(c, 'cairn/postgresql/postgresql.conf')).toContain("listen_addresses = '*'\nport = 5433\n".split('\n')[0]);
    expect(etcText(c, 'cairn/postgresql/postgresql.conf')).toContain('port = 5433\n');
    expect(script(c, 'postgresql', 'post-start')).toContain('--port=5433');
    expect(ev.warnings.join('\n')).toMatch(/services\.postgresql\.port.*settings\.port/);
    // extraPlugins, NixOS's older name of extensions: Debian's extension packages, installed.
    expect(c.environment.systemPackages.map(String)).toContain('postgresql-15-postgis-3');
    expect(ev.warnings.join('\n')).toMatch(/services\.postgresql\.extraPlugins.*extensions/);
  });

  it('the data directory: /var/lib/postgresql/<major> for a versioned package, found on the machine for the metapackage', async () => {
    const meta = await evalConfig(pg());
    expect(meta.services.postgresql.dataDir).toBeNull();
    const pre = script(meta, 'postgresql', 'pre-start');
    expect(pre).toContain('PGDATA=/var/lib/postgresql/$major');
    expect(pre).toContain("'--locale=C.UTF-8' '--encoding=UTF8'");
    const v15 = await evalConfig(pg({ package: 'postgresql-15' }));
    expect(v15.services.postgresql.dataDir).toBe('/var/lib/postgresql/15');
    expect(script(v15, 'postgresql', 'start')).toMatch(/^major=15$/m);
    const own = await evalConfig(pg({ dataDir: '/srv/pg data'.replace(' ', '-'), initdbArgs: ['--locale=de_DE.UTF-8', '--data-checksums'] }));
    expect(script(own, 'postgresql', 'pre-start')).toContain("PGDATA='/srv/pg-data'");
    expect(script(own, 'postgresql', 'pre-start')).toContain("initdb\" -U postgres '--encoding=UTF8' '--locale=de_DE.UTF-8' '--data-checksums'");
    expect(own.systemd.tmpfiles.rules).toContain('d /srv/pg-data 0700 postgres postgres -');
  });

  it('refuses to start on another major version\'s cluster, saying how to upgrade, and leaves it alone', async () => {
    const c = await evalConfig(pg({ package: 'postgresql-17', dataDir: '/x' }));
    const dir = tempDir('pg-major');
    writeFileSync(join(dir, 'PG_VERSION'), '15\n');
    writeFileSync(join(dir, 'postgresql.conf'), 'old\n');
    const body = script(c, 'postgresql', 'pre-start')
      .replace(/^\[ -n "\$major" \].*$/m, '')
      .replace("PGDATA='/x'", `PGDATA=${dir}`);
    const r = spawnSync('bash', ['-c', body], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${dir} holds a PostgreSQL 15 cluster, but the server is PostgreSQL 17`);
    expect(r.stderr).toContain('pg_upgrade');
    expect(r.stderr).toContain('services.postgresql.package = "postgresql-15"');
    expect(readFileSync(join(dir, 'postgresql.conf'), 'utf8')).toBe('old\n');
  });

  it('ensureDatabases and ensureUsers: names quoted as SQL identifiers and literals, clauses as ALTER ROLE', async () => {
    const odd = `we"ird'name $(touch /tmp/x)`;
    const c = await evalConfig(
      pg({
        ensureDatabases: [odd],
        ensureUsers: [{ name: odd, ensureDBOwnership: true, ensureClauses: { createdb: true, superuser: false, login: null } }],
      }),
    );
    const sql = runWithStubPsql(script(c, 'postgresql', 'post-start'));
    expect(sql).toEqual([
      `SELECT 1 FROM pg_database WHERE datname = 'we"ird''name $(touch /tmp/x)'`,
      `CREATE DATABASE "we""ird'name $(touch /tmp/x)"`,
      `SELECT 1 FROM pg_roles WHERE rolname = 'we"ird''name $(touch /tmp/x)'`,
      `CREATE USER "we""ird'name $(touch /tmp/x)"`,
      `ALTER ROLE "we""ird'name $(touch /tmp/x)" NOSUPERUSER CREATEDB`,
      `ALTER DATABASE "we""ird'name $(touch /tmp/x)" OWNER TO "we""ird'name $(touch /tmp/x)"`,
    ]);
  });

  it('a switch reloads for a reloadable setting, pg_hba.conf or pg_ident.conf, and restarts for one read at start', async () => {
    const base = await evalConfig(pg({ settings: { work_mem: '4MB', shared_buffers: '128MB' } }));
    const reloaded = await evalConfig(pg({ settings: { work_mem: '8MB', shared_buffers: '128MB' }, authentication: 'host all all 10.0.0.0/8 md5' }));
    const restarted = await evalConfig(pg({ settings: { work_mem: '4MB', shared_buffers: '256MB' } }));
    expect(trigger(reloaded, 'postgresql', 'Restart')).toBe(trigger(base, 'postgresql', 'Restart'));
    expect(trigger(reloaded, 'postgresql', 'Reload')).not.toBe(trigger(base, 'postgresql', 'Reload'));
    expect(trigger(restarted, 'postgresql', 'Restart')).not.toBe(trigger(base, 'postgresql', 'Restart'));
    // The unit differs from the old one only in its reload triggers: what the switch reloads for.
    const strip = (c: Cfg) => etcText(c, 'systemd/system/postgresql.service').replace(/^X-Reload-Triggers=.*\n/m, '');
    expect(strip(reloaded)).toBe(strip(base));
  });

  it.each([
    [pg({ ensureUsers: [{ name: 'app', ensureDBOwnership: true }] }), 'services.postgresql.ensureUsers: "app" has ensureDBOwnership, but no database of that name is in services.postgresql.ensureDatabases'],
    [pg({ package: 'nginx' }), 'services.postgresql.package: nginx is not a Debian PostgreSQL server package'],
    [pg({ settings: { 'bad name': 1 } }), 'services.postgresql.settings'],
    [pg({ settings: { work_mem: '4MB\nport = 1' } }), 'services.postgresql.settings.work_mem'],
    [pg({ dataDir: '/srv/pg data' }), 'services.postgresql.dataDir'],
    [pg({ ensureDatabases: ['a\nb'] }), 'services.postgresql.ensureDatabases'],
  ])('refuses %j', async (module, message) => {
    expect(await failure(module)).toContain(message);
  });

  it('names the file and line of a refused definition', async () => {
    const dir = tempDir('pg-yaml');
    const file = join(dir, 'configuration.yaml');
    writeFileSync(file, 'services:\n  postgresql:\n    enable: true\n    dataDir: "relative/dir"\n');
    await expect(evalSystem([file])).rejects.toThrow(/services\.postgresql\.dataDir[\s\S]*configuration\.yaml:4/);
  });
});

describe("Debian's postgres (from the store) reads the generated postgresql.conf", () => {
  let tools: StorePrograms;
  beforeAll(async () => {
    tools = await storePrograms(['postgresql-17'], ['usr/lib/postgresql/17/bin/postgres'], { absoluteArgv0: true });
  }, 600_000);

  it('accepts quoted strings, booleans and numbers, and refuses an unknown parameter', async () => {
    const c = await evalConfig(pg({ settings: { work_mem: '4MB', log_connections: true, max_connections: 50, search_path: "\"$user\", it's", random_page_cost: 1.5 } }));
    const conf = etcText(c, 'cairn/postgresql/postgresql.conf');
    const dir = tempDir('pg-check');
    chmodSync(dir, 0o755);
    // postgres refuses root: run as nobody. It is told its own path (the store's), where its lib folder is beside it.
    const run = (text: string, param = 'config_file') => {
      writeFileSync(join(dir, 'postgresql.conf'), text);
      chownSync(join(dir, 'postgresql.conf'), 65534, 65534);
      return spawnSync(tools.path('postgres'), ['-D', dir, '-C', param], { encoding: 'utf8', uid: 65534, gid: 65534, env: { PATH: tools.bin, LC_ALL: 'C' } });
    };
    const ok = run(conf);
    expect(ok.stderr).not.toMatch(/ERROR|FATAL/);
    expect(ok.status).toBe(0);
    expect(run(conf, 'search_path').stdout.trim()).toBe(`"$user", it's`);
    // In kB, as postgres -C prints memory settings.
    expect(run(conf, 'work_mem').stdout.trim()).toBe('4096');
    const bad = run(`${conf}no_such_setting = 1\n`);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('no_such_setting');
  });
});

describe('services.postgresqlBackup', () => {
  it('one timer and oneshot per database; the dump is renamed into place once complete', async () => {
    const c = await evalConfig(pg({ package: 'postgresql-15' }, { postgresqlBackup: { enable: true, databases: ['app'], pgdumpOptions: '-C --exclude-table=x;rm' } }));
    const unit = etcText(c, 'systemd/system/postgresqlBackup-app.service');
    expect(unit).toMatch(/^Type=oneshot$/m);
    expect(unit).toMatch(/^User=postgres$/m);
    expect(unit).toMatch(/^Requires=postgresql\.service$/m);
    expect(etcText(c, 'systemd/system/postgresqlBackup-app.timer')).toMatch(/^OnCalendar=\*-\*-\* 01:15:00$/m);
    const s = script(c, 'postgresqlBackup-app', 'start');
    expect(s).toContain(`"$bin/pg_dump" '-C' '--exclude-table=x;rm' 'app' | gzip -c -6 --rsyncable > '/var/backup/postgresql/app.in-progress.sql.gz'\nmv '/var/backup/postgresql/app.in-progress.sql.gz' '/var/backup/postgresql/app.sql.gz'`);
    expect(s).toMatch(/^major=15$/m);
    expect(c.systemd.tmpfiles.rules).toContain('d /var/backup/postgresql 0700 postgres - - -');
  });

  it('backupAll (the default without databases): pg_dumpall into all.sql, zstd when chosen', async () => {
    const c = await evalConfig(pg({}, { postgresqlBackup: { enable: true, compression: 'zstd', compressionLevel: 12 } }));
    expect(c.systemd.services.postgresqlBackup).toBeDefined();
    const s = script(c, 'postgresqlBackup', 'start');
    expect(s).toContain(`"$bin/pg_dumpall" | zstd -q -c -12 --rsyncable > '/var/backup/postgresql/all.in-progress.sql.zstd'`);
    expect(c.environment.systemPackages.map(String)).toContain('zstd');
  });

  it.each([
    [{ backupAll: true, databases: ['a'] }, 'backupAll cannot be used together with services.postgresqlBackup.databases'],
    [{ compressionLevel: 12 }, 'gzip takes levels 1 to 9, not 12'],
    [{ databases: ['a b'] }, 'services.postgresqlBackup.databases'],
    [{ location: 'backups' }, 'services.postgresqlBackup.location'],
  ])('refuses %j', async (o, message) => {
    expect(await failure(pg({}, { postgresqlBackup: { enable: true, ...o } }))).toContain(message);
  });
});

describe('services.redis.servers', () => {
  it('the server "" is the unit redis on 6379; another is redis-<name>, on its socket only', async () => {
    const c = await evalConfig(redis({ '': { enable: true, openFirewall: true, extraParams: ['--maxmemory 10mb'] }, cache: { enable: true, openFirewall: true, save: [], appendOnly: true, settings: { 'maxmemory-policy': 'allkeys-lru' } } }));
    // Only a server on TCP opens a port.
    expect(c.networking.firewall.allowedTCPPorts).toEqual([6379]);
    const main = etcText(c, 'cairn/redis/redis.conf');
    expect(main).toContain('port 6379\n');
    expect(main).toContain('bind 127.0.0.1\n');
    expect(main).toContain('save 900 1\nsave 300 10\nsave 60 10000\n');
    expect(main).toContain('unixsocket /run/redis/redis.sock\n');
    expect(main).toContain('supervised systemd\n');
    const cache = etcText(c, 'cairn/redis/redis-cache.conf');
    expect(cache).toContain('port 0\n');
    expect(cache).toContain('save ""\n');
    expect(cache).toContain('appendonly yes\n');
    expect(cache).toContain('maxmemory-policy allkeys-lru\n');
    expect(cache).toContain('dir /var/lib/redis-cache\n');
    const unit = etcText(c, 'systemd/system/redis-cache.service');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/redis-server \/var\/lib\/redis-cache\/redis\.conf$/m);
    expect(unit).toMatch(/^User=redis-cache$/m);
    expect(unit).toMatch(/^StateDirectory=redis-cache$/m);
    expect(etcText(c, 'systemd/system/redis.service')).toMatch(/^User=redis$/m);
    expect(etcText(c, 'systemd/system/redis.service')).toMatch(/^ExecStart=\/usr\/bin\/redis-server \/var\/lib\/redis\/redis\.conf '--maxmemory 10mb'$/m);
    expect(c.users.users['redis-cache'].isSystemUser).toBe(true);
    expect(c.boot.kernel.sysctl['vm.overcommit_memory']).toBe(1);
    // A changed setting restarts the server (redis reads its files only at start).
    const other = await evalConfig(redis({ '': { enable: true, openFirewall: true }, cache: { enable: true, openFirewall: true, save: [], appendOnly: false } }));
    expect(trigger(other, 'redis-cache', 'Restart')).not.toBe(trigger(c, 'redis-cache', 'Restart'));
    expect(trigger(other, 'redis', 'Restart')).toBe(trigger(c, 'redis', 'Restart'));
  });

  it('requirePassFile is read at start into /run, quoted for redis.conf, and never written to /etc', async () => {
    const c = await evalConfig(redis({ '': { enable: true, requirePassFile: '/run/keys/redis pw' } }));
    expect(etcText(c, 'cairn/redis/redis.conf')).not.toContain('requirepass');
    const name = Object.keys(c.environment.etc).find((k) => k.startsWith('cairn/scripts/redis-prepare-'))!;
    expect(etcText(c, 'systemd/system/redis.service')).toContain(`ExecStartPre=+/etc/${name}\n`);
    const dir = tempDir('redis-prep');
    const pw = 'a"b\\c $(x) d';
    writeFileSync(join(dir, 'pw'), `${pw}\nsecond line\n`);
    mkdirSync(join(dir, 'run'));
    mkdirSync(join(dir, 'lib'));
    const body = etcText(c, name)
      .replaceAll('/run/redis/', `${dir}/run/`)
      .replaceAll('/var/lib/redis/', `${dir}/lib/`)
      .replace("'/run/keys/redis pw'", `${dir}/pw`)
      .replace(/^chown .*$/m, '');
    const r = spawnSync('bash', ['-c', body], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'run/cairn.conf'), 'utf8')).toBe(`include "/etc/cairn/redis/redis.conf"\nrequirepass "a\\"b\\\\c $(x) d"\n`);
    expect(readFileSync(join(dir, 'lib/redis.conf'), 'utf8')).toBe(`include "${dir}/run/cairn.conf"\n`);
    // An empty file starts no server without a password.
    writeFileSync(join(dir, 'pw'), '');
    expect(spawnSync('bash', ['-c', body], { encoding: 'utf8' }).status).toBe(1);
  });

  it.each([
    [{ enable: true, requirePass: 'secret' }, 'services.redis.servers."".requirePass: the password would be in the world-readable store'],
    [{ enable: true, masterAuth: 'secret' }, 'services.redis.servers."".masterAuth: the password would be in the world-readable store'],
    [{ enable: true, requirePassFile: '/cairn/store/abc-pw' }, 'requirePassFile: /cairn/store/abc-pw is in the world-readable store'],
    [{ enable: true, port: 0, unixSocket: null }, 'could not be reached'],
    [{ enable: true, settings: { 'x\ny': 1 } }, 'services.redis.servers."".settings'],
    [{ enable: true, extraParams: ["--x 'y'"] }, 'services.redis.servers."".extraParams'],
    [{ enable: true, extraParams: ['%h'] }, 'services.redis.servers."".extraParams'],
    [{ enable: true, settings: { include: '/a\nrequirepass x' } }, 'services.redis.servers."".settings'],
  ])('refuses %j', async (server, message) => {
    expect(await failure(redis({ '': server }))).toContain(message);
  });
});
