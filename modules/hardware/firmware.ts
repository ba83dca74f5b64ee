import type { ModuleArgs } from '../config.js';

/**
 * `hardware.enableRedistributableFirmware`, `hardware.cpu.{intel,amd}.updateMicrocode`: Debian's
 * firmware and microcode packages in the system (/usr/lib/firmware, where the kernel looks).
 * They are in Debian's `non-free-firmware` component, which these options add to `system.debian.components`.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const hw = config.hardware;
  const nonFree = (what: string) =>
    `${what} Debian ships it in the \`non-free-firmware\` component, which this adds to \`system.debian.components\` ` +
    '(a configuration that lists `packages.repositories` itself lists the component there).';
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
              description: nonFree('Whether to update the microcode of Intel CPUs at boot: `intel-microcode`, its updates prepended to the initrd for the kernel\'s early loader.'),
            }),
          },
          amd: {
            updateMicrocode: mkOption({
              type: types.bool,
              default: false,
              description: nonFree('Whether to update the microcode of AMD CPUs at boot: `amd64-microcode`, its updates prepended to the initrd for the kernel\'s early loader.'),
            }),
          },
        },
      },
    },
    config: mkMerge([
      mkIf(() => hw.enableRedistributableFirmware || hw.cpu.intel.updateMicrocode || hw.cpu.amd.updateMicrocode, {
        system: { debian: { components: ['main', 'non-free-firmware'] } },
      }),
      mkIf(hw.enableRedistributableFirmware, { environment: { systemPackages: ['firmware-linux-nonfree'] } }),
      mkIf(hw.cpu.intel.updateMicrocode, { environment: { systemPackages: ['intel-microcode'] }, boot: { initrd: { earlyMicrocode: ['intel'] } } }),
      mkIf(hw.cpu.amd.updateMicrocode, { environment: { systemPackages: ['amd64-microcode'] }, boot: { initrd: { earlyMicrocode: ['amd'] } } }),
    ]),
  };
};
