import type { ModuleArgs } from '../config.js';

/** What each compression writes: the command reading the dump on stdin, and the file suffix. */
const COMPRESSORS = {
  none: { suffix: '', command: (_level: number) => 'cat' },
  gzip: { suffix: '.gz', command: (level: number) => `gzip -c -${level} --rsyncable` },
  zstd: { suffix: '.zstd', command: (level: number) => `zstd -q -c -${level} --rsyncable` },
} as const;

/**
 * `services.postgresqlBackup`: dumps of the local PostgreSQL server by a timer, NixOS's options.
 * One oneshot service: `postgresqlBackup` (everything, `pg_dumpall`) or `postgresqlBackup-<db>`
 * per database (`pg_dump`), run as postgres. A dump is written under a temporary name and renamed
 * when complete, so `<location>/<db>.sql.gz` is always a whole dump; the one before is `.prev`.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.services.postgresqlBackup;
  const pg = config.services.postgresql;
  // A folder that is also a tmpfiles path (no quotes, `%`, spaces).
  const folder = types.strMatching('/[^\\s"\'\\\\%\\x00-\\x1f\\x7f]*');
  // A database name that is also part of a file and a unit name.
  const dbName = types.strMatching('[A-Za-z0-9_][A-Za-z0-9_.-]*');

  /** The client programs of the server's major version (pg_dump must not be older than the server). */
  const locate = (): string => {
    const major = /^postgresql-(\d+)$/.exec(String(pg.package))?.[1] ?? null;
    return [
      major !== null ? `major=${major}` : 'major=$(for p in /usr/lib/postgresql/*/bin/pg_dump; do [ -x "$p" ] && basename "$(dirname "$(dirname "$p")")"; done | sort -n | tail -n 1)',
      'bin=/usr/lib/postgresql/$major/bin',
    ].join('\n');
  };

  const service = (db: string, dump: string) => {
    const c = COMPRESSORS[cfg.compression];
    const file = (infix: string, suffix: string = c.suffix) => lib.shellQuote(`${cfg.location}/${db}${infix}.sql${suffix}`);
    const prevs = Object.values(COMPRESSORS).map((x) => file('.prev', x.suffix));
    return {
      description: `Backup of ${db === 'all' ? 'all PostgreSQL databases' : `the PostgreSQL database ${db}`}`,
      requires: ['postgresql.service'],
      after: ['postgresql.service'],
      environment: { PGPORT: String(pg.settings.port) },
      script: [
        'set -o pipefail',
        // Only postgres may read a dump.
        'umask 0077',
        locate(),
        `if [ -e ${file('')} ]; then`,
        `  rm -f ${prevs.join(' ')}`,
        `  mv ${file('')} ${file('.prev')}`,
        'fi',
        `${dump} | ${c.command(cfg.compressionLevel)} > ${file('.in-progress')}`,
        `mv ${file('.in-progress')} ${file('')}`,
      ].join('\n'),
      serviceConfig: { Type: 'oneshot', User: 'postgres' },
      startAt: cfg.startAt,
    };
  };

  return {
    imports: [lib.mkRemovedOptionModule(['services', 'postgresqlBackup', 'period'], 'A systemd timer is used instead of cron: set services.postgresqlBackup.startAt.')],
    options: {
      services: {
        postgresqlBackup: {
          enable: lib.mkEnableOption('PostgreSQL dumps'),
          startAt: mkOption({
            type: types.either(types.singleLineStr, types.listOf(types.singleLineStr)),
            default: '*-*-* 01:15:00',
            description: 'When the dumps are made (`OnCalendar=` expressions, systemd.time(7)); daily at 01:15 by default.',
          }),
          backupAll: mkOption({
            type: types.bool,
            get default() {
              return cfg.databases.length === 0;
            },
            defaultText: 'services.postgresqlBackup.databases == []',
            description: 'Whether to dump everything (roles and all databases) with `pg_dumpall` into `all.sql…`; the default when `databases` is empty. Excludes `databases`.',
          }),
          databases: mkOption({ type: types.listOf(dbName), default: [], description: 'Databases to dump, each with `pg_dump` into `<name>.sql…` by its unit `postgresqlBackup-<name>`.' }),
          location: mkOption({ type: folder, default: '/var/backup/postgresql', description: 'Folder of the dumps (mode 0700, owned by postgres).' }),
          pgdumpOptions: mkOption({
            type: types.strMatching('[^\\x00-\\x1f\\x7f]*'),
            default: '-C',
            description: 'Options of `pg_dump` (not of `pg_dumpall`), separated by spaces: each word is passed as one argument, so a word cannot hold a space or be shell syntax.',
          }),
          compression: mkOption({ type: types.enum(['none', 'gzip', 'zstd']), default: 'gzip', description: "How dumps are compressed (`zstd` installs Debian's zstd)." }),
          compressionLevel: mkOption({ type: types.ints.between(1, 19), default: 6, description: 'The compression level: 1 to 9 for gzip, 1 to 19 for zstd.' }),
        },
      },
    },
    config: mkMerge([
      {
        assertions: [
          {
            get assertion() {
              return !(cfg.backupAll && cfg.databases.length > 0);
            },
            message: 'services.postgresqlBackup.backupAll cannot be used together with services.postgresqlBackup.databases.',
          },
          {
            get assertion() {
              return cfg.compression !== 'gzip' || cfg.compressionLevel <= 9;
            },
            get message() {
              return `services.postgresqlBackup.compressionLevel: gzip takes levels 1 to 9, not ${cfg.compressionLevel}.`;
            },
          },
        ],
      },
      mkIf(cfg.enable, {
        environment: { systemPackages: mkIf(cfg.compression === 'zstd', ['zstd']) },
        systemd: {
          tmpfiles: { rules: [`d ${cfg.location} 0700 postgres - - -`] },
          get services() {
            if (cfg.backupAll) return { postgresqlBackup: service('all', '"$bin/pg_dumpall"') };
            const words = cfg.pgdumpOptions.split(/\s+/).filter(Boolean).map(lib.shellQuote);
            return Object.fromEntries(cfg.databases.map((db) => [`postgresqlBackup-${db}`, service(db, ['"$bin/pg_dump"', ...words, lib.shellQuote(db)].join(' '))]));
          },
        },
      }),
    ]),
  };
};
