import type { ModuleArgs } from '../config.js';

/**
 * `hardware.enableRedistributableFirmware`, `hardware.cpu.{intel,amd}.updateMicrocode`: Debian's
 * firmware and microcode packages in the system (/usr/lib/firmware, where the kernel looks).
 * They are in Debian's `non-free-firmware` component, which `packages.repositories` must list.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const hw = config.hardware;
  const nonFree = (what: string) =>
    `${what} Debian ships it in the \`non-free-firmware\` component: list it in \`packages.repositories\` ` +
    "(e.g. `{ suite: bookworm, components: [main, non-free-firmware] }`, and the same for bookworm-updates and bookworm-security).";
  return {
    options: {
      hardware: {
        enableRedistributableFirmware: mkOption({
          type: types.bool,
          default: false,
          description: nonFree('Whether to install firmware that may be redistributed but is not free (`firmware-linux-nonfree`: GPUs, NICs, wireless).'),
        }),
        cpu: {
          intel: {
            updateMicrocode: mkOption({
              type: types.bool,
              default: false,
              description: nonFree('Whether to install the microcode updates of Intel CPUs (`intel-microcode`, /usr/lib/firmware/intel-ucode).'),
            }),
          },
          amd: {
            updateMicrocode: mkOption({
              type: types.bool,
              default: false,
              description: nonFree('Whether to install the microcode updates of AMD CPUs (`amd64-microcode`, /usr/lib/firmware/amd-ucode).'),
            }),
          },
        },
      },
    },
    config: mkMerge([
      mkIf(hw.enableRedistributableFirmware, { environment: { systemPackages: ['firmware-linux-nonfree'] } }),
      mkIf(hw.cpu.intel.updateMicrocode, { environment: { systemPackages: ['intel-microcode'] } }),
      mkIf(hw.cpu.amd.updateMicrocode, { environment: { systemPackages: ['amd64-microcode'] } }),
    ]),
  };
};
