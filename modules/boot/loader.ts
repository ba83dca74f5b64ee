import type { ModuleArgs } from '../../src/lib/index.js';

/**
 * `boot.loader.systemd-boot.*`: the boot loader disk images install (one Boot Loader Specification
 * entry per generation on the ESP). The build records these settings in each toplevel's boot.json;
 * images (and switches) take them from the newest generation.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  return {
    options: {
      boot: {
        loader: {
          'systemd-boot': {
            enable: mkOption({
              type: types.bool,
              default: true,
              description:
                'Whether systemd-boot is the boot loader (UEFI): disk images install it with one entry per generation. ' +
                'Its EFI binary comes from the `systemd-boot-efi` package, which becomes part of the system (so `bootctl` finds it).',
            }),
            timeout: mkOption({
              type: types.nullOr(types.ints.unsigned),
              default: 5,
              description: 'Seconds the menu waits before booting the default entry; null waits for a key, 0 shows no menu (hold a key to see it).',
            }),
            editor: mkOption({
              type: types.bool,
              default: false,
              description:
                'Whether the menu lets the kernel command line be edited. Off by default: anyone at the console could otherwise ' +
                'boot with `init=/bin/sh` and get a root shell.',
            }),
            configurationLimit: mkOption({
              type: types.nullOr(types.ints.positive),
              default: null,
              example: 10,
              description: 'At most this many generations get a boot entry (the newest); null keeps all. Limits what the ESP must hold.',
            }),
          },
        },
      },
    },
    config: {
      environment: {
        systemPackages: mkIf(config.boot.loader['systemd-boot'].enable, ['systemd-boot-efi']),
      },
    },
  };
};
