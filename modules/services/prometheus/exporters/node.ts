import type { ModuleArgs } from '../../../config.js';

/**
 * `services.prometheus.exporters.node`: Prometheus's node exporter (Debian's
 * prometheus-node-exporter), the machine's metrics (CPU, memory, disks, network) on port 9100, with
 * NixOS's options. It runs as `prometheus-node-exporter.service` (NixOS's name, and Debian's) as
 * the `node-exporter` account; `openFirewall` opens its port in cairn's firewall.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.services.prometheus.exporters.node;
  // A collector's name, as in `--collector.<name>` (`systemd`, `textfile`, `network_route`).
  const collector = types.strMatching('[a-z0-9_]+');
  const user = 'node-exporter';

  return {
    options: {
      services: {
        prometheus: {
          exporters: {
            node: {
              enable: lib.mkEnableOption('the Prometheus node exporter'),
              port: mkOption({ type: types.port, default: 9100, description: 'The port the metrics are served on.' }),
              listenAddress: mkOption({ type: types.strMatching('[^\\s\\x00-\\x1f\\x7f]*'), default: '0.0.0.0', example: '[::1]', description: 'The address the metrics are served on (an IPv6 one in brackets).' }),
              enabledCollectors: mkOption({ type: types.listOf(collector), default: [], example: ['systemd'], description: 'Collectors turned on besides the default ones (`--collector.<name>`).' }),
              disabledCollectors: mkOption({ type: types.listOf(collector), default: [], example: ['timex'], description: 'Default collectors turned off (`--no-collector.<name>`).' }),
              extraFlags: mkOption({ type: types.listOf(types.singleLineStr), default: [], example: ['--collector.textfile.directory=/var/lib/node-exporter'], description: 'More command line arguments of the exporter, each one argument.' }),
              openFirewall: mkOption({ type: types.bool, default: false, description: 'Whether the port is opened in the firewall (by `firewallRules`).' }),
              firewallRules: mkOption({
                type: types.nullOr(types.lines),
                get default() {
                  return `tcp dport ${cfg.port} accept`;
                },
                defaultText: 'tcp dport <port> accept',
                example: 'iifname "eth1" tcp dport 9100 accept',
                description: 'nftables rules added to the firewall\'s input chain (`networking.firewall.extraInputRules`) when `openFirewall` is on: by default the port, open to everyone.',
              }),
              user: mkOption({ type: types.accountName, default: user, description: 'The account the exporter runs as (created when it is the default).' }),
              group: mkOption({ type: types.accountName, default: user, description: 'The group the exporter runs as (created when it is the default).' }),
            },
          },
        },
      },
    },
    config: mkIf(cfg.enable, mkMerge([
      {
        environment: { systemPackages: ['prometheus-node-exporter'] },
        systemd: {
          // The textfile collector's folder (Debian's default --collector.textfile.directory), as the
          // package's postinst makes it: programs drop `*.prom` files there.
          tmpfiles: { rules: ['d /var/lib/prometheus 0755 root root -', 'd /var/lib/prometheus/node-exporter 0755 root root -'] },
          services: {
            'prometheus-node-exporter': {
              description: 'Prometheus node exporter',
              wantedBy: ['multi-user.target'],
              after: ['network.target'],
              get script() {
                const args = [
                  ...cfg.enabledCollectors.map((c) => `--collector.${c}`),
                  ...cfg.disabledCollectors.map((c) => `--no-collector.${c}`),
                  `--web.listen-address=${cfg.listenAddress}:${cfg.port}`,
                  ...cfg.extraFlags,
                ];
                return `exec /usr/bin/prometheus-node-exporter ${args.map(lib.shellQuote).join(' ')}`;
              },
              serviceConfig: {
                User: cfg.user,
                Group: cfg.group,
                Restart: 'always',
                RuntimeDirectory: 'prometheus-node-exporter',
                PrivateTmp: true,
                WorkingDirectory: '/tmp',
                NoNewPrivileges: true,
                ProtectHome: true,
                ProtectSystem: 'strict',
                ProtectKernelModules: true,
                ProtectControlGroups: true,
                CapabilityBoundingSet: '',
              },
            },
          },
        },
        networking: { firewall: { extraInputRules: mkIf(() => cfg.openFirewall && cfg.firewallRules !== null, cfg.firewallRules ?? '') } },
      },
      mkIf(() => cfg.user === user, { users: { users: { [user]: { isSystemUser: true, group: cfg.group, description: 'Prometheus node exporter' } } } }),
      mkIf(() => cfg.group === user, { users: { groups: { [user]: {} } } }),
    ])),
  };
};
