import type { ModuleArgs } from '../../src/lib/index.js';

/**
 * `boot.loader.systemd-boot.*`: the boot loader disk images install (one Boot Loader Specification
 * entry per generation on the ESP). Declared here so configurations can set it; images read it.
 */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  return {
    options: {
      boot: {
        loader: {
          'systemd-boot': {
            enable: lib.mkEnableOption('systemd-boot as the boot loader of disk images (UEFI)'),
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
  };
};
