import type { ModuleArgs } from '../config.js';

/**
 * `hardware.enableAllHardware`: the kernel's whole module tree in the system, for a machine
 * whose hardware is not known when it is configured (an installer, a portable image).
 */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  return {
    options: {
      hardware: {
        enableAllHardware: mkOption({
          type: types.bool,
          default: false,
          example: true,
          description:
            "Whether the system holds every module of its kernel (Debian's tree is ~400 MB) rather than those `boot.availableKernelModules`, " +
            '`boot.kernelModules`, the initrd and `fileSystems` name. Unlike NixOS, it adds neither firmware (Debian ships it in its own ' +
            "packages, such as `firmware-linux-free`, for `environment.systemPackages`) nor initrd modules: cairn's stage 1 loads every " +
            'module it holds, so `boot.initrd.availableKernelModules` stays the list of what stage 1 needs.',
        }),
      },
    },
  };
};
