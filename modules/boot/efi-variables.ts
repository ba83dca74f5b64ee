import type { ModuleArgs } from '../config.js';

/**
 * `boot.loader.efi.canTouchEfiVariables`: whether installing the boot loader may write the
 * firmware's boot variables. cairn never needs to: systemd-boot is installed at the removable-media
 * path (EFI/BOOT/BOOTX64.EFI), which firmware boots without a variable.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  return {
    options: {
      boot: {
        loader: {
          efi: {
            canTouchEfiVariables: mkOption({
              type: types.bool,
              default: false,
              description:
                'Whether installing the boot loader may register it in the firmware\'s EFI variables (NixOS: `bootctl install` without ' +
                '`--no-variables`). cairn installs systemd-boot only at the removable-media path EFI/BOOT/BOOTX64.EFI, which firmware boots ' +
                'without a variable, and writes no variables: true is accepted with a warning.',
            }),
          },
        },
      },
    },
    config: {
      get warnings() {
        return config.boot.loader.efi.canTouchEfiVariables
          ? ['boot.loader.efi.canTouchEfiVariables: cairn writes no EFI boot variables; systemd-boot is at the removable-media path EFI/BOOT/BOOTX64.EFI, which the firmware boots without one.']
          : [];
      },
    },
  };
};
