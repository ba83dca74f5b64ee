import type { ModuleArgs } from '../config.js';

/**
 * `security.sudo`: sudo, and /etc/sudoers generated whole (mode 0440, as sudo insists). Members
 * of `wheel` may run anything, with their password unless `wheelNeedsPassword` is off.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.security.sudo;
  const name = '(?:[A-Za-z_][A-Za-z0-9_.-]*\\$?)';
  const OPTIONS = ['NOPASSWD', 'PASSWD', 'NOEXEC', 'EXEC', 'SETENV', 'NOSETENV', 'LOG_INPUT', 'NOLOG_INPUT', 'LOG_OUTPUT', 'NOLOG_OUTPUT', 'MAIL', 'NOMAIL', 'FOLLOW', 'NOFOLLOW', 'INTERCEPT', 'NOINTERCEPT'];
  // A command: a path and its arguments, or ALL; no control characters and no `#` (a comment to sudoers).
  const commandText = types.strMatching('[^\\x00-\\x1f\\x7f#]+');
  const rule = types.submodule({
    options: {
      users: mkOption({ type: types.listOf(types.either(types.ints.unsigned, types.accountName)), default: [], description: 'The user names (or uids) the rule applies to.' }),
      groups: mkOption({ type: types.listOf(types.either(types.ints.unsigned, types.accountName)), default: [], description: 'The groups (or gids) the rule applies to.' }),
      host: mkOption({ type: types.strMatching(`ALL|[A-Za-z0-9][A-Za-z0-9.-]*`), default: 'ALL', description: 'The host the rule applies on.' }),
      runAs: mkOption({
        type: types.strMatching(`(ALL|${name}|#[0-9]+)?(:(ALL|${name}|#[0-9]+))?`),
        default: 'ALL:ALL',
        example: 'root',
        description: 'Who the commands may run as: `user:group`, `user` or `:group` (`ALL` for anyone).',
      }),
      commands: mkOption({
        type: types.listOf(
          types.either(
            commandText,
            types.submodule({
              options: {
                command: mkOption({ type: commandText, description: 'The command (a path, with arguments if they must match) or ALL.' }),
                options: mkOption({ type: types.listOf(types.enum(OPTIONS)), default: [], description: 'Tags of the command (`NOPASSWD`, `SETENV`, …).' }),
              },
            }),
          ),
        ),
        description: 'The commands: a text each, or `{ command, options }`.',
      }),
    },
  });
  /** A command as a sudoers word list: `\`, `,`, `:` and `=` are escaped (sudoers reads them as separators). */
  const escapeCommand = (c: string) => c.replace(/[\\,:=]/g, (x) => `\\${x}`);
  const renderRules = (): string =>
    cfg.extraRules
      .flatMap((r) => {
        const cmds = r.commands.map((c) => (typeof c === 'string' ? escapeCommand(c) : `${c.options.map((o) => `${o}:`).join('')}${c.options.length ? ' ' : ''}${escapeCommand(c.command)}`)).join(', ');
        const who = [...r.users.map((u) => (typeof u === 'number' ? `#${u}` : u)), ...r.groups.map((g) => (typeof g === 'number' ? `%#${g}` : `%${g}`))];
        return who.map((w) => `${w} ${r.host}=(${r.runAs}) ${cmds}`);
      })
      .join('\n');
  return {
    options: {
      security: {
        sudo: {
          enable: mkOption({ type: types.bool, default: true, description: 'Whether to install sudo and let the `wheel` group use it.' }),
          wheelNeedsPassword: mkOption({ type: types.bool, default: true, description: 'Whether members of `wheel` must type their password.' }),
          extraRules: mkOption({
            type: types.listOf(rule),
            default: [],
            example: [{ users: ['deploy'], runAs: 'root', commands: [{ command: '/usr/bin/systemctl restart nginx.service', options: ['NOPASSWD'] }] }],
            description:
              'sudoers rules, after the generated ones (later rules win): each gives `users` and `groups` the `commands` on `host` as ' +
              '`runAs`. Every field is checked or escaped, so a rule cannot break the file.',
          }),
          extraConfig: mkOption({ type: types.lines, default: '', example: 'Defaults timestamp_timeout=5', description: 'sudoers(5) lines added at the end, as written.' }),
          sudoersText: mkOption({
            type: types.str,
            readOnly: true,
            get default() {
              return lib.renderTemplate('security/sudo.sudoers', { nopasswd: !cfg.wheelNeedsPassword, extra: [renderRules(), cfg.extraConfig.replace(/\n+$/, '')].filter((t) => t !== '').join('\n') });
            },
            defaultText: 'rendered from the options above',
            description: 'The generated /etc/sudoers (read-only).',
          }),
        },
      },
    },
    config: mkIf(cfg.enable, {
      environment: {
        systemPackages: ['sudo'],
        etc: { sudoers: { get text() { return cfg.sudoersText; }, mode: '0440' } },
      },
      users: { groups: { wheel: {} } },
      system: {
        checks: {
          'security.sudo': {
            package: 'sudo',
            program: 'usr/sbin/visudo',
            args: ['-c', '-f', '@dir@/sudoers'],
            files: { get sudoers() { return cfg.sudoersText; } },
            options: ['security.sudo.extraRules', 'security.sudo.extraConfig'],
          },
        },
      },
    }),
  };
};
