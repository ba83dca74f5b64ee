import type { Config, ModuleArgs } from '../config.js';

type Interface = Config['networking']['wg-quick']['interfaces'][string];

/**
 * `networking.wg-quick`: WireGuard tunnels brought up by `wg-quick` (Debian's wireguard-tools), one
 * `wg-quick-<name>.service` each, from /etc/wireguard/<name>.conf (mode 0600). As in NixOS the file
 * holds no secret: the private and preshared keys are set from their files by the `PostUp` hook
 * (`wg set <name> private-key FILE`), a script in /etc/cairn/scripts; so are the other hooks.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const wg = lib.wireguard;
  const cfg = config.networking['wg-quick'];
  const q = lib.shellQuote;
  const commands = types.either(types.lines, types.listOf(types.str));
  const text = (c: string | string[]): string => (Array.isArray(c) ? c.join('\n') : c).replace(/\n+$/, '');
  // wg-quick's own rule for names it makes a config path of.
  const name = types.strMatching('[a-zA-Z0-9_=+.-]{1,15}');
  // A value of wg-quick's file: its parser cuts a line at `#` and trims it.
  const value = types.strMatching('[^#\\s\\x00-\\x1f\\x7f]([^#\\x00-\\x1f\\x7f]*[^#\\s\\x00-\\x1f\\x7f])?');

  const iface = types.submodule({
    options: {
      type: mkOption({ type: types.enum(['wireguard']), default: 'wireguard', description: "The kind of tunnel. NixOS also has `amneziawg`, which Debian does not package." }),
      configFile: mkOption({
        type: types.nullOr(wg.secretFile('a whole wg-quick configuration (it holds the private key)')),
        default: null,
        example: '/run/secrets/wg0.conf',
        description: 'A wg-quick .conf file of your own, used instead of the options below (it is copied to the unit\'s private /tmp as <name>.conf). It must be outside the store.',
      }),
      address: mkOption({ type: types.listOf(wg.cidr()), default: [], example: ['192.168.2.1/24'], description: 'The addresses of the interface, with prefix lengths.' }),
      autostart: mkOption({ type: types.bool, default: true, description: 'Whether the interface is brought up at boot (else `systemctl start wg-quick-<name>`).' }),
      dns: mkOption({
        type: types.listOf(types.strMatching('[A-Za-z0-9.:_-]+')),
        default: [],
        example: ['192.168.2.2'],
        description: 'DNS servers (and search domains) used while the tunnel is up, given to systemd-resolved through its `resolvconf`.',
      }),
      ...wg.privateKeyOptions('set by the PostUp hook'),
      generatePrivateKeyFile: mkOption({ type: types.bool, default: false, description: 'Whether to generate a private key with `wg genkey` at `privateKeyFile` (mode 0600) when there is none yet.' }),
      listenPort: mkOption({
        type: types.nullOr(types.port),
        default: null,
        example: 51820,
        description: 'The UDP port to listen on; a random one when null. It is not opened in the firewall (as in NixOS): add it to `networking.firewall.allowedUDPPorts`.',
      }),
      preUp: mkOption({ type: commands, default: '', description: 'Shell commands run before the interface is set up (`PreUp`).' }),
      postUp: mkOption({ type: commands, default: '', description: 'Shell commands run after the interface is set up (`PostUp`, after the keys are set).' }),
      preDown: mkOption({ type: commands, default: '', description: 'Shell commands run before the interface is taken down (`PreDown`).' }),
      postDown: mkOption({ type: commands, default: '', description: 'Shell commands run after the interface is taken down (`PostDown`).' }),
      table: mkOption({
        type: types.nullOr(wg.table()),
        default: null,
        example: 'main',
        description: "The routing table of the peers' routes (`Table`): a number or name, `off` for none, `auto` (wg-quick's default when null).",
      }),
      mtu: mkOption({ type: types.nullOr(types.ints.between(68, 65535)), default: null, example: 1248, description: 'The MTU; wg-quick derives it from the endpoints\' routes when null.' }),
      peers: mkOption({ type: types.listOf(types.submodule({ options: wg.peerOptions({ wireguard: false }) })), default: [], description: 'The peers of the interface.' }),
      extraOptions: mkOption({
        type: types.attrsNamed(types.strMatching('[A-Za-z][A-Za-z0-9]*'), types.either(value, types.int)),
        default: {},
        example: { FwMark: '0x6e6978' },
        description: 'More `[Interface]` entries of the file, by key.',
      }),
    },
  });

  /** A hook script of an interface: its /etc entry and the path the config file names. */
  const hook = (n: string, phase: string, body: string[]) => {
    const t = ['#!/bin/bash', lib.shellComment(`wg-quick-${n}.service: ${phase} hook (networking.wg-quick.interfaces).`), 'set -e', ...body, ''].join('\n');
    return { path: lib.systemd.scriptPath(`wg-quick-${n}`, phase, t), text: t };
  };

  /** The hooks of an interface, by wg-quick key (empty ones left out). */
  const hooks = (n: string, i: Interface) => {
    const out: [string, { path: string; text: string }][] = [];
    const dev = q(n);
    const preUp = [
      ...(i.generatePrivateKeyFile && i.privateKeyFile !== null
        ? [`if [ ! -f ${q(i.privateKeyFile)} ]; then mkdir -p -m 0755 "$(dirname ${q(i.privateKeyFile)})"; (umask 077; wg genkey > ${q(i.privateKeyFile)}); fi`]
        : []),
      ...(text(i.preUp) ? [text(i.preUp)] : []),
    ];
    if (preUp.length) out.push(['PreUp', hook(n, 'pre-up', preUp)]);
    const postUp = [
      ...(i.privateKeyFile !== null ? [`wg set ${dev} private-key ${q(i.privateKeyFile)}`] : []),
      ...i.peers.filter((p) => p.presharedKeyFile !== null).map((p) => `wg set ${dev} peer ${q(p.publicKey)} preshared-key ${q(p.presharedKeyFile!)}`),
      ...(text(i.postUp) ? [text(i.postUp)] : []),
    ];
    if (postUp.length) out.push(['PostUp', hook(n, 'post-up', postUp)]);
    if (text(i.preDown)) out.push(['PreDown', hook(n, 'pre-down', [text(i.preDown)])]);
    if (text(i.postDown)) out.push(['PostDown', hook(n, 'post-down', [text(i.postDown)])]);
    return out;
  };

  /** /etc/wireguard/<name>.conf: keys and values are checked types, hooks are script paths. */
  const configText = (n: string, i: Interface): string => {
    const lines = [`# wg-quick configuration of ${n}, generated by cairn from networking.wg-quick.interfaces.${n}.`, '[Interface]'];
    for (const a of i.address) lines.push(`Address = ${a}`);
    for (const d of i.dns) lines.push(`DNS = ${d}`);
    if (i.table !== null) lines.push(`Table = ${i.table}`);
    if (i.mtu !== null) lines.push(`MTU = ${i.mtu}`);
    if (i.listenPort !== null) lines.push(`ListenPort = ${i.listenPort}`);
    for (const [k, h] of hooks(n, i)) lines.push(`${k} = ${h.path}`);
    for (const [k, v] of Object.entries(i.extraOptions)) lines.push(`${k} = ${v}`);
    for (const p of i.peers) {
      lines.push('', '[Peer]', `PublicKey = ${p.publicKey}`);
      if (p.endpoint !== null) lines.push(`Endpoint = ${p.endpoint}`);
      if (p.persistentKeepalive !== null) lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
      if (p.allowedIPs.length) lines.push(`AllowedIPs = ${p.allowedIPs.join(',')}`);
    }
    return lines.join('\n') + '\n';
  };

  const confPath = (n: string, i: Interface): string => (i.configFile !== null ? `/tmp/${n}.conf` : `/etc/wireguard/${n}.conf`);

  return {
    options: {
      networking: {
        'wg-quick': {
          interfaces: mkOption({
            type: types.attrsNamed(name, iface),
            default: {},
            example: { wg0: { address: ['10.100.0.2/24'], privateKeyFile: '/run/secrets/wg0-key', peers: [{ publicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=', endpoint: 'vpn.example.org:51820', allowedIPs: ['10.100.0.0/24'] }] } },
            description: 'WireGuard interfaces brought up by wg-quick, by name: each is `wg-quick-<name>.service`.',
          }),
        },
      },
    },
    config: mkIf(() => Object.keys(cfg.interfaces).length > 0, {
      environment: {
        systemPackages: ['wireguard-tools', 'iproute2', 'kmod'],
        get etc() {
          const out: Record<string, unknown> = {};
          for (const [n, i] of Object.entries(cfg.interfaces)) {
            if (i.configFile !== null) continue;
            out[`wireguard/${n}.conf`] = { text: configText(n, i), mode: '0600' };
            for (const [, h] of hooks(n, i)) out[h.path.slice('/etc/'.length)] = { text: h.text, mode: '0755' };
          }
          return out;
        },
      },
      boot: { availableKernelModules: ['wireguard'] },
      systemd: {
        get services() {
          const out: Record<string, unknown> = {};
          for (const [n, i] of Object.entries(cfg.interfaces)) {
            const conf = q(confPath(n, i));
            out[`wg-quick-${n}`] = {
              description: `wg-quick WireGuard tunnel ${n}`,
              requires: ['network-online.target'],
              after: ['network.target', 'network-online.target'],
              wantedBy: i.autostart ? ['multi-user.target'] : [],
              environment: { DEVICE: n },
              // wg-quick adds its routes' rules with nft when a peer takes every address; DNS goes through resolvconf.
              path: ['nftables', ...(i.dns.length ? ['systemd-resolved'] : [])],
              // PrivateTmp holds the copy of a configFile (wg-quick names the interface after the file).
              serviceConfig: { Type: 'oneshot', RemainAfterExit: true, PrivateTmp: true, ExecStop: `/usr/bin/wg-quick down ${confPath(n, i)}` },
              script: [
                lib.shellComment(`wg-quick-${n}.service: brings the WireGuard interface "${n}" up (networking.wg-quick.interfaces).`),
                'modprobe wireguard || true',
                ...(i.configFile !== null ? [`cp ${q(i.configFile)} ${conf}`] : []),
                `wg-quick up ${conf}`,
              ].join('\n'),
            };
          }
          return out;
        },
      },
      get assertions() {
        return Object.entries(cfg.interfaces).flatMap(([n, i]) => {
          const at = `networking.wg-quick.interfaces.${n}`;
          return [
            {
              assertion: i.configFile !== null || i.privateKeyFile !== null,
              message: `${at}.privateKeyFile: a WireGuard interface needs its private key, from a file outside the store (e.g. an age.secrets file below /run/secrets), or a whole configFile.`,
            },
            { assertion: !i.generatePrivateKeyFile || i.privateKeyFile !== null, message: `${at}.generatePrivateKeyFile needs privateKeyFile: where the key is made.` },
            { assertion: i.dns.length === 0 || config.services.resolved.enable, message: `${at}.dns: wg-quick gives DNS servers to systemd-resolved (its resolvconf), which is off (services.resolved.enable).` },
          ];
        });
      },
    }),
  };
};
