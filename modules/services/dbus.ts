import type { ModuleArgs } from '../config.js';

/**
 * `services.dbus`: the D-Bus system bus (Debian's dbus-daemon), which services such as
 * systemd-logind and NetworkManager talk through. What the packages' maintainer scripts would do is done by what they
 * ship: the `messagebus` account comes from their sysusers.d file, /var/lib/dbus from their
 * tmpfiles.d file; policies and bus-activated services are read from /usr/share/dbus-1 and
 * /etc/dbus-1, so a package in `packages` (or anywhere in the system) brings its own.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.services.dbus;
  return {
    options: {
      services: {
        dbus: {
          enable: mkOption({
            type: types.bool,
            default: true,
            description:
              'Whether to run the D-Bus system bus. On by default, as in NixOS (where the systemd module turns it on): systemd-logind and ' +
              'NetworkManager talk through it, and Debian\'s libpam-systemd depends on it, so turning this off does not remove it from a system that has those.',
          }),
          implementation: mkOption({
            type: types.enum(['dbus']),
            default: 'dbus',
            description: "The bus daemon: Debian's reference `dbus-daemon`. NixOS also offers `broker`, not supported here yet.",
          }),
          packages: mkOption({
            type: types.listOf(types.package),
            default: [],
            example: ['network-manager'],
            description: 'Packages whose D-Bus policies and services the bus should know (they are installed).',
          }),
        },
      },
    },
    config: mkIf(cfg.enable, {
      environment: { systemPackages: ['dbus', ...cfg.packages] },
      systemd: {
        // Packaged units, enabled as `systemctl enable` would; the socket starts the daemon.
        sockets: { dbus: { overrideStrategy: 'asDropin', wantedBy: ['sockets.target'] } },
        services: {
          dbus: {
            overrideStrategy: 'asDropin',
            // Restarting the bus drops every client's connection: a changed policy is a reload.
            reloadIfChanged: true,
          },
        },
      },
    }),
  };
};
