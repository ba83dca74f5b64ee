import type { ModuleArgs } from '../config.js';

/** `s` as one argument of a systemd command line: `$` and `%` literal, quoted when it has to be. */
const execWord = (s: string): string => {
  const escaped = s.replace(/\$/g, '$$$$').replace(/%/g, '%%');
  return /^[A-Za-z0-9_@+=:,./-]+$/.test(s) ? escaped : `"${escaped.replace(/[\\"]/g, '\\$&')}"`;
};

/**
 * `virtualisation.docker`: the Docker daemon, with NixOS's options, from Debian's docker.io
 * (20.10 in bookworm; in trixie, 26.1, whose `docker` command is the separate docker-cli package,
 * added for every suite but bookworm's), containerd and runc; of the recommends only apparmor,
 * which dockerd needs. dockerd reads /etc/docker/daemon.json (`daemon.settings`) and nothing else;
 * Debian's units (docker.service, docker.socket, containerd.service) are used with drop-ins. What
 * docker.io's postinst would do is here: the `docker` group, whose members may use the socket (and
 * so are as good as root).
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkDefault, mkOverride, types } = lib;
  const cfg = config.virtualisation.docker;
  const json = lib.formats.json();
  /** Whether the packages come from bookworm, whose docker.io still has the `docker` command. */
  const bookworm = (): boolean => config.system.debian.release === 'bookworm';
  return {
    options: {
      virtualisation: {
        docker: {
          enable: lib.mkEnableOption('Docker, a daemon that manages Linux containers (users in the `docker` group may use it with the `docker` command)'),
          listenOptions: mkOption({
            type: types.listOf(types.strMatching('[^\\s\\x00-\\x1f\\x7f]+')),
            default: ['/run/docker.sock'],
            description: "The sockets docker.socket listens on (systemd.socket(5)'s `ListenStream=`: a path, or `[address]:port` for TCP, which is unauthenticated root access).",
          }),
          enableOnBoot: mkOption({
            type: types.bool,
            default: true,
            description: 'Whether dockerd starts at boot (needed for containers run with `--restart=always`); otherwise the socket starts it when first used.',
          }),
          daemon: {
            settings: mkOption({
              type: json.type,
              default: {},
              example: { ipv6: true, 'fixed-cidr-v6': 'fd00::/80' },
              description: "dockerd's configuration (dockerd(8), `daemon.json`), written to /etc/docker/daemon.json. `hosts` is `fd://` (the sockets of docker.socket) and `group` is `docker`.",
            }),
          },
          liveRestore: mkOption({ type: types.bool, default: true, description: 'Whether containers keep running while dockerd restarts (`live-restore`; incompatible with swarm mode).' }),
          storageDriver: mkOption({
            type: types.nullOr(types.enum(['aufs', 'btrfs', 'devicemapper', 'overlay', 'overlay2', 'zfs'])),
            default: null,
            description: 'The storage driver (`storage-driver`); null lets dockerd choose (overlay2 on ext4 and xfs).',
          }),
          logDriver: mkOption({
            type: types.enum(['none', 'json-file', 'syslog', 'journald', 'gelf', 'fluentd', 'awslogs', 'splunk', 'etwlogs', 'gcplogs', 'local']),
            default: 'journald',
            description: "Containers' default log driver (`log-driver`): journald puts their output in the journal.",
          }),
          extraOptions: mkOption({
            type: types.separatedString(' '),
            default: '',
            example: '--debug --default-ulimit nofile=4096:8192',
            description: "More arguments of dockerd, split at whitespace; each word is passed as written (nothing is expanded). Prefer `daemon.settings`.",
          }),
          autoPrune: {
            enable: mkOption({ type: types.bool, default: false, description: 'Whether to prune unused containers, images and networks (`docker system prune -f`) periodically, at `dates`.' }),
            flags: mkOption({ type: types.listOf(types.str), default: [], example: ['--all'], description: 'More arguments of `docker system prune`.' }),
            dates: mkOption({ type: types.singleLineStr, default: 'weekly', description: 'When to prune (systemd.time(7) calendar events).' }),
          },
        },
      },
    },
    config: mkIf(cfg.enable, {
      boot: {
        kernelModules: ['bridge', 'veth', 'br_netfilter', 'xt_nat'],
        // Containers reach the network through the host: forwarding on, over the usual default.
        kernel: { sysctl: { 'net.ipv4.conf.all.forwarding': mkOverride(98, true), 'net.ipv4.conf.default.forwarding': mkOverride(98, true) } },
      },
      environment: {
        get systemPackages() {
          // apparmor (a recommends): Debian's kernel has AppArmor on, and dockerd then refuses to
          // start containers unless apparmor_parser loads its docker-default profile.
          return ['docker.io', 'containerd', 'runc', 'iptables', 'apparmor', ...(bookworm() ? [] : ['docker-cli'])];
        },
        etc: {
          // apparmor ships this folder empty and its tunables include it; /etc holds files only, so
          // without one the docker-default profile does not parse (a comment is an empty include).
          'apparmor.d/tunables/xdg-user-dirs.d/cairn': { text: '# Keeps this folder, which tunables/xdg-user-dirs includes, in /etc.\n' },
          'docker/daemon.json': {
            get text() {
              return json.generate('virtualisation.docker.daemon.settings', cfg.daemon.settings);
            },
          },
        },
      },
      users: { groups: { docker: {} } },
      virtualisation: {
        docker: {
          daemon: {
            settings: {
              group: 'docker',
              hosts: ['fd://'],
              // Debian's containerd.service, which docker.service wants, rather than a child of dockerd.
              containerd: mkDefault('/run/containerd/containerd.sock'),
              'log-driver': mkDefault(cfg.logDriver),
              'storage-driver': mkIf(cfg.storageDriver !== null, mkDefault(cfg.storageDriver)),
              'live-restore': mkDefault(cfg.liveRestore),
            },
          },
        },
      },
      systemd: {
        services: {
          docker: {
            overrideStrategy: 'asDropin',
            wantedBy: cfg.enableOnBoot ? ['multi-user.target'] : [],
            get restartTriggers() {
              return [lib.digest(json.generate('virtualisation.docker.daemon.settings', cfg.daemon.settings))];
            },
            serviceConfig: {
              // The packaged line names its own socket and containerd: daemon.json says it all here.
              get ExecStart() {
                const extra = cfg.extraOptions.split(/\s+/).filter((w) => w !== '');
                return ['', ['/usr/sbin/dockerd', '--config-file=/etc/docker/daemon.json', ...extra.map(execWord)].join(' ')];
              },
              EnvironmentFile: '',
            },
          },
          'docker-prune': {
            description: 'Prune docker resources',
            restartIfChanged: false,
            after: ['docker.service'],
            requires: ['docker.service'],
            serviceConfig: { Type: 'oneshot' },
            get script() {
              return ['exec docker system prune -f', ...cfg.autoPrune.flags.map(lib.shellQuote)].join(' ');
            },
            startAt: mkIf(cfg.autoPrune.enable, [cfg.autoPrune.dates]),
          },
        },
        sockets: {
          docker: {
            overrideStrategy: 'asDropin',
            wantedBy: ['sockets.target'],
            get listenStreams() {
              return ['', ...cfg.listenOptions];
            },
          },
        },
      },
    }),
  };
};
