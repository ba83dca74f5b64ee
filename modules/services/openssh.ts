import type { Config, ModuleArgs } from '../config.js';

type SettingValue = Config['services']['openssh']['settings'][string];

/** sshd_config's spelling of a value: yes/no for booleans, lists comma-separated. */
function sshdValue(v: Exclude<SettingValue, null>): string {
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}

/**
 * `services.openssh`: the OpenSSH server, key-only by default. What openssh-server's postinst
 * would do is declared here: the `sshd` privilege-separation user, /run/sshd (tmpfiles), and host
 * keys, generated into /etc/ssh (never in the store, which is world-readable) by sshd-keygen.service,
 * as NixOS does: a unit, not activation, so a first boot does not wait for them before systemd
 * starts (an RSA-4096 key takes seconds of one CPU, tens of seconds under emulation).
 * `users.users.<name>.openssh.authorizedKeys.keys` become /etc/ssh/authorized_keys.d/<name>.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.services.openssh;
  const settingValue = types.nullOr(types.oneOf([types.bool, types.int, types.singleLineStr, types.listOf(types.singleLineStr)]));
  // sshd_config keywords are letters and digits; anything else would start another line or directive.
  const keyword = types.strMatching('[A-Za-z][A-Za-z0-9]*');
  const settings = types.submodule({
    freeformType: types.attrsNamed(keyword, settingValue),
    options: {
      PermitRootLogin: mkOption({
        type: types.enum(['yes', 'prohibit-password', 'forced-commands-only', 'no']),
        default: 'prohibit-password',
        description: 'Whether root may log in: `prohibit-password` allows keys only.',
      }),
      PasswordAuthentication: mkOption({ type: types.bool, default: false, description: 'Whether passwords are accepted. Off: keys only.' }),
      KbdInteractiveAuthentication: mkOption({ type: types.bool, default: false, description: 'Whether keyboard-interactive (PAM challenge) logins are accepted. Off, since it is password login in another form.' }),
      X11Forwarding: mkOption({ type: types.bool, default: false, description: 'Whether X11 connections are forwarded.' }),
      UseDns: mkOption({ type: types.bool, default: false, description: 'Whether client addresses are looked up in DNS (slows logins when DNS is slow).' }),
      LogLevel: mkOption({ type: types.enum(['QUIET', 'FATAL', 'ERROR', 'INFO', 'VERBOSE', 'DEBUG', 'DEBUG1', 'DEBUG2', 'DEBUG3']), default: 'INFO', description: 'How much sshd logs.' }),
    },
  });
  const hostKey = types.submodule({
    options: {
      type: mkOption({ type: types.enum(['ed25519', 'rsa', 'ecdsa']), description: 'The key type.' }),
      path: mkOption({ type: types.path, description: 'Where the private key is (the public one beside it, with `.pub`).' }),
      bits: mkOption({ type: types.nullOr(types.ints.positive), default: null, description: 'The key size (RSA).' }),
    },
  });
  // Extends the user submodule of modules/users/users.ts.
  const userKeys = types.submodule({
    options: {
      openssh: {
        authorizedKeys: {
          keys: mkOption({
            type: types.listOf(types.strMatching('[^\\x00-\\x1f\\x7f]+')),
            default: [],
            example: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... alice@laptop'],
            description: 'Public keys that may log in as this user (written to /etc/ssh/authorized_keys.d/<name>).',
          }),
        },
      },
    },
  });

  /** Whether sshd-keygen.service exists (nothing to make without keys). */
  const keygen = () => cfg.generateHostKeys && cfg.hostKeys.length > 0;

  /** The text of /etc/ssh/sshd_config (with other host keys for the build-time check). */
  const sshdConfig = (hostKeys = cfg.hostKeys.map((k) => k.path)): string => {
    const entries = Object.entries(cfg.settings)
      .filter((e): e is [string, Exclude<SettingValue, null>] => e[1] !== null)
      .map(([key, v]) => ({ key, value: sshdValue(v) }));
    return lib.renderTemplate('services/openssh.sshd_config', {
      ports: cfg.ports,
      listen: cfg.listenAddresses,
      hostKeys,
      authorizedKeysFiles: cfg.authorizedKeysFiles.join(' '),
      sftp: cfg.allowSFTP ? [cfg.sftpServerExecutable, ...cfg.sftpFlags].join(' ') : null,
      settings: entries,
      extra: cfg.extraConfig.replace(/\n+$/, ''),
    });
  };

  return {
    options: {
      services: {
        openssh: {
          enable: lib.mkEnableOption('the OpenSSH server'),
          ports: mkOption({ type: types.listOf(types.port), default: [22], description: 'Ports sshd listens on.' }),
          listenAddresses: mkOption({ type: types.listOf(types.word), default: [], example: ['192.0.2.10', '[2001:db8::10]'], description: 'Addresses sshd listens on; all when empty.' }),
          openFirewall: mkOption({ type: types.bool, default: true, description: 'Whether the ports are opened in the firewall.' }),
          settings: mkOption({ type: settings, default: {}, description: 'sshd_config(5) settings; booleans become yes/no, lists are comma-separated, null leaves a setting out. Unlisted keys are allowed.' }),
          hostKeys: mkOption({
            type: types.listOf(hostKey),
            default: [
              { type: 'ed25519', path: '/etc/ssh/ssh_host_ed25519_key', bits: null },
              { type: 'rsa', path: '/etc/ssh/ssh_host_rsa_key', bits: 4096 },
            ],
            description: 'Host keys: generated by `sshd-keygen.service` when missing (with `generateHostKeys`), never stored in the store.',
          }),
          generateHostKeys: mkOption({
            type: types.bool,
            default: true,
            description: 'Whether `sshd-keygen.service` makes the missing or empty keys of `hostKeys` before sshd starts. Turn it off when the keys are provisioned otherwise.',
          }),
          authorizedKeysFiles: mkOption({
            type: types.listOf(types.word),
            default: ['%h/.ssh/authorized_keys', '/etc/ssh/authorized_keys.d/%u'],
            description: 'Where sshd looks for users\' keys (`AuthorizedKeysFile`); the second holds the declared keys.',
          }),
          extraConfig: mkOption({ type: types.lines, default: '', example: 'Match User deploy\n  ForceCommand /usr/local/bin/deploy', description: 'Lines appended to sshd_config (after the settings, so `Match` blocks work).' }),
          allowSFTP: mkOption({ type: types.bool, default: true, description: 'Whether to serve SFTP (the `sftp` subsystem).' }),
          sftpServerExecutable: mkOption({
            type: types.strMatching('internal-sftp|/[^\\s\\x00-\\x1f\\x7f]+'),
            default: 'internal-sftp',
            example: '/usr/lib/openssh/sftp-server',
            description: "The SFTP server: sshd's own (`internal-sftp`) or a program's path.",
          }),
          sftpFlags: mkOption({ type: types.listOf(types.singleLineStr), default: [], example: ['-f AUTHPRIV', '-l INFO'], description: 'Arguments of the SFTP server.' }),
          startWhenNeeded: mkOption({
            type: types.bool,
            default: false,
            description:
              'Whether systemd listens on the ports and starts an sshd per connection (`sshd.socket`, `sshd@.service` with `sshd -i`) ' +
              'instead of running sshd all the time. `listenAddresses` then names the addresses the socket listens on.',
          }),
          configText: mkOption({ type: types.str, readOnly: true, get default() { return sshdConfig(); }, defaultText: 'rendered from the options above', description: 'The generated /etc/ssh/sshd_config (read-only).' }),
        },
      },
      users: { users: mkOption({ type: types.attrsOf(userKeys) }) },
    },
    config: mkIf(cfg.enable, mkMerge([
      // A change of sshd_config restarts sshd (running sessions survive: KillMode=process).
      lib.systemd.configuredService('sshd', {
        packages: ['openssh-server'],
        configFile: 'ssh/sshd_config',
        text: () => cfg.configText,
        unit: {
          description: 'OpenSSH server',
          wantedBy: mkIf(() => !cfg.startWhenNeeded, ['multi-user.target']),
          after: ['network.target', 'auditd.service', 'sshd-keygen.service'],
          wants: mkIf(keygen, ['sshd-keygen.service']),
          stopIfChanged: false,
          serviceConfig: {
            ExecStartPre: '/usr/sbin/sshd -t -f /etc/ssh/sshd_config',
            ExecStart: '/usr/sbin/sshd -D -f /etc/ssh/sshd_config',
            ExecReload: '/bin/kill -HUP $MAINPID',
            KillMode: 'process',
            Restart: 'on-failure',
            RestartPreventExitStatus: 255,
            Type: 'notify',
          },
        },
      }),
      mkIf(cfg.startWhenNeeded, {
        systemd: {
          sockets: {
            sshd: {
              description: 'OpenSSH server socket',
              wantedBy: ['sockets.target'],
              before: ['multi-user.target'],
              get listenStreams() {
                return cfg.listenAddresses.length ? cfg.listenAddresses.flatMap((a) => cfg.ports.map((p) => `${a}:${p}`)) : cfg.ports.map(String);
              },
              socketConfig: { Accept: true },
            },
          },
          services: {
            // One sshd per connection, on the socket systemd accepted (the template of sshd.socket's Accept=yes).
            'sshd@': {
              description: 'OpenSSH per-connection server',
              after: ['sshd-keygen.service'],
              wants: mkIf(keygen, ['sshd-keygen.service']),
              get restartTriggers() {
                return [lib.digest(cfg.configText)];
              },
              serviceConfig: { ExecStart: '-/usr/sbin/sshd -i -f /etc/ssh/sshd_config', KillMode: 'process', StandardInput: 'socket', StandardError: 'journal' },
            },
          },
        },
      }),
      lib.systemd.serviceAccount('sshd', { group: 'nogroup', home: '/run/sshd', description: 'sshd privilege separation' }),
      {
        environment: {
          get etc() {
            const files: Record<string, { text: string; mode?: string }> = {};
            for (const u of Object.values(config.users.users)) {
              const keys = u.openssh.authorizedKeys.keys;
              // Copied, not linked: sshd's StrictModes refuses key files it cannot trust the path of.
              if (keys.length) files[`ssh/authorized_keys.d/${u.name}`] = { text: keys.join('\n') + '\n', mode: '0444' };
            }
            return files;
          },
        },
        networking: { firewall: { allowedTCPPorts: mkIf(cfg.openFirewall, cfg.ports) } },
        systemd: { tmpfiles: { rules: ['d /run/sshd 0755 root root -'] } },
        system: {
          // sshd -t loads the host keys: a throwaway one stands in for each (line for line the same file).
          checks: {
            'services.openssh': {
              package: 'openssh-server',
              setup: [['usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', '@dir@/host_key']],
              program: 'usr/sbin/sshd',
              args: ['-t', '-f', '@dir@/sshd_config'],
              files: { get sshd_config() { return sshdConfig(cfg.hostKeys.map(() => '@dir@/host_key')); } },
              options: ['services.openssh.settings', 'services.openssh.extraConfig', 'services.openssh.ports', 'services.openssh.listenAddresses', 'services.openssh.authorizedKeysFiles'],
            },
          },
        },
      },
      mkIf(keygen, {
        systemd: {
          services: {
            'sshd-keygen': {
              description: 'SSH host keys generation',
              wantedBy: ['multi-user.target'],
              serviceConfig: { Type: 'oneshot' },
              // Runs only when a key is missing or empty (a power cut can leave an empty file);
              // `%` would start a specifier there.
              get unitConfig() {
                return { ConditionFileNotEmpty: cfg.hostKeys.map((k) => `|!${k.path.replace(/%/g, '%%')}`) };
              },
              get script() {
                // Paths reach root's shell only as quoted words.
                const keys = cfg.hostKeys.map((k) => ({ ...k, path: lib.shellQuote(k.path), pub: lib.shellQuote(`${k.path}.pub`) }));
                return lib.renderTemplate('services/openssh.host-keys.sh', { keys });
              },
            },
          },
        },
      }),
    ])),
  };
};
