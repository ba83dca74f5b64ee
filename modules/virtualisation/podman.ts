import type { ModuleArgs } from '../config.js';

/**
 * `virtualisation.podman`: Podman, the daemonless container engine, with NixOS's options, from
 * Debian's packages (4.3 in bookworm, 5.4 in trixie) with crun, conmon and netavark, no
 * recommends. What the packages' scripts and NixOS's module would do is here: the `podman` group
 * of the API socket, netavark as the network backend (/etc/containers/containers.conf), and
 * podman's tmpfiles without its root-only /run/podman, which would hide the socket from the group.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.virtualisation.podman;
  const json = lib.formats.json();
  // NixOS's default network, which `defaultNetwork.settings` is merged over.
  const defaultNetwork = {
    dns_enabled: false,
    driver: 'bridge',
    id: '0'.repeat(64),
    internal: false,
    ipam_options: { driver: 'host-local' },
    ipv6_enabled: false,
    name: 'podman',
    network_interface: 'podman0',
    subnets: [{ gateway: '10.88.0.1', subnet: '10.88.0.0/16' }],
  };
  const network = (): Record<string, unknown> => ({ ...defaultNetwork, ...(cfg.defaultNetwork.settings as Record<string, unknown>) });
  return {
    options: {
      virtualisation: {
        podman: {
          enable: lib.mkEnableOption('Podman, a daemonless container engine (the `podman` command, a drop-in for `docker`)'),
          dockerCompat: mkOption({ type: types.bool, default: false, description: 'Whether `docker` is a name of `podman` (a `docker` command in /usr/bin). Conflicts with `virtualisation.docker.enable`.' }),
          dockerSocket: {
            enable: mkOption({
              type: types.bool,
              default: false,
              description:
                "Whether podman's API socket (Docker's API) is also /run/docker.sock, for Docker's tools. Users must be in the `podman` group to connect; as with Docker, that group is as good as root.",
            }),
          },
          autoPrune: {
            enable: mkOption({ type: types.bool, default: false, description: 'Whether to prune unused containers, images and networks (`podman system prune -f`) periodically, at `dates`.' }),
            flags: mkOption({ type: types.listOf(types.str), default: [], example: ['--all'], description: 'More arguments of `podman system prune`.' }),
            dates: mkOption({ type: types.singleLineStr, default: 'weekly', description: 'When to prune (systemd.time(7) calendar events).' }),
          },
          defaultNetwork: {
            settings: mkOption({
              type: json.type,
              default: {},
              example: { dns_enabled: true },
              description: "Settings of podman's default network (`podman`, bridge `podman0`, 10.88.0.0/16), merged over those; written to /etc/containers/networks/podman.json when set. `dns_enabled` needs Debian's aardvark-dns, installed then.",
            }),
          },
        },
      },
    },
    config: mkIf(cfg.enable, mkMerge([
      {
        environment: {
          get systemPackages() {
            // netavark first: it is the container-network-stack that containers-common asks for.
            // Its firewall driver: bookworm's 1.4 drives iptables, later ones may drive nft; both are here.
            const dns = network().dns_enabled === true;
            return ['netavark', 'podman', 'crun', 'conmon', 'iptables', 'nftables', ...(dns ? ['aardvark-dns'] : [])];
          },
          get builtPackages() {
            return cfg.dockerCompat ? [{ name: 'podman-docker-compat', builder: 'cairn:tree', args: { entries: { 'bin/docker': { link: '/usr/bin/podman' } } } }] : [];
          },
          etc: {
            // Named as the package's file, so it replaces /usr/lib/tmpfiles.d/podman.conf: the same
            // rules but /run/podman's, root-only, which would lock the `podman` group out of the socket.
            'tmpfiles.d/podman.conf': {
              text: ['x /tmp/podman-run-*', 'x /tmp/containers-user-*', 'x /tmp/run-*/libpod', 'D! /var/lib/containers/storage/tmp 0700 root root', 'D! /var/lib/cni/networks', ''].join('\n'),
            },
            'containers/networks/podman.json': mkIf(() => Object.keys(cfg.defaultNetwork.settings as object).length > 0, {
              get text() {
                return json.generate('virtualisation.podman.defaultNetwork.settings', network());
              },
            }),
          },
        },
        virtualisation: {
          containers: {
            enable: true,
            // Debian's podman 4.3 would pick CNI when CNI networks exist; NixOS's choice, said outright.
            containersConf: { settings: { network: { network_backend: 'netavark' } } },
          },
        },
        networking: {
          firewall: {
            // Containers reach aardvark-dns on the bridge.
            get interfaces() {
              const n = network();
              return n.dns_enabled === true ? { [String(n.network_interface)]: { allowedUDPPorts: [53] } } : {};
            },
          },
        },
        users: { groups: { podman: {} } },
        systemd: {
          sockets: {
            // The packaged podman.socket, enabled, for the `podman` group (and Docker's path).
            podman: {
              overrideStrategy: 'asDropin',
              wantedBy: ['sockets.target'],
              socketConfig: { SocketGroup: 'podman', SocketMode: '0660', ...(cfg.dockerSocket.enable ? { Symlinks: '/run/docker.sock' } : {}) },
            },
          },
          services: {
            'podman-prune': {
              description: 'Prune podman resources',
              restartIfChanged: false,
              serviceConfig: { Type: 'oneshot' },
              get script() {
                return ['exec podman system prune -f', ...cfg.autoPrune.flags.map(lib.shellQuote)].join(' ');
              },
              startAt: mkIf(cfg.autoPrune.enable, [cfg.autoPrune.dates]),
            },
          },
          timers: {
            'podman-prune': mkIf(cfg.autoPrune.enable, { timerConfig: { Persistent: true, RandomizedDelaySec: 1800 } }),
          },
        },
        assertions: [
          { assertion: !(cfg.dockerCompat && config.virtualisation.docker.enable), message: 'virtualisation.podman.dockerCompat conflicts with virtualisation.docker.enable: both would be the `docker` command.' },
          {
            assertion: !(cfg.dockerSocket.enable && config.virtualisation.docker.enable),
            message: 'virtualisation.podman.dockerSocket.enable conflicts with virtualisation.docker.enable: only one of them can serve /run/docker.sock.',
          },
        ],
      },
    ])),
  };
};
