import type { Config, ModuleArgs } from '../config.js';

type Interface = Config['networking']['wireguard']['interfaces'][string];

/**
 * `networking.wireguard`: WireGuard tunnels set up with `ip` and `wg` (Debian's wireguard-tools; the
 * kernel's own module). Each interface is one oneshot unit, `wireguard-<name>.service`, that
 * creates the link, sets its key, addresses and peers and adds the peers' routes; stopping it
 * deletes the link. NixOS starts a unit per peer (`wireguard-<name>-peer-…`) and one generating
 * the key: here they are steps of the interface's unit, so a changed peer restarts the interface;
 * only a peer whose endpoint is refreshed (`dynamicEndpointRefreshSeconds`) has a unit of its own.
 * Private and preshared keys are only read from files outside the store, on the machine.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const wg = lib.wireguard;
  const cfg = config.networking.wireguard;
  const q = lib.shellQuote;
  const commands = types.either(types.lines, types.listOf(types.str));
  const text = (c: string | string[]): string => (Array.isArray(c) ? c.join('\n') : c).replace(/\n+$/, '');

  const iface = types.submodule({
    options: {
      ips: mkOption({ type: types.listOf(wg.cidr()), default: [], example: ['192.168.2.1/24'], description: 'The addresses of the interface, with prefix lengths.' }),
      ...wg.privateKeyOptions('read by root when the interface is set up'),
      generatePrivateKeyFile: mkOption({
        type: types.bool,
        default: false,
        description: 'Whether to generate a private key with `wg genkey` at `privateKeyFile` (mode 0600) when there is none yet.',
      }),
      listenPort: mkOption({
        type: types.nullOr(types.port),
        default: null,
        example: 51820,
        description: 'The UDP port to listen on; a random one when null. It is not opened in the firewall (as in NixOS): add it to `networking.firewall.allowedUDPPorts`.',
      }),
      mtu: mkOption({ type: types.nullOr(types.ints.between(68, 65535)), default: null, example: 1280, description: 'The MTU of the interface (the kernel\'s default is 1420).' }),
      table: mkOption({
        type: wg.table(),
        default: 'main',
        description: 'The routing table the peers\' allowed IPs are added to as routes (a number or a name of /etc/iproute2/rt_tables).',
      }),
      allowedIPsAsRoutes: mkOption({ type: types.bool, default: true, description: "Whether the peers' allowed IPs become routes through the interface." }),
      fwMark: mkOption({ type: types.nullOr(wg.fwMark()), default: null, example: '0x6e6978', description: 'The firewall mark of the tunnel\'s own packets (for policy routing).' }),
      preSetup: mkOption({ type: commands, default: '', description: 'Shell commands run (as root) before the interface is created.' }),
      postSetup: mkOption({ type: commands, default: '', description: 'Shell commands run after the interface is up.' }),
      postShutdown: mkOption({ type: commands, default: '', description: 'Shell commands run after the interface was deleted.' }),
      peers: mkOption({ type: types.listOf(types.submodule({ options: wg.peerOptions({ wireguard: true }) })), default: [], description: 'The peers of the interface.' }),
    },
  });

  /** A peer's refresh unit (without `.service`), its name escaped as NixOS does (`+`, `=`, `/` of keys). */
  const refreshUnit = (iface: string, peer: string): string =>
    `wireguard-${iface}-peer-${peer.replace(/[^A-Za-z0-9:_.]/gu, (c) => (c === '/' ? '-' : [...Buffer.from(c)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')))}-refresh`;

  /** The unit's start script: every value a quoted word. */
  const setup = (name: string, i: Interface): string => {
    const dev = q(name);
    const lines = [
      lib.shellComment(`wireguard-${name}.service: sets up the WireGuard interface "${name}" (networking.wireguard.interfaces).`),
      'modprobe wireguard || true',
    ];
    if (i.generatePrivateKeyFile && i.privateKeyFile !== null) {
      const file = q(i.privateKeyFile);
      lines.push(`if [ ! -f ${file} ]; then mkdir -p -m 0755 "$(dirname ${file})"; (umask 077; wg genkey > ${file}); fi`);
    }
    lines.push(text(i.preSetup));
    // A link left by a unit that did not stop cleanly (a crash) is made anew.
    lines.push(`ip link del dev ${dev} 2>/dev/null || true`, `ip link add dev ${dev} type wireguard`);
    if (i.mtu !== null) lines.push(`ip link set dev ${dev} mtu ${i.mtu}`);
    for (const a of i.ips) lines.push(`ip address add ${q(a)} dev ${dev}`);
    const set = [
      `wg set ${dev} private-key ${q(i.privateKeyFile ?? '')}`,
      ...(i.listenPort !== null ? [`listen-port ${i.listenPort}`] : []),
      ...(i.fwMark !== null ? [`fwmark ${q(i.fwMark)}`] : []),
    ];
    lines.push(set.join(' '));
    for (const p of i.peers) {
      lines.push(lib.shellComment(`peer ${p.name ?? p.publicKey}`));
      lines.push(
        [
          `wg set ${dev} peer ${q(p.publicKey)}`,
          ...(p.presharedKeyFile !== null ? [`preshared-key ${q(p.presharedKeyFile)}`] : []),
          ...(p.endpoint !== null ? [`endpoint ${q(p.endpoint)}`] : []),
          ...(p.persistentKeepalive !== null ? [`persistent-keepalive ${p.persistentKeepalive}`] : []),
          ...(p.allowedIPs.length ? [`allowed-ips ${q(p.allowedIPs.join(','))}`] : []),
        ].join(' '),
      );
    }
    lines.push(`ip link set up dev ${dev}`);
    if (i.allowedIPsAsRoutes) {
      for (const a of i.peers.flatMap((p) => p.allowedIPs)) lines.push(`ip route replace ${q(a)} dev ${dev} table ${q(i.table)}`);
    }
    lines.push(text(i.postSetup));
    return lines.filter((l) => l !== '').join('\n') + '\n';
  };

  return {
    options: {
      networking: {
        wireguard: {
          enable: mkOption({
            type: types.bool,
            get default() {
              return Object.keys(cfg.interfaces).length > 0;
            },
            defaultText: 'whether networking.wireguard.interfaces declares any',
            description: 'Whether to set up the WireGuard interfaces.',
          }),
          interfaces: mkOption({
            type: types.attrsNamed(types.interfaceName, iface),
            default: {},
            example: { wg0: { ips: ['10.100.0.1/24'], listenPort: 51820, privateKeyFile: '/run/secrets/wg0-key', peers: [{ publicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=', allowedIPs: ['10.100.0.2/32'] }] } },
            description: 'WireGuard interfaces, by name: each is set up by `wireguard-<name>.service`.',
          }),
        },
      },
    },
    config: mkIf(() => cfg.enable, {
      environment: { systemPackages: ['wireguard-tools', 'iproute2', 'kmod'] },
      boot: { availableKernelModules: ['wireguard'] },
      systemd: {
        get services() {
          const out: Record<string, unknown> = {};
          for (const [name, i] of Object.entries(cfg.interfaces)) {
            for (const p of i.peers) {
              if (p.dynamicEndpointRefreshSeconds === 0 || p.endpoint === null) continue;
              const set = `wg set ${q(name)} peer ${q(p.publicKey)} endpoint ${q(p.endpoint)}`;
              out[refreshUnit(name, p.name ?? p.publicKey)] = {
                description: `WireGuard endpoint refresh of ${name}'s peer ${p.name ?? p.publicKey}`,
                wantedBy: [`wireguard-${name}.service`],
                after: [`wireguard-${name}.service`, 'network-online.target'],
                wants: ['network-online.target'],
                bindsTo: [`wireguard-${name}.service`],
                // wg retries a name that does not resolve yet, for ever.
                environment: { WG_ENDPOINT_RESOLUTION_RETRIES: 'infinity' },
                script: `while ${set}; do sleep ${p.dynamicEndpointRefreshSeconds}; done\n`,
                serviceConfig: { Restart: 'always', ...(p.dynamicEndpointRefreshRestartSeconds !== null ? { RestartSec: p.dynamicEndpointRefreshRestartSeconds } : {}) },
              };
            }
            out[`wireguard-${name}`] = {
              description: `WireGuard tunnel ${name}`,
              after: ['network-pre.target'],
              wants: ['network.target'],
              before: ['network.target'],
              wantedBy: ['multi-user.target'],
              environment: { DEVICE: name },
              serviceConfig: { Type: 'oneshot', RemainAfterExit: true },
              script: setup(name, i),
              postStop: [lib.shellComment(`wireguard-${name}.service: deletes the interface "${name}".`), `ip link del dev ${q(name)} 2>/dev/null || true`, text(i.postShutdown)].filter((l) => l !== '').join('\n') + '\n',
            };
          }
          return out;
        },
      },
      get assertions() {
        return Object.entries(cfg.interfaces).flatMap(([name, i]) => {
          const at = `networking.wireguard.interfaces.${name}`;
          return [{ assertion: i.privateKeyFile !== null, message: `${at}.privateKeyFile: a WireGuard interface needs its private key, from a file outside the store (e.g. an age.secrets file below /run/secrets); set generatePrivateKeyFile to have one made there.` }];
        });
      },
    }),
  };
};
