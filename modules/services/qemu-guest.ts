import type { ModuleArgs } from '../config.js';

/**
 * `services.qemuGuest`: the QEMU guest agent, through which the host of a VM asks the guest to
 * shut down, freeze its filesystems for a snapshot, or report its addresses.
 *
 * NixOS writes the unit and a udev rule itself; Debian's package ships both (the unit bound to the
 * virtio port `org.qemu.guest_agent.0`, the rule wanting it when that port appears), and a
 * package's /usr is part of the system as it is. So installing the package is the whole of
 * enabling it; changes to `systemd.services.qemu-guest-agent` become a drop-in over the packaged
 * unit rather than a unit of their own.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkPackageOption, types } = lib;
  const cfg = config.services.qemuGuest;
  return {
    options: {
      services: {
        qemuGuest: {
          enable: mkOption({
            type: types.bool,
            default: false,
            example: true,
            description:
              "Whether to enable the qemu guest agent. It starts when the VM has the port `org.qemu.guest_agent.0` (udev's rule from the package wants it then), so a machine without one runs nothing; enabled by a switch on a running machine, it starts at the next boot (or `systemctl start qemu-guest-agent`). Unlike NixOS's (`--statedir /run/qemu-ga`), Debian's agent keeps its state in /var/run, a link to /run.",
          }),
          package: mkPackageOption('qemu-guest-agent', {
            extraDescription: 'It must ship `qemu-guest-agent.service` and the udev rule that starts it, as Debian\'s does.',
          }),
        },
      },
    },
    config: mkIf(cfg.enable, {
      environment: {
        get systemPackages() {
          return [cfg.package];
        },
      },
      systemd: {
        services: {
          // The packaged unit is used as it is; what a user adds to it goes into its drop-in.
          'qemu-guest-agent': { overrideStrategy: 'asDropin' },
        },
      },
    }),
  };
};
