import type { ModuleArgs } from '../config.js';

/**
 * `boot.kernelPackage`, `boot.kernelParams`, `boot.console`, `boot.kernelModules`,
 * `boot.blacklistedKernelModules`: the kernel a system boots, what it is told on its command line
 * and which of its modules load.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const word = types.word;
  return {
    options: {
      boot: {
        kernelPackage: lib.mkPackageOption('Linux kernel', {
          default: 'linux-image-amd64',
          example: 'linux-image-cloud-amd64',
          extraDescription: 'A `linux-image-*` package or a metapackage depending on one; its `boot/vmlinuz-<version>` and modules are used.',
        }),
        kernelParams: mkOption({
          type: types.listOf(word),
          default: [],
          example: ['quiet', 'systemd.show_status=1'],
          description: 'Parameters on the kernel command line (besides `init=`, which the boot loader adds for each generation).',
        }),
        console: mkOption({
          type: types.listOf(word),
          default: ['tty0', 'ttyS0,115200'],
          example: ['ttyS0,115200'],
          description:
            'Consoles, as `console=` parameters in this order. The last one is /dev/console: where systemd prints its status and where ' +
            'emergency shells appear. The default ends with the first serial port, which is what a VM test reads.',
        }),
        kernelModules: mkOption({
          type: types.listOf(word),
          default: [],
          example: ['br_netfilter'],
          description: 'Kernel modules loaded in stage 2 (by systemd-modules-load), besides those udev loads for the hardware it finds.',
        }),
        blacklistedKernelModules: mkOption({
          type: types.listOf(word),
          default: [],
          example: ['cirrusfb', 'i2c_piix4'],
          description:
            'Kernel modules that are not loaded automatically (by their aliases: hardware probing, a program asking for a protocol); ' +
            'they still load explicitly or as a dependency of another module. `blacklist` lines in /etc/modprobe.d/cairn-blacklist.conf.',
        }),
      },
    },
    config: {
      boot: {
        // A getter: the console list is read only when the parameters are.
        get kernelParams() {
          return lib.mkBefore(config.boot.console.map((c) => `console=${c}`));
        },
      },
      environment: {
        etc: {
          get 'modprobe.d/cairn-blacklist.conf'() {
            const modules = config.boot.blacklistedKernelModules;
            return lib.mkIf(modules.length > 0, { text: modules.map((m) => `blacklist ${m}\n`).join('') });
          },
          get 'modules-load.d/cairn.conf'() {
            const modules = config.boot.kernelModules;
            return lib.mkIf(modules.length > 0, { text: modules.map((m) => `${m}\n`).join('') });
          },
        },
      },
    },
  };
};
