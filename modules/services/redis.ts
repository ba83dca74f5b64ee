import type { Config, ModuleArgs } from '../config.js';

type Server = Config['services']['redis']['servers'][string];

/** The unit, account and folder name of a server: `redis` for the server named "", else `redis-<name>` (NixOS's). */
const redisName = (name: string): string => (name === '' ? 'redis' : `redis-${name}`);

/** Where cairn writes each server's settings (`/etc/cairn/redis/<unit>.conf`). */
const confPath = (name: string): string => `/etc/cairn/redis/${redisName(name)}.conf`;

/**
 * `services.redis.servers.<name>`: Redis servers, NixOS's options, on Debian's redis-server.
 * Unit `redis` (the server "") or `redis-<name>`, its account of the same name, data in
 * /var/lib/<unit>, socket in /run/<unit>. The settings are /etc/cairn/redis/<unit>.conf; the server
 * reads /var/lib/<unit>/redis.conf (kept for `CONFIG REWRITE`), which includes /run/<unit>/cairn.conf,
 * written at each start: it includes the settings and adds the password read from
 * `requirePassFile`, so the password is never in the store.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.services.redis;
  const fmt = lib.formats.keyValue({ separator: ' ', listsAsDuplicateKeys: true, mkValueString: (v) => (v === true ? 'yes' : v === false ? 'no' : String(v)) });
  // An absolute file outside the store, on one line (it is read by the start script).
  const file = types.strMatching('/[^\\x00-\\x1f\\x7f]*');
  const enabled = (): [string, Server][] => Object.entries(cfg.servers).filter(([, s]) => s.enable);

  const server = types.submodule(({ name, config: s }: ModuleArgs & { config: Server }) => ({
    options: {
      enable: lib.mkEnableOption('this Redis server'),
      user: mkOption({ type: types.accountName, default: redisName(name), defaultText: 'if name == "" then "redis" else "redis-${name}"', description: 'The account the server runs as; the default one is created.' }),
      group: mkOption({
        type: types.accountName,
        get default() {
          return s.user;
        },
        defaultText: 'config.user',
        description: 'The group the server runs as; the default one is created.',
      }),
      port: mkOption({ type: types.port, default: name === '' ? 6379 : 0, defaultText: 'if name == "" then 6379 else 0', description: 'The TCP port; 0: no TCP, the unix socket only.' }),
      openFirewall: mkOption({ type: types.bool, default: false, description: 'Whether the port is opened in the firewall.' }),
      extraParams: mkOption({
        // Each becomes one quoted word of ExecStart=: no quotes or backslashes (systemd quotes whole words only), no `%` or `$` (systemd would expand them).
        type: types.listOf(types.strMatching('[^%$\'"\\\\\\x00-\\x1f\\x7f]*')),
        default: [],
        example: ['--sentinel'],
        description: 'More arguments of redis-server, each one argument (without quotes, backslashes, `%` or `$`).',
      }),
      bind: mkOption({ type: types.nullOr(types.strMatching('[^\\s\\x00-\\x1f\\x7f"\'\\\\]+( [^\\s\\x00-\\x1f\\x7f"\'\\\\]+)*')), default: '127.0.0.1', example: '192.0.2.1', description: 'The addresses to listen on, separated by spaces; null: all interfaces.' }),
      unixSocket: mkOption({
        type: types.nullOr(types.strMatching('/[^\\s\\x00-\\x1f\\x7f"\'\\\\]*')),
        default: `/run/${redisName(name)}/redis.sock`,
        defaultText: 'if name == "" then "/run/redis/redis.sock" else "/run/redis-${name}/redis.sock"',
        description: 'The unix socket to listen on; null: none.',
      }),
      unixSocketPerm: mkOption({ type: types.int, default: 660, example: 600, description: 'Permissions of the socket (octal digits, as written).' }),
      logLevel: mkOption({ type: types.enum(['debug', 'verbose', 'notice', 'warning', 'nothing']), default: 'notice', description: 'How much the server logs.' }),
      logfile: mkOption({ type: types.singleLineStr, default: '/dev/null', example: '/var/log/redis.log', description: "The log file; `stdout` for the journal (syslog is on by default)." }),
      syslog: mkOption({ type: types.bool, default: true, description: 'Whether the server logs to syslog (the journal).' }),
      databases: mkOption({ type: types.int, default: 16, description: 'Number of databases.' }),
      maxclients: mkOption({ type: types.int, default: 10000, description: 'Most clients connected at once.' }),
      save: mkOption({
        type: types.listOf(types.listOf(types.int)),
        default: [[900, 1], [300, 10], [60, 10000]],
        description: 'When the data is written to disk: `[seconds changes]` pairs (after that many seconds when at least that many keys changed). Empty: no RDB snapshots.',
      }),
      slaveOf: mkOption({
        type: types.nullOr(
          types.submodule({
            options: {
              ip: mkOption({ type: types.strMatching('[^\\s\\x00-\\x1f\\x7f"\'\\\\]+'), description: 'Address of the master.' }),
              port: mkOption({ type: types.port, default: 6379, description: 'Port of the master.' }),
            },
          }),
        ),
        default: null,
        example: { ip: '192.168.1.100', port: 6379 },
        description: 'The master this server replicates.',
      }),
      masterAuth: mkOption({ type: types.nullOr(types.str), default: null, description: 'Refused: the password would be in the world-readable store (NixOS writes it there). Put `masterauth` in a file of your own outside the store and name it in `settings.include`.' }),
      requirePass: mkOption({ type: types.nullOr(types.str), default: null, description: 'Refused: the password would be in the world-readable store (NixOS writes it there); use `requirePassFile`.' }),
      requirePassFile: mkOption({
        type: types.nullOr(file),
        default: null,
        example: '/run/secrets/redis-password',
        description: 'A file (outside the store) whose first line is the password clients must give (`requirepass`), read by root at each start.',
      }),
      appendOnly: mkOption({ type: types.bool, default: false, description: 'Whether every write is logged to an append-only file (better durability than periodic snapshots).' }),
      appendFsync: mkOption({ type: types.enum(['no', 'always', 'everysec']), default: 'everysec', description: 'How often the append-only file is synced to disk.' }),
      slowLogLogSlowerThan: mkOption({ type: types.int, default: 10000, description: 'Queries slower than this many microseconds are logged in the slow log.' }),
      slowLogMaxLen: mkOption({ type: types.int, default: 128, description: 'Most entries of the slow log.' }),
      settings: mkOption({
        type: fmt.type,
        default: {},
        example: { 'maxmemory-policy': 'allkeys-lru', loadmodule: ['/path/to/my_module.so'] },
        description: 'redis.conf directives, by name: a list repeats the directive, booleans are yes/no, and a value with spaces is several arguments (as in redis.conf).',
      }),
    },
    config: {
      settings: {
        port: s.port,
        logfile: s.logfile,
        databases: s.databases,
        maxclients: s.maxclients,
        appendonly: s.appendOnly,
        daemonize: false,
        supervised: 'systemd',
        loglevel: s.logLevel,
        'syslog-enabled': s.syslog,
        get save() {
          return s.save.length === 0 ? '""' : s.save.map((p) => p.join(' '));
        },
        dbfilename: 'dump.rdb',
        dir: `/var/lib/${redisName(name)}`,
        appendfsync: s.appendFsync,
        'slowlog-log-slower-than': s.slowLogLogSlowerThan,
        'slowlog-max-len': s.slowLogMaxLen,
        bind: mkIf(s.bind !== null, s.bind as string),
        unixsocket: mkIf(s.unixSocket !== null, s.unixSocket as string),
        unixsocketperm: mkIf(s.unixSocket !== null, String(s.unixSocketPerm)),
        slaveof: mkIf(s.slaveOf !== null, `${s.slaveOf?.ip} ${s.slaveOf?.port}`),
      },
    },
  }));

  /** The start script (run as root): the included file with the password, and the server's own config file. */
  const prepare = (name: string, s: Server): string => {
    const unit = redisName(name);
    const varConf = `/var/lib/${unit}/redis.conf`;
    const runConf = `/run/${unit}/cairn.conf`;
    return [
      '#!/bin/bash',
      lib.shellComment(`${unit}.service: prepares the configuration, generated by cairn from services.redis.servers."${name}".`),
      'set -e',
      `touch ${varConf} ${runConf}`,
      `chown ${lib.shellQuote(s.user)}:${lib.shellQuote(s.group)} ${varConf} ${runConf}`,
      `chmod 0600 ${varConf} ${runConf}`,
      `[ -s ${varConf} ] || echo 'include "${runConf}"' > ${varConf}`,
      `echo 'include "${confPath(name)}"' > ${runConf}`,
      ...(s.requirePassFile !== null
        ? [
            `pass=; IFS= read -r pass < ${lib.shellQuote(s.requirePassFile)} || true`,
            `[ -n "$pass" ] || { echo ${lib.shellQuote(`${unit}: ${s.requirePassFile} holds no password`)} >&2; exit 1; }`,
            // A double-quoted redis.conf word: backslashes and quotes escaped.
            String.raw`pass=$(printf '%s' "$pass" | sed 's/[\\"]/\\&/g')`,
            `printf 'requirepass "%s"\\n' "$pass" >> ${runConf}`,
          ]
        : []),
      '',
    ].join('\n');
  };

  const storeDir = '/cairn/store/';

  return {
    options: {
      services: {
        redis: {
          package: lib.mkPackageOption('redis-server', { default: 'redis-server' }),
          vmOverCommit: mkOption({ type: types.bool, default: true, description: 'Whether to set `vm.overcommit_memory` to 1, which Redis wants for background saves.' }),
          servers: mkOption({ type: types.attrsNamed(types.strMatching('([A-Za-z0-9_][A-Za-z0-9_.-]*)?'), server), default: {}, description: 'Redis servers, by name (`""`: the unit `redis`).' }),
        },
      },
    },
    config: mkIf(() => enabled().length > 0, {
      boot: { kernel: { sysctl: mkIf(cfg.vmOverCommit, { 'vm.overcommit_memory': 1 }) } },
      environment: {
        get systemPackages() {
          return [cfg.package];
        },
        get etc() {
          return Object.fromEntries(
            enabled().flatMap(([n, s]) => {
              const script = prepare(n, s);
              return [
                [confPath(n).slice('/etc/'.length), { text: fmt.generate(`services.redis.servers."${n}".settings`, s.settings) }],
                [lib.systemd.scriptPath(redisName(n), 'prepare', script).slice('/etc/'.length), { text: script, mode: '0755' }],
              ];
            }),
          );
        },
      },
      networking: {
        firewall: {
          get allowedTCPPorts() {
            return enabled().filter(([, s]) => s.openFirewall && s.port !== 0).map(([, s]) => s.port);
          },
        },
      },
      users: {
        get users() {
          return Object.fromEntries(enabled().filter(([n, s]) => s.user === redisName(n)).map(([n, s]) => [s.user, { isSystemUser: true, group: s.group, home: `/var/lib/${redisName(n)}`, description: `Redis server ${redisName(n)}` }]));
        },
        get groups() {
          return Object.fromEntries(enabled().filter(([n, s]) => s.group === redisName(n)).map(([, s]) => [s.group, {}]));
        },
      },
      systemd: {
        get services() {
          return Object.fromEntries(
            enabled().map(([n, s]) => {
              const unit = redisName(n);
              const script = prepare(n, s);
              return [
                unit,
                {
                  description: `Redis Server - ${unit}`,
                  wantedBy: ['multi-user.target'],
                  after: ['network.target'],
                  // Redis reads its files only at start: a change restarts it.
                  restartTriggers: [fmt.generate(`services.redis.servers."${n}".settings`, s.settings)],
                  serviceConfig: {
                    ExecStartPre: `+${lib.systemd.scriptPath(unit, 'prepare', script)}`,
                    ExecStart: [`/usr/bin/redis-server /var/lib/${unit}/redis.conf`, ...s.extraParams.map(lib.shellQuote)].join(' '),
                    Type: 'notify',
                    User: s.user,
                    Group: s.group,
                    RuntimeDirectory: unit,
                    RuntimeDirectoryMode: '0750',
                    StateDirectory: unit,
                    StateDirectoryMode: '0700',
                    UMask: '0077',
                    CapabilityBoundingSet: '',
                    NoNewPrivileges: true,
                    LimitNOFILE: s.maxclients + 32,
                    ProtectSystem: 'strict',
                    ProtectHome: true,
                    PrivateTmp: true,
                    PrivateDevices: true,
                    RestrictAddressFamilies: ['AF_INET', 'AF_INET6', 'AF_UNIX'],
                  },
                },
              ];
            }),
          );
        },
      },
      get assertions() {
        return enabled().flatMap(([n, s]) => {
          const at = `services.redis.servers.${JSON.stringify(n)}`;
          return [
            { assertion: s.requirePass === null, message: `${at}.requirePass: the password would be in the world-readable store; put it in a file outside it and set requirePassFile.` },
            { assertion: s.masterAuth === null, message: `${at}.masterAuth: the password would be in the world-readable store; put \`masterauth\` in a file of your own outside it and name that file in settings.include.` },
            {
              assertion: s.requirePassFile === null || !s.requirePassFile.startsWith(storeDir),
              message: `${at}.requirePassFile: ${s.requirePassFile} is in the world-readable store; a password belongs in a file outside it (e.g. /run/secrets/<name>).`,
            },
            { assertion: s.port !== 0 || s.unixSocket !== null, message: `${at}: with port = 0 and unixSocket = null the server could not be reached.` },
          ];
        });
      },
    }),
  };
};
