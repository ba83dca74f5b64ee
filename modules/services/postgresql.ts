import type { Config, ModuleArgs } from '../config.js';

type Postgresql = Config['services']['postgresql'];

/** Where cairn writes the server's configuration files (Debian's /etc/postgresql/<major>/<cluster> is pg_wrapper's, not used). */
const ETC = 'cairn/postgresql';

/**
 * Settings the server reads only at start (`context = postmaster` in `pg_settings` of PostgreSQL
 * 15 to 17): a change of one of them restarts the service; any other change only reloads it.
 */
const RESTART_SETTINGS = [
  'archive_mode', 'autovacuum_max_workers', 'bonjour', 'bonjour_name', 'cluster_name', 'config_file', 'data_directory',
  'dynamic_shared_memory_type', 'event_source', 'external_pid_file', 'hba_file', 'hot_standby', 'huge_page_size', 'huge_pages',
  'ident_file', 'io_method', 'jit_provider', 'listen_addresses', 'logging_collector', 'max_connections', 'max_files_per_process',
  'max_locks_per_transaction', 'max_logical_replication_workers', 'max_pred_locks_per_transaction', 'max_prepared_transactions',
  'max_replication_slots', 'max_wal_senders', 'max_worker_processes', 'min_dynamic_shared_memory', 'old_snapshot_threshold', 'port',
  'recovery_target', 'recovery_target_action', 'recovery_target_inclusive', 'recovery_target_lsn', 'recovery_target_name',
  'recovery_target_time', 'recovery_target_timeline', 'recovery_target_xid', 'reserved_connections', 'shared_buffers',
  'shared_memory_type', 'shared_preload_libraries', 'superuser_reserved_connections', 'track_activity_query_size',
  'track_commit_timestamp', 'unix_socket_directories', 'unix_socket_group', 'unix_socket_permissions', 'wal_buffers', 'wal_decode_buffer_size',
  'wal_level', 'wal_log_hints',
];

