import type { Config, ModuleArgs } from '../config.js';

type PortRange = Config['networking']['firewall']['allowedTCPPortRanges'][number];

/**
 * `networking.firewall`: an nftables ruleset that drops incoming traffic except loopback,
 * replies (established/related), ping, IPv6 neighbour discovery and the ports listed here (modules
 * such as services.openssh add theirs). Forwarding and outgoing traffic are not filtered.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.networking.firewall;
  const range = types.submodule({
    options: {
      from: mkOption({ type: types.port, description: 'First port of the range.' }),
      to: mkOption({ type: types.port, description: 'Last port of the range.' }),
    },
  });
  /** The ruleset file: the table is replaced as a whole, so reloading never leaves a mix. */
  const ruleset = (): string => {
    const ports = (list: number[], ranges: PortRange[]): string | null => {
      const items = [...[...new Set(list)].sort((a, b) => a - b).map(String), ...ranges.map((r) => `${r.from}-${r.to}`)];
      return items.length ? `{ ${items.join(', ')} }` : null;
    };
    return lib.renderTemplate('networking/firewall.nftables', {
      allowPing: cfg.allowPing,
      trusted: cfg.trustedInterfaces.map((i) => JSON.stringify(i)),
      tcp: ports(cfg.allowedTCPPorts, cfg.allowedTCPPortRanges),
      udp: ports(cfg.allowedUDPPorts, cfg.allowedUDPPortRanges),
      interfaces: Object.entries(cfg.interfaces).flatMap(([name, i]) => {
        const iif = `iifname ${JSON.stringify(name)}`;
        const tcp = ports(i.allowedTCPPorts, i.allowedTCPPortRanges);
        const udp = ports(i.allowedUDPPorts, i.allowedUDPPortRanges);
        return [...(tcp ? [`${iif} tcp dport ${tcp} accept`] : []), ...(udp ? [`${iif} udp dport ${udp} accept`] : [])];
      }),
      extra: cfg.extraInputRules.replace(/\n+$/, ''),
      refuse: cfg.rejectPackets ? 'reject' : 'drop',
      logRefused: cfg.logRefusedConnections,
    });
  };
  return {
    options: {
      networking: {
        nftables: {
          enable: mkOption({
            type: types.bool,
            default: true,
            description:
              "Whether nftables is the packet filter (the `nft` tool is installed). cairn's firewall is always nftables, so this is on; " +
              "in NixOS it switches the firewall from iptables to nftables, and `networking.firewall.extraCommands` is refused then, as here.",
          }),
        },
        firewall: {
          enable: mkOption({ type: types.bool, default: true, description: 'Whether to filter incoming traffic (nftables).' }),
          allowedTCPPorts: mkOption({ type: types.listOf(types.port), default: [], example: [80, 443], description: 'TCP ports open to everyone.' }),
          allowedUDPPorts: mkOption({ type: types.listOf(types.port), default: [], description: 'UDP ports open to everyone.' }),
          allowedTCPPortRanges: mkOption({ type: types.listOf(range), default: [], example: [{ from: 8000, to: 8010 }], description: 'TCP port ranges open to everyone.' }),
          allowedUDPPortRanges: mkOption({ type: types.listOf(range), default: [], description: 'UDP port ranges open to everyone.' }),
          allowPing: mkOption({ type: types.bool, default: true, description: 'Whether to answer ICMP and ICMPv6 echo requests.' }),
          trustedInterfaces: mkOption({ type: types.listOf(types.interfaceName), default: [], example: ['wg0'], description: 'Interfaces whose incoming traffic is all accepted (loopback always is).' }),
          rejectPackets: mkOption({ type: types.bool, default: false, description: 'Whether refused packets are rejected (the sender learns at once) instead of silently dropped.' }),
          logRefusedConnections: mkOption({ type: types.bool, default: false, description: 'Whether refused connection attempts are logged (rate-limited).' }),
          interfaces: mkOption({
            type: types.attrsNamed(
              types.interfaceName,
              types.submodule({
                options: {
                  allowedTCPPorts: mkOption({ type: types.listOf(types.port), default: [], description: 'TCP ports open on this interface.' }),
                  allowedUDPPorts: mkOption({ type: types.listOf(types.port), default: [], description: 'UDP ports open on this interface.' }),
                  allowedTCPPortRanges: mkOption({ type: types.listOf(range), default: [], description: 'TCP port ranges open on this interface.' }),
                  allowedUDPPortRanges: mkOption({ type: types.listOf(range), default: [], description: 'UDP port ranges open on this interface.' }),
                },
              }),
            ),
            default: {},
            example: { wg0: { allowedTCPPorts: [9100] } },
            description: 'Ports open only on one interface (its incoming traffic), by interface name; the top-level lists are open on every interface.',
          }),
          extraCommands: mkOption({
            type: types.lines,
            default: '',
            description:
              "NixOS's iptables firewall runs these shell commands. cairn's firewall is nftables (as NixOS's with `networking.nftables.enable`), " +
              'which refuses them: write nftables rules in `extraInputRules` instead.',
          }),
          extraStopCommands: mkOption({ type: types.lines, default: '', description: 'As `extraCommands`: refused, the firewall is nftables.' }),
          extraInputRules: mkOption({ type: types.lines, default: '', example: 'ip saddr 192.0.2.0/24 tcp dport 5432 accept', description: 'nftables rules added to the input chain before the final refusal.' }),
          ruleset: mkOption({ type: types.str, readOnly: true, get default() { return ruleset(); }, defaultText: 'rendered from the options above', description: 'The generated ruleset, /etc/nftables.conf (read-only).' }),
        },
      },
    },
    config: lib.mkMerge([
      {
        get assertions() {
          return [
            { assertion: !cfg.enable || config.networking.nftables.enable, message: "networking.nftables.enable = false: cairn's firewall is nftables only (there is no iptables firewall); turn networking.firewall.enable off instead." },
            ...(['extraCommands', 'extraStopCommands'] as const).map((o) => ({
              assertion: cfg[o] === '',
              message: `networking.firewall.${o} holds iptables shell commands, which cairn's nftables firewall does not run (NixOS refuses them with nftables too): write nftables rules in networking.firewall.extraInputRules.`,
            })),
          ];
        },
      },
      mkIf(() => config.networking.nftables.enable, { environment: { systemPackages: ['nftables'] } }),
      mkIf(cfg.enable, {
        // What nft asks the kernel for (expressions, conntrack, NAT, reject, log), and the iptables
        // compatibility modules tools such as container engines load through iptables-nft.
        boot: {
          availableKernelModules: ['nf_tables', 'nft_*', 'nf_*', 'nfnetlink*', 'x_tables', 'xt_*', 'ip_tables', 'ip6_tables', 'ipt_*', 'ip6t_*', 'iptable_*', 'ip6table_*'],
          // The modules of the ruleset's expressions, loaded together by systemd-modules-load (one
          // process) before the unit runs. Otherwise nft's first use of each has the kernel start a
          // modprobe of its own, one after the other, on the way to network.target (~1 s of an
          // emulated boot). Rules of extraInputRules still load theirs on demand.
          get kernelModules() {
            const limit = cfg.allowPing || cfg.logRefusedConnections;
            return ['nf_tables', 'nft_ct', ...(limit ? ['nft_limit'] : []), ...(cfg.logRefusedConnections ? ['nft_log'] : []), ...(cfg.rejectPackets ? ['nft_reject_inet'] : [])];
          },
        },
        environment: {
          systemPackages: ['nftables'],
          etc: { 'nftables.conf': { get text() { return cfg.ruleset; } } },
        },
        systemd: {
          services: {
            // Our own unit (it replaces the package's): a reload applies a changed ruleset in one
            // transaction, so a switch never opens a window without a firewall.
            nftables: {
              description: 'Firewall (nftables)',
              wantedBy: ['sysinit.target'],
              wants: ['network-pre.target'],
              after: ['systemd-modules-load.service'],
              before: ['network-pre.target', 'shutdown.target'],
              conflicts: ['shutdown.target'],
              unitConfig: { DefaultDependencies: false },
              reloadIfChanged: true,
              get reloadTriggers() {
                return [lib.digest(cfg.ruleset)];
              },
              serviceConfig: {
                Type: 'oneshot',
                RemainAfterExit: true,
                ExecStart: '/usr/sbin/nft -f /etc/nftables.conf',
                ExecReload: '/usr/sbin/nft -f /etc/nftables.conf',
                ExecStop: '/usr/sbin/nft delete table inet cairn-firewall',
              },
            },
          },
        },
      }),
    ]),
  };
};
