import type { Config, ModuleArgs } from '../config.js';

type Iface = Config['networking']['interfaces'][string];
type Profile = Record<string, Record<string, string | number | boolean | null>>;

/** Where ensureProfiles' profiles are rendered (NetworkManager also reads this folder). */
const RUN_PROFILES = '/run/NetworkManager/system-connections';

/**
 * `networking.networkmanager`: NetworkManager (Debian's network-manager, with its internal DHCP
 * client) manages the network instead of systemd-networkd, as on NixOS desktops and laptops;
 * networkd stays the default for servers. With it on, `networking.useDHCP` is off (as in NixOS:
 * NetworkManager configures Ethernet by DHCP itself) and `networking.interfaces.<name>` become
 * NetworkManager profiles named after the interface (static addresses, DHCP, MTU, routes, default
 * gateways), no longer networkd files; networkd keeps only what `systemd.network` declares. The D-Bus
 * system bus is turned on. Profiles of `ensureProfiles.profiles` are rendered at boot into
 * /run/NetworkManager/system-connections with `$VARIABLES` from `environmentFiles` (secrets stay
 * out of the store).
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkDefault, mkForce, types } = lib;
  const cfg = config.networking.networkmanager;
  const ini = lib.formats.ini();
  // A device spec of `unmanaged-devices` (`;`-separated): a name, or `mac:…`, `interface-name:…`, ….
  const deviceSpec = types.strMatching('[^;,\\s\\x00-\\x1f\\x7f]+');

  /** A NetworkManager profile of `networking.interfaces.<name>` (what networkd's 40-<name>.network holds otherwise). */
  const interfaceProfile = (i: Iface): Profile => {
    const gw = (g: Config['networking']['defaultGateway']) => {
      if (g === null) return null;
      const long = typeof g === 'string' ? { address: g, interface: null } : g;
      return (long.interface ?? i.name) === i.name ? long.address : null;
    };
    const ROUTE_ATTRS: Record<string, string> = { src: 'src', table: 'table', scope: 'scope', mtu: 'mtu', initcwnd: 'initcwnd', initrwnd: 'initrwnd', onlink: 'onlink' };
    const family = (v: 4 | 6): Record<string, string | null> => {
      const f = v === 4 ? i.ipv4 : i.ipv6;
      const dhcp = i.useDHCP ?? (i.ipv4.addresses.length + i.ipv6.addresses.length === 0 && config.networking.useDHCP);
      const out: Record<string, string | null> = {
        method: dhcp ? 'auto' : f.addresses.length ? 'manual' : v === 4 ? 'disabled' : 'link-local',
      };
      f.addresses.forEach((a, k) => (out[`address${k + 1}`] = `${a.address}/${a.prefixLength}`));
      if (f.addresses.length) out.gateway = gw(v === 4 ? config.networking.defaultGateway : config.networking.defaultGateway6);
      f.routes.forEach((r, k) => {
        out[`route${k + 1}`] = [`${r.address}/${r.prefixLength}`, ...(r.via !== null || r.options.metric !== undefined ? [r.via ?? (v === 4 ? '0.0.0.0' : '::')] : []), ...(r.options.metric !== undefined ? [r.options.metric] : [])].join(',');
        const attrs = [...(r.type !== null ? [`type=${r.type}`] : []), ...Object.entries(r.options).filter(([o]) => o in ROUTE_ATTRS).map(([o, val]) => `${ROUTE_ATTRS[o]}=${val}`)];
        if (attrs.length) out[`route${k + 1}_options`] = attrs.join(',');
      });
      return out;
    };
    return {
      connection: { id: i.name, type: 'ethernet', 'interface-name': i.name, autoconnect: true },
      ...(i.mtu !== null ? { ethernet: { mtu: i.mtu } } : {}),
      ipv4: family(4),
      ipv6: family(6),
    };
  };

  const profileScript = (): string => {
    const q = lib.shellQuote;
    return [
      lib.shellComment('NetworkManager-ensure-profiles.service: renders networking.networkmanager.ensureProfiles.profiles with the environment files\' variables.'),
      `mkdir -p -m 0700 ${RUN_PROFILES}`,
      ...Object.keys(cfg.ensureProfiles.profiles).map((n) => `envsubst < ${q(`/etc/NetworkManager/cairn-profiles/${n}.nmconnection`)} > ${q(`${RUN_PROFILES}/${n}.nmconnection`)}`),
      'if systemctl is-active --quiet NetworkManager.service; then nmcli connection reload; fi',
      '',
    ].join('\n');
  };

  return {
    options: {
      networking: {
        networkmanager: {
          enable: mkOption({
            type: types.bool,
            default: false,
            description:
              'Whether NetworkManager configures the network interfaces (instead of systemd-networkd, which stays for what `systemd.network` declares). ' +
              '`networking.interfaces.<name>` become its profiles; `nmcli` changes the network as root (cairn has no polkit: the `networkmanager` group exists, as in NixOS, but grants nothing yet).',
          }),
          unmanaged: mkOption({
            type: types.listOf(deviceSpec),
            default: [],
            example: ['interface-name:veth*', 'mac:52:54:00:12:34:56', 'eth2'],
            description:
              'Devices NetworkManager leaves alone: interface names, or device specs (`mac:…`, `interface-name:…`, `type:…`). ' +
              'The links `systemd.network.networks` match by `Name` are added: networkd configures those.',
          }),
          dns: mkOption({
            type: types.enum(['default', 'dnsmasq', 'systemd-resolved', 'none']),
            get default() {
              return config.services.resolved.enable ? 'systemd-resolved' : 'default';
            },
            defaultText: '"systemd-resolved" when services.resolved is enabled, else "default"',
            description: "Where NetworkManager sends the DNS servers it learns: to systemd-resolved, a dnsmasq of its own, /etc/resolv.conf (`default`; cairn's /etc/resolv.conf is the resolved or networking.nameservers file, so NetworkManager's is not used), or nowhere.",
          }),
          dhcp: mkOption({
            type: types.enum(['internal', 'dhcpcd']),
            default: 'internal',
            description: "The DHCP client: NetworkManager's own, or dhcpcd (Debian's dhcpcd-base, installed then).",
          }),
          logLevel: mkOption({ type: types.enum(['OFF', 'ERR', 'WARN', 'INFO', 'DEBUG', 'TRACE']), default: 'WARN', description: 'How much NetworkManager logs.' }),
          connectionConfig: mkOption({
            type: types.attrsOf(types.nullOr(types.oneOf([types.bool, types.int, types.singleLineStr]))),
            default: {},
            example: { 'ipv6.ip6-privacy': 2 },
            description: 'Defaults of every connection (the `[connection]` section of NetworkManager.conf); null leaves an entry out.',
          }),
          settings: mkOption({
            type: ini.type,
            default: {},
            example: { main: { 'no-auto-default': '*' } },
            description: 'NetworkManager.conf(5), by section; the options above set their entries as defaults.',
          }),
          wifi: {
            backend: mkOption({
              type: types.enum(['wpa_supplicant', 'iwd']),
              default: 'wpa_supplicant',
              description: 'The Wi-Fi backend NetworkManager drives; its Debian package (wpasupplicant or iwd) is installed.',
            }),
            powersave: mkOption({ type: types.nullOr(types.bool), default: null, description: "Whether Wi-Fi power saving is on; the driver's default when null." }),
            scanRandMacAddress: mkOption({ type: types.bool, default: true, description: 'Whether scans use a random MAC address.' }),
            macAddress: mkOption({ type: types.singleLineStr, default: 'preserve', example: 'random', description: 'The MAC address Wi-Fi connections use (`preserve`, `permanent`, `random`, `stable` or an address).' }),
          },
          ethernet: {
            macAddress: mkOption({ type: types.singleLineStr, default: 'preserve', example: 'stable', description: 'The MAC address Ethernet connections use (`preserve`, `permanent`, `random`, `stable` or an address).' }),
          },
          ensureProfiles: {
            profiles: mkOption({
              type: types.attrsNamed(types.strMatching('[A-Za-z0-9_.+@-]+'), ini.type),
              default: {},
              example: { home: { connection: { id: 'home', type: 'wifi' }, wifi: { ssid: 'home' }, 'wifi-security': { 'key-mgmt': 'wpa-psk', psk: '$HOME_PSK' } } },
              description:
                'NetworkManager profiles (keyfile format, nm-settings-keyfile(5)), by file name: rendered at boot into /run/NetworkManager/system-connections, ' +
                '`$NAME` replaced by the variables of `environmentFiles`, so secrets never enter the store.',
            }),
            environmentFiles: mkOption({
              type: types.listOf(lib.wireguard.secretFile('`NAME=value` lines for the profiles')),
              default: [],
              example: ['/run/secrets/wifi.env'],
              description: 'Files of `NAME=value` lines whose variables replace `$NAME` in the profiles. They must be outside the store.',
            }),
          },
        },
      },
    },
    config: mkIf(cfg.enable, {
      networking: {
        useDHCP: false,
        networkmanager: {
          // What systemd.network still declares is networkd's: NetworkManager leaves those links alone.
          get unmanaged() {
            return Object.values(config.systemd.network.networks)
              .filter((n) => n.enable)
              .flatMap((n) => [n.matchConfig.Name ?? []].flat().flatMap((v) => String(v).split(/\s+/)))
              .filter((v) => v !== '')
              .map((v) => `interface-name:${v}`);
          },
          settings: {
            main: {
              plugins: mkDefault('keyfile'),
              dhcp: mkDefault(cfg.dhcp),
              dns: mkDefault(cfg.dns),
              // cairn writes /etc/resolv.conf (services.resolved, networking.nameservers).
              'rc-manager': mkDefault('unmanaged'),
              // No polkit: root may change the network, others may not.
              'auth-polkit': mkDefault('root-only'),
            },
            keyfile: mkIf(() => cfg.unmanaged.length > 0, { get 'unmanaged-devices'() { return mkDefault(cfg.unmanaged.map((d) => (d.includes(':') ? d : `interface-name:${d}`)).join(';')); } }),
            logging: { level: mkDefault(cfg.logLevel), audit: mkDefault(false) },
            connection: {
              get 'ethernet.cloned-mac-address'() { return mkDefault(cfg.ethernet.macAddress); },
              get 'wifi.cloned-mac-address'() { return mkDefault(cfg.wifi.macAddress); },
              get 'wifi.powersave'() { return mkDefault(cfg.wifi.powersave === null ? null : cfg.wifi.powersave ? 3 : 2); },
            },
            device: { 'wifi.scan-rand-mac-address': mkDefault(cfg.wifi.scanRandMacAddress), 'wifi.backend': mkDefault(cfg.wifi.backend) },
          },
          ensureProfiles: {
            get profiles() {
              const out: Record<string, Profile> = {};
              for (const i of Object.values(config.networking.interfaces)) out[i.name] = interfaceProfile(i);
              return out;
            },
          },
        },
      },
      services: { dbus: { enable: true } },
      users: { groups: { networkmanager: {} } },
      environment: {
        get systemPackages() {
          return [
            'network-manager',
            cfg.wifi.backend === 'iwd' ? 'iwd' : 'wpasupplicant',
            ...(cfg.dhcp === 'dhcpcd' ? ['dhcpcd-base'] : []),
            ...(cfg.dns === 'dnsmasq' ? ['dnsmasq-base'] : []),
            ...(Object.keys(cfg.ensureProfiles.profiles).length ? ['gettext-base'] : []),
          ];
        },
        get etc() {
          const out: Record<string, unknown> = {
            'NetworkManager/NetworkManager.conf': { text: ini.generate('networking.networkmanager.settings', cfg.settings) },
            // D-Bus starts the dispatcher by this name (the unit's Alias=, which `systemctl enable` would link).
            'systemd/system/dbus-org.freedesktop.nm-dispatcher.service': { symlink: '/lib/systemd/system/NetworkManager-dispatcher.service' },
          };
          // Templates only: `$VARIABLES` stand for the secrets.
          for (const [n, p] of Object.entries(cfg.ensureProfiles.profiles)) out[`NetworkManager/cairn-profiles/${n}.nmconnection`] = { text: ini.generate(`networking.networkmanager.ensureProfiles.profiles.${n}`, p), mode: '0600' };
          return out;
        },
      },
      systemd: {
        tmpfiles: { rules: ['d /etc/NetworkManager/system-connections 0700 root root -', 'd /var/lib/NetworkManager 0700 root root -'] },
        services: {
          // Packaged units, enabled as `systemctl enable NetworkManager` would (with its Also= units).
          NetworkManager: {
            overrideStrategy: 'asDropin',
            wantedBy: ['multi-user.target'],
            get restartTriggers() {
              return [lib.digest(ini.generate('networking.networkmanager.settings', cfg.settings))];
            },
          },
          'NetworkManager-wait-online': { overrideStrategy: 'asDropin', wantedBy: ['network-online.target'] },
          // networkd no longer configures the interfaces: its wait would only time out.
          'systemd-networkd-wait-online': { wantedBy: mkForce([]) },
          'NetworkManager-ensure-profiles': {
            description: 'NetworkManager profiles of the configuration',
            wantedBy: ['NetworkManager.service'],
            before: ['NetworkManager.service'],
            after: ['systemd-tmpfiles-setup.service'],
            get script() {
              return profileScript();
            },
            get restartTriggers() {
              return [lib.digest(JSON.stringify(cfg.ensureProfiles.profiles))];
            },
            serviceConfig: { Type: 'oneshot', RemainAfterExit: true, UMask: '0177', get EnvironmentFile() { return cfg.ensureProfiles.environmentFiles; } },
          },
        },
      },
      get assertions() {
        return Object.entries(cfg.ensureProfiles.profiles).map(([n, p]) => ({
          assertion: typeof p.connection?.id === 'string' && typeof p.connection?.type === 'string',
          message: `networking.networkmanager.ensureProfiles.profiles.${n}: a profile needs connection.id and connection.type.`,
        }));
      },
    }),
  };
};