/** A SQL identifier, double-quoted (`"` doubled), so any role or database name stays one name. */
const sqlIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;
/** A SQL string literal, single-quoted (`'` doubled; standard_conforming_strings is on since 9.1). */
const sqlLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * `services.postgresql`: the PostgreSQL server, with NixOS's options, on Debian's packages. The
 * cluster is made by `initdb` at the first start (never Debian's pg_createcluster); postgresql.conf,
 * pg_hba.conf and pg_ident.conf are cairn's, in /etc/cairn/postgresql. What Debian's maintainer
 * scripts would do is here: the `postgres` account, the data and socket folders.
 */
export default ({ lib, config, pkgs }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, mkBefore, mkAfter, mkDefault, types } = lib;
  const cfg = config.services.postgresql;
  const fmt = lib.formats.postgresqlConf();
  // Role and database names: any text PostgreSQL takes (quoted as identifiers), but on one line.
  const sqlName = types.strMatching('[^\\x00-\\x1f\\x7f]{1,63}');
  // A folder that is also a tmpfiles path and a unit's RequiresMountsFor= (no quotes, `%`, spaces).
  const folder = types.strMatching('/[^\\s"\'\\\\%\\x00-\\x1f\\x7f]*');

  /** The major version a Debian package name fixes (`postgresql-16` → 16); null for the `postgresql` metapackage. */
  const majorOf = (p: Postgresql): string | null => /^postgresql-(\d+)$/.exec(String(p.package))?.[1] ?? null;

  /**
   * The shell lines every script of the unit starts with: `major`, `bin` (the server's programs)
   * and `PGDATA`. With the metapackage the major is the newest server installed, which is the one
   * it depends on (15 on Debian 12, 17 on Debian 13).
   */
  const locate = (): string => {
    const major = majorOf(cfg);
    return [
      major !== null
        ? `major=${major}`
        : 'major=$(for p in /usr/lib/postgresql/*/bin/postgres; do [ -x "$p" ] && basename "$(dirname "$(dirname "$p")")"; done | sort -n | tail -n 1)',
      '[ -n "$major" ] && [ -x "/usr/lib/postgresql/$major/bin/postgres" ] || { echo "postgresql: no server program in /usr/lib/postgresql/${major:-*}/bin" >&2; exit 1; }',
      'bin=/usr/lib/postgresql/$major/bin',
      `PGDATA=${cfg.dataDir !== null ? lib.shellQuote(cfg.dataDir) : '/var/lib/postgresql/$major'}`,
      'export PGDATA',
    ].join('\n');
  };

  /**
   * initdb's arguments: UTF-8 and the C.UTF-8 locale (always in Debian's libc) unless chosen, since
   * the unit's environment has no LANG and initdb would otherwise make an SQL_ASCII cluster.
   */
  const initdbArgs = (): string[] => {
    const chosen = (re: RegExp) => cfg.initdbArgs.some((a) => re.test(a));
    return [
      ...(chosen(/^(--locale|--lc-|-l)/) ? [] : ['--locale=C.UTF-8']),
      ...(chosen(/^(--encoding|-E)/) ? [] : ['--encoding=UTF8']),
      ...cfg.initdbArgs,
    ];
  };

  const defaultDataDir = cfg.dataDir === null || cfg.dataDir === `/var/lib/postgresql/${majorOf(cfg)}`;

  /** preStart: refuse another major's cluster, else make the cluster on first start, then link the configuration. */
  const preStart = (): string =>
    [
      locate(),
      'if [ -e "$PGDATA/PG_VERSION" ]; then',
      '  have=$(cat "$PGDATA/PG_VERSION")',
      '  if [ "$have" != "$major" ]; then',
      '    echo "postgresql: $PGDATA holds a PostgreSQL $have cluster, but the server is PostgreSQL $major; it is left as it is." >&2',
      '    echo "To upgrade, run the old and new servers\' pg_upgrade (/usr/lib/postgresql/$major/bin/pg_upgrade -b /usr/lib/postgresql/$have/bin -B /usr/lib/postgresql/$major/bin -d OLD -D NEW) or pg_dumpall into a new cluster, then point services.postgresql.dataDir at it; or keep services.postgresql.package = \\"postgresql-$have\\"." >&2',
      '    exit 1',
      '  fi',
      'else',
      ...(defaultDataDir
        ? [
            // The default folder follows the major version: an older cluster beside it means an upgrade, not a new start.
            '  for old in /var/lib/postgresql/*/PG_VERSION; do',
            '    [ -e "$old" ] || continue',
            '    [ "$(dirname "$old")" = "$PGDATA" ] && continue',
            '    echo "postgresql: no cluster in $PGDATA for PostgreSQL $major, but $(dirname "$old") holds a PostgreSQL $(cat "$old") cluster; nothing is created or changed." >&2',
            '    echo "To upgrade it, use pg_upgrade (/usr/lib/postgresql/$major/bin/pg_upgrade -b /usr/lib/postgresql/$(cat "$old")/bin -B $bin -d $(dirname "$old") -D $PGDATA, after initdb of $PGDATA) or pg_dumpall; to keep using it, set services.postgresql.package = \\"postgresql-$(cat "$old")\\"; to start afresh, remove $(dirname "$old")." >&2',
            '    exit 1',
            '  done',
          ]
        : []),
      '  mkdir -p -m 0700 "$PGDATA"',
      '  rm -f "$PGDATA"/*.conf',
      `  "$bin/initdb" -U postgres ${initdbArgs().map(lib.shellQuote).join(' ')}`,
      '  touch "$PGDATA/.first_startup"',
      'fi',
      `ln -sfn /etc/${ETC}/postgresql.conf "$PGDATA/postgresql.conf"`,
    ].join('\n');

  /** A shell line that runs one SQL command as the superuser, output unaligned. */
  const psql = (sql: string): string => `"$bin/psql" --port=${cfg.settings.port} -d postgres -v ON_ERROR_STOP=1 -tAc ${lib.shellQuote(sql)}`;

  /** postStart: wait for connections, run the initial script once, then ensure databases and users. */
  const postStart = (): string => {
    const lines = [
      locate(),
      `while ! "$bin/psql" --port=${cfg.settings.port} -d postgres -c '' 2>/dev/null; do`,
      '  kill -0 "$MAINPID" || exit 1',
      '  sleep 0.1',
      'done',
      'if [ -e "$PGDATA/.first_startup" ]; then',
      ...(cfg.initialScript !== null ? [`  "$bin/psql" --port=${cfg.settings.port} -d postgres -v ON_ERROR_STOP=1 -f ${lib.shellQuote(cfg.initialScript)}`] : []),
      '  rm -f "$PGDATA/.first_startup"',
      'fi',
    ];
    for (const db of cfg.ensureDatabases) {
      lines.push(`[ "$(${psql(`SELECT 1 FROM pg_database WHERE datname = ${sqlLiteral(db)}`)})" = 1 ] || ${psql(`CREATE DATABASE ${sqlIdent(db)}`)}`);
    }
    for (const u of cfg.ensureUsers) {
      lines.push(`[ "$(${psql(`SELECT 1 FROM pg_roles WHERE rolname = ${sqlLiteral(u.name)}`)})" = 1 ] || ${psql(`CREATE USER ${sqlIdent(u.name)}`)}`);
      const clauses = Object.entries(u.ensureClauses)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => `${v ? '' : 'NO'}${k.toUpperCase()}`);
      if (clauses.length) lines.push(psql(`ALTER ROLE ${sqlIdent(u.name)} ${clauses.join(' ')}`));
      if (u.ensureDBOwnership) lines.push(psql(`ALTER DATABASE ${sqlIdent(u.name)} OWNER TO ${sqlIdent(u.name)}`));
    }
    return lines.join('\n');
  };

  const clause = (what: string) =>
    mkOption({ type: types.nullOr(types.bool), default: null, description: `Whether the role has ${what} (\`ALTER ROLE … ${what.toUpperCase()}\`/\`NO${what.toUpperCase()}\`); null leaves it as it is.` });
  const ensureUser = types.submodule({
    options: {
      name: mkOption({ type: sqlName, description: 'Name of the role (a login role, `CREATE USER`).' }),
      ensureDBOwnership: mkOption({ type: types.bool, default: false, description: 'Whether the role owns the database of the same name, which must be in `ensureDatabases`.' }),
      ensureClauses: mkOption({
        type: types.submodule({
          options: {
            superuser: clause('superuser'),
            createrole: clause('createrole'),
            createdb: clause('createdb'),
            inherit: clause('inherit'),
            login: clause('login'),
            replication: clause('replication'),
            bypassrls: clause('bypassrls'),
          },
        }),
        default: {},
        example: { superuser: true, createdb: true },
        description: 'Role attributes set at every start (`ALTER ROLE name …`): true sets one, false removes it, null leaves it as it is.',
      }),
    },
  });

  const settings = types.submodule({
    freeformType: fmt.type,
    options: {
      port: mkOption({ type: types.port, default: 5432, description: 'The port the server listens on (also the number of its unix socket, `.s.PGSQL.<port>`).' }),
      log_line_prefix: mkOption({ type: types.singleLineStr, default: '[%p] ', description: "Prefix of log lines; no time stamp, since the journal has one (PostgreSQL's default is `%m [%p] `)." }),
      shared_preload_libraries: mkOption({
        type: types.nullOr(types.either(types.listOf(types.strMatching('[A-Za-z0-9_.$/-]+')), types.singleLineStr)),
        default: null,
        example: ['pg_stat_statements'],
        apply: (v: unknown) => (Array.isArray(v) ? v.join(',') : v),
        description: 'Libraries loaded at server start (a list, or a comma-separated string).',
      }),
    },
  });

  const confText = (): string => fmt.generate('services.postgresql.settings', cfg.settings);
  const restartValues = (): unknown[] => {
    const s = cfg.settings as Record<string, unknown>;
    return [String(cfg.package), cfg.dataDir, ...RESTART_SETTINGS.map((k) => s[k] ?? null)];
  };

  return {
    imports: [
      lib.mkRenamedOptionModule(['services', 'postgresql', 'extraPlugins'], ['services', 'postgresql', 'extensions']),
      lib.mkRemovedOptionModule(['services', 'postgresql', 'extraConfig'], 'Use services.postgresql.settings instead.'),
    ],
    options: {
      services: {
        postgresql: {
          enable: lib.mkEnableOption('the PostgreSQL server'),
          package: mkOption({
            type: types.package,
            default: pkgs.postgresql,
            example: 'postgresql-15',
            description:
              "Debian's server package: `postgresql` (the release's default major version: 15 on Debian 12, 17 on Debian 13) or a versioned one (`postgresql-15`). " +
              "Unlike NixOS, whose default follows `system.stateVersion`, the metapackage's major changes with the Debian release; the service then refuses to start on the older cluster, saying how to upgrade. Pin a versioned package to stay on one major.",
          }),
          dataDir: mkOption({
            type: types.nullOr(folder),
            get default() {
              const major = majorOf(cfg);
              return major === null ? null : `/var/lib/postgresql/${major}`;
            },
            defaultText: '"/var/lib/postgresql/<major>"',
            example: '/var/lib/postgresql/15',
            description:
              'The data directory (the cluster). Default `/var/lib/postgresql/<major>`; null when the major is only known on the machine (the `postgresql` metapackage), where the start script finds it. Made at the first start, mode 0700, owned by postgres.',
          }),
          // NixOS's older name, renamed to settings.port. Declared here: a renamed option cannot lead
          // into a submodule (settings) with mkRenamedOptionModule.
          port: mkOption({ type: types.nullOr(types.port), default: null, visible: false, description: 'Alias of `services.postgresql.settings.port` (renamed, as in NixOS).' }),
          enableTCPIP: mkOption({ type: types.bool, default: false, description: 'Whether the server listens on all interfaces (`listen_addresses = \'*\'`); otherwise on localhost and its unix socket only.' }),
          checkConfig: mkOption({
            type: types.bool,
            default: true,
            description:
              "NixOS's build-time check of postgresql.conf (`postgres -C`), accepted but not run: postgres must find its own executable on PATH, which `cairn build`'s check runner does not give it. Parameter names and values are still checked by the type of `settings`.",
          }),
          settings: mkOption({
            type: settings,
            default: {},
            example: { log_connections: true, shared_buffers: '512MB', log_destination: 'syslog' },
            description:
              "postgresql.conf, by parameter: booleans become on/off, strings are single-quoted (quotes doubled). A change of a setting read only at start (`port`, `shared_buffers`, …) restarts the server on switch; any other change reloads it (SIGHUP), keeping its connections.",
          }),
          authentication: mkOption({
            type: types.lines,
            default: '',
            example: 'host all all 10.0.0.0/8 scram-sha-256',
            description:
              'pg_hba.conf lines, placed before the defaults: peer authentication on the unix socket (the `postgres` role only for the postgres account, through the map `postgres`), md5 (which also accepts SCRAM passwords) over TCP from 127.0.0.1 and ::1. `mkForce` replaces the defaults.',
          }),
          identMap: mkOption({
            type: types.lines,
            default: '',
            example: 'postgres root postgres',
            description: 'pg_ident.conf lines (`map system-user database-user`). The map `postgres` lets the postgres account in as the `postgres` role; add `postgres root postgres` to let root in too.',
          }),
          initdbArgs: mkOption({ type: types.listOf(types.singleLineStr), default: [], example: ['--data-checksums'], description: 'More arguments of `initdb` when the cluster is made. Without a `--locale`/`--encoding` of their own, the cluster is UTF-8 with the C.UTF-8 locale (the unit has no LANG).' }),
          initialScript: mkOption({
            type: types.nullOr(types.path),
            default: null,
            description: 'A file of SQL run once, as the superuser, after the cluster is made. It is read on the machine: a file holding passwords belongs outside the store.',
          }),
          ensureDatabases: mkOption({ type: types.listOf(sqlName), default: [], example: ['gitea', 'nextcloud'], description: 'Databases created at every start when missing (never dropped).' }),
          ensureUsers: mkOption({ type: types.listOf(ensureUser), default: [], description: 'Login roles created at every start when missing (never dropped). They log in by peer authentication as the account of the same name, or with a password set by hand.' }),
          extensions: mkOption({
            type: types.listOf(types.package),
            default: [],
            example: ['postgresql-15-postgis-3'],
            description: "Debian packages of extensions (built for the server's major version), installed with the server.",
          }),
          superUser: mkOption({ type: types.str, default: 'postgres', readOnly: true, internal: true, description: 'The superuser role and account.' }),
        },
      },
    },
    config: mkIf(cfg.enable, mkMerge([
      {
        services: {
          postgresql: {
            settings: {
              port: mkIf(cfg.port !== null, cfg.port as number),
              hba_file: `/etc/${ETC}/pg_hba.conf`,
              ident_file: `/etc/${ETC}/pg_ident.conf`,
              log_destination: mkDefault('stderr'),
              get listen_addresses() {
                return cfg.enableTCPIP ? '*' : 'localhost';
              },
            },
            authentication: mkMerge([
              mkBefore('# Generated by cairn from services.postgresql.authentication.'),
              mkAfter(
                [
                  '# default value of services.postgresql.authentication',
                  'local all postgres         peer map=postgres',
                  'local all all              peer',
                  'host  all all 127.0.0.1/32 md5',
                  'host  all all ::1/128      md5',
                  '',
                ].join('\n'),
              ),
            ]),
            // Peer authentication as oneself, which a map otherwise leaves out.
            identMap: mkAfter('postgres postgres postgres\n'),
          },
        },
        users: {
          users: {
            postgres: {
              isSystemUser: true,
              group: 'postgres',
              description: 'PostgreSQL server',
              get home() {
                return cfg.dataDir ?? '/var/lib/postgresql';
              },
              shell: '/bin/bash',
            },
          },
          groups: { postgres: {} },
        },
        environment: {
          get systemPackages() {
            return [cfg.package, ...cfg.extensions];
          },
          etc: {
            [`${ETC}/postgresql.conf`]: { get text() { return confText(); } },
            [`${ETC}/pg_hba.conf`]: { get text() { return cfg.authentication; } },
            [`${ETC}/pg_ident.conf`]: { get text() { return cfg.identMap; } },
          },
        },
        systemd: {
          // A data directory of one's own: made for the account (the default one is the state folder's).
          tmpfiles: { get rules() { return defaultDataDir ? [] : [`d ${cfg.dataDir!} 0700 postgres postgres -`]; } },
          services: {
            postgresql: {
              description: 'PostgreSQL Server',
              wantedBy: ['multi-user.target'],
              after: ['network.target'],
              get restartTriggers() {
                return restartValues();
              },
              // Everything else in the files takes effect on SIGHUP: a switch then reloads.
              get reloadTriggers() {
                return [confText(), cfg.authentication, cfg.identMap];
              },
              get preStart() {
                return preStart();
              },
              get script() {
                return `${locate()}\nexec "$bin/postgres"`;
              },
              get postStart() {
                return postStart();
              },
              unitConfig: { get RequiresMountsFor() { return cfg.dataDir ?? '/var/lib/postgresql'; } },
              serviceConfig: {
                Type: 'notify',
                User: 'postgres',
                Group: 'postgres',
                StateDirectory: 'postgresql',
                StateDirectoryMode: '0750',
                RuntimeDirectory: 'postgresql',
                RuntimeDirectoryMode: '0755',
                ExecReload: '/bin/kill -HUP $MAINPID',
                // Fast shutdown (SIGINT): clients are disconnected, transactions rolled back.
                KillSignal: 'SIGINT',
                KillMode: 'mixed',
                // initdb at the first start and recovery after a crash take what they take (minutes on
                // a slow or emulated machine); the server itself says when it is ready (notify).
                TimeoutStartSec: 'infinity',
                TimeoutStopSec: 120,
                UMask: '0027',
                PrivateTmp: true,
                ProtectHome: true,
                NoNewPrivileges: true,
              },
            },
          },
        },
        get warnings() {
          return cfg.port !== null ? ["The option `services.postgresql.port' has been renamed to `services.postgresql.settings.port'."] : [];
        },
        get assertions() {
          return [
            {
              assertion: /^postgresql(-\d+)?$/.test(String(cfg.package)),
              message: `services.postgresql.package: ${String(cfg.package)} is not a Debian PostgreSQL server package (postgresql, or postgresql-<major> such as postgresql-15).`,
            },
            ...cfg.ensureUsers
              .filter((u) => u.ensureDBOwnership && !cfg.ensureDatabases.includes(u.name))
              .map((u) => ({
                assertion: false,
                message: `services.postgresql.ensureUsers: ${JSON.stringify(u.name)} has ensureDBOwnership, but no database of that name is in services.postgresql.ensureDatabases.`,
              })),
          ];
        },
      },
    ])),
  };
};
