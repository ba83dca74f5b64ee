import type { ModuleArgs } from '../config.js';

/**
 * `boot.growPartition`: at boot, the partition holding the root file system is grown to the end
 * of its disk (growpart, of cloud-guest-utils), before systemd-growfs grows the file system
 * (`fileSystems."/".autoResize`). For images written to disks larger than themselves.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  return {
    options: {
      boot: {
        growPartition: mkOption({
          type: types.bool,
          default: false,
          description:
            'Whether to grow the root partition to fill its disk at boot (growpart). A root on a whole disk (no partition table) is ' +
            'left as it is. Set `fileSystems."/".autoResize` too for the file system to follow.',
        }),
      },
    },
    config: mkIf(config.boot.growPartition, {
      environment: { systemPackages: ['cloud-guest-utils'] },
      systemd: {
        services: {
          growpart: {
            description: 'Grow the root partition',
            wantedBy: ['-.mount'],
            after: ['-.mount'],
            before: ['systemd-growfs-root.service', 'shutdown.target'],
            conflicts: ['shutdown.target'],
            unitConfig: { DefaultDependencies: false },
            // growpart exits 1 when the partition already fills the disk.
            serviceConfig: { Type: 'oneshot', RemainAfterExit: true, TimeoutSec: 'infinity', SuccessExitStatus: '0 1' },
            script: lib.renderTemplate('tasks/grow-partition.growpart.sh', {}),
          },
        },
      },
    }),
  };
};
