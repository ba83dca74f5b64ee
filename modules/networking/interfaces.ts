import type { Config, ModuleArgs } from '../config.js';

/** A default gateway in its long form. */
type Gateway = Exclude<Config['networking']['defaultGateway'], string | null>;

/**
 * `networking.interfaces`, `networking.useDHCP`, `networking.defaultGateway(6)`: the machine's
 * addresses, configured by systemd-networkd (one `40-<interface>.network` each, and a catch-all
 * DHCP file for the other Ethernet links when `useDHCP` is on).
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const address = (family: 4 | 6) =>
    types.submodule({
      options: {
        address: mkOption({ type: types.word, description: `An IPv${family} address, without prefix length.` }),
        prefixLength: mkOption({ type: family === 4 ? types.ints.between(0, 32) : types.ints.between(0, 128), description: 'The prefix length (24 for a /24).' }),
      },
    });
  const ROUTE_OPTIONS: Record<string, string> = { metric: 'Metric', src: 'PreferredSource', table: 'Table', scope: 'Scope', mtu: 'MTUBytes', protocol: 'Protocol', initcwnd: 'InitialCongestionWindow', initrwnd: 'InitialAdvertisedReceiveWindow', onlink: 'GatewayOnLink' };
  const route = (family: 4 | 6) =>
    types.submodule({
      options: {
        address: mkOption({ type: types.word, description: `The IPv${family} network the route leads to.` }),
        prefixLength: mkOption({ type: family === 4 ? types.ints.between(0, 32) : types.ints.between(0, 128), description: 'Its prefix length.' }),
        via: mkOption({ type: types.nullOr(types.word), default: null, description: 'The gateway; none for a route on the link.' }),
        type: mkOption({
          type: types.nullOr(types.enum(['unicast', 'local', 'broadcast', 'multicast', 'unreachable', 'prohibit', 'blackhole', 'throw', 'nat', 'anycast'])),
          default: null,
          description: 'The route type (unicast when null).',
        }),
        options: mkOption({
          type: types.attrsNamed(types.enum(Object.keys(ROUTE_OPTIONS)), types.word),
          default: {},
          example: { metric: '100' },
          description: `Route attributes as ip-route(8) names them: ${Object.keys(ROUTE_OPTIONS).join(', ')} (systemd-networkd's Route settings).`,
        }),
      },
    });
  /** The `[Route]` sections of a link's .network file. */
  const routeSections = (routes: { address: string; prefixLength: number; via: string | null; type: string | null; options: Record<string, string> }[]): string =>
    routes
      .map((r) =>
        [
          '[Route]',
          `Destination=${r.address}/${r.prefixLength}`,
          ...(r.via !== null ? [`Gateway=${r.via}`] : []),
          ...(r.type !== null ? [`Type=${r.type}`] : []),
          ...Object.entries(r.options).map(([k, v]) => `${ROUTE_OPTIONS[k]}=${v}`),
        ].join('\n'),
      )
      .join('\n\n');
  const iface = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      name: mkOption({ type: types.interfaceName, default: name, description: 'The interface name (the attribute name by default).' }),
      useDHCP: mkOption({
        type: types.nullOr(types.bool),
        default: null,
        description: 'Whether to get addresses by DHCP (v4 and v6). null: only when the interface has no static address and `networking.useDHCP` is on.',
      }),
      ipv4: {
        addresses: mkOption({ type: types.listOf(address(4)), default: [], example: [{ address: '192.0.2.10', prefixLength: 24 }], description: 'Static IPv4 addresses.' }),
        routes: mkOption({ type: types.listOf(route(4)), default: [], example: [{ address: '198.51.100.0', prefixLength: 24, via: '192.0.2.254' }], description: 'Static IPv4 routes through this interface.' }),
      },
      ipv6: {
        addresses: mkOption({ type: types.listOf(address(6)), default: [], example: [{ address: '2001:db8::10', prefixLength: 64 }], description: 'Static IPv6 addresses.' }),
        routes: mkOption({ type: types.listOf(route(6)), default: [], example: [{ address: '2001:db8:1::', prefixLength: 48, via: 'fe80::1' }], description: 'Static IPv6 routes through this interface.' }),
      },
      mtu: mkOption({ type: types.nullOr(types.ints.between(68, 65535)), default: null, description: 'The MTU of the link.' }),
    },
  }));
  const gateway = types.nullOr(
    types.either(
      types.word,
      types.submodule({
        options: {
          address: mkOption({ type: types.word, description: 'The gateway address.' }),
          interface: mkOption({ type: types.nullOr(types.interfaceName), default: null, description: 'The interface it is reached through; every configured interface when null.' }),
        },
      }),
    ),
  );
  const gw = (g: string | Gateway | null): Gateway | null => (g === null ? null : typeof g === 'string' ? { address: g, interface: null } : g);
  return {
    options: {
      networking: {
        useNetworkd: mkOption({
          type: types.bool,
          default: true,
          description: "Whether systemd-networkd configures the network. It always does in cairn (NixOS's scripted networking does not exist here); false is refused.",
        }),
        usePredictableInterfaceNames: mkOption({
          type: types.bool,
          default: true,
          description: 'Whether network interfaces get names from their hardware (`enp1s0`, `ens3`) rather than the kernel\'s order (`eth0`, `eth1`; `net.ifnames=0` on the kernel command line).',
        }),
        useDHCP: mkOption({ type: types.bool, default: true, description: 'Whether Ethernet interfaces without configuration (and configured ones without static addresses) get their addresses by DHCP.' }),
        interfaces: mkOption({ type: types.attrsNamed(types.interfaceName, iface), default: {}, example: { eth0: { ipv4: { addresses: [{ address: '192.0.2.10', prefixLength: 24 }] } } }, description: 'Network interfaces, by name.' }),
        defaultGateway: mkOption({ type: gateway, default: null, example: '192.0.2.1', description: 'The default IPv4 gateway: an address, or `{ address, interface }`.' }),
        defaultGateway6: mkOption({ type: gateway, default: null, example: '2001:db8::1', description: 'The default IPv6 gateway.' }),
      },
    },
    config: {
      boot: { kernelParams: lib.mkIf(() => !config.networking.usePredictableInterfaceNames, ['net.ifnames=0']) },
      get assertions() {
        return [{ assertion: config.networking.useNetworkd, message: 'networking.useNetworkd = false: cairn configures networks with systemd-networkd only.' }];
      },
      systemd: {
        network: {
          enable: true,
          get networks() {
            const out: Record<string, unknown> = {};
            // NetworkManager configures the interfaces then (modules/networking/networkmanager.ts).
            if (config.networking.networkmanager.enable) return out;
            const gateways = [gw(config.networking.defaultGateway), gw(config.networking.defaultGateway6)].filter((g): g is Gateway => g !== null);
            for (const i of Object.values(config.networking.interfaces)) {
              const statics = [...i.ipv4.addresses, ...i.ipv6.addresses];
              const dhcp = i.useDHCP ?? (statics.length === 0 && config.networking.useDHCP);
              out[`40-${i.name}`] = {
                matchConfig: { Name: i.name },
                address: statics.map((a) => `${a.address}/${a.prefixLength}`),
                gateway: statics.length ? gateways.filter((g) => (g.interface ?? i.name) === i.name).map((g) => g.address) : [],
                networkConfig: { DHCP: dhcp ? 'yes' : 'no', IPv6AcceptRA: dhcp || null },
                linkConfig: i.mtu === null ? {} : { MTUBytes: i.mtu },
                extraConfig: routeSections([...i.ipv4.routes, ...i.ipv6.routes]),
              };
            }
            if (config.networking.useDHCP) {
              // Names of Ethernet links (predictable and kernel names); configured ones match 40-* first.
              out['99-ethernet-default-dhcp'] = { matchConfig: { Name: 'en* eth*', Type: 'ether' }, networkConfig: { DHCP: 'yes' } };
            }
            return out;
          },
        },
      },
    },
  };
};
