import type { ModuleArgs } from '../config.js';

/** Kernel modules each file system type needs in the initrd besides its own (vfat reads names through code pages). */
const FS_MODULES: Record<string, string[]> = {
  // Debian's kernels mount FAT with the `ascii` character set unless told another (NixOS's use
  // iso8859-1), and exFAT with `utf8`: without those tables stage 1 cannot mount either.
  vfat: ['vfat', 'nls_cp437', 'nls_ascii', 'nls_iso8859_1'],
  exfat: ['exfat', 'nls_utf8'],
  auto: [],
  tmpfs: [],
  none: [],
};

/** Disks of QEMU (virtio, q35's AHCI) and of common machines (NVMe, SATA, USB storage). */
const DEFAULT_AVAILABLE = ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'sd_mod', 'ahci', 'nvme', 'xhci_pci', 'usb_storage', 'uas'];

/**
 * `boot.initrd.*`: what cairn's initrd holds. Stage 1 loads every module listed here (with their
 * dependencies and soft dependencies, in order), mounts the file systems needed for boot and
 * switches to the generation. Also `system.build.bootPackages`, packages the build needs
 * (busybox for the initrd) that are not part of the system.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const word = types.word;
  return {
    options: {
      boot: {
        initrd: {
          availableKernelModules: mkOption({
            type: types.listOf(word),
            default: [],
            example: ['mpt3sas'],
            description:
              'Kernel modules in the initrd for the hardware the root file system may be on. As in NixOS, stage 1 loads one when it finds ' +
              "its hardware (a device's modalias, read from /sys as udev would) or when the kernel asks for it; `kernelModules` are loaded always. " +
              'Drivers of ATA controllers (those that use libata: ahci, ata_piix, …) are loaded only when a device stage 1 waits for is not there without them: their probe waits for every port, and every other module load would wait for it. ' +
              "With `includeDefaultModules`, cairn adds the disks of QEMU (virtio, q35's AHCI) and of common machines (NVMe, SATA, USB storage).",
          }),
          includeDefaultModules: mkOption({
            type: types.bool,
            default: true,
            example: false,
            description: "Whether cairn's default modules for common disks are in `availableKernelModules`; without them, list the root disk's drivers yourself.",
          }),
          kernelModules: mkOption({
            type: types.listOf(word),
            default: [],
            example: ['dm_crypt'],
            description: 'Kernel modules stage 1 always loads (with the file system drivers), whatever hardware it finds.',
          }),
          supportedFilesystems: mkOption({
            type: types.listOf(word),
            get default() {
              return [...new Set(neededForBoot().map((fs) => fs.fsType))].sort();
            },
            defaultText: 'the types of the file systems needed for boot',
            example: ['ext4', 'vfat'],
            description: 'File system types stage 1 can mount (their drivers go into the initrd).',
          }),
          modules: mkOption({
            type: types.listOf(word),
            internal: true,
            readOnly: true,
            get default() {
              const i = config.boot.initrd;
              const fsModules = i.supportedFilesystems.flatMap((t) => FS_MODULES[t] ?? [t]);
              return [...new Set([...i.availableKernelModules, ...i.kernelModules, ...fsModules])];
            },
            description: 'Every module name the initrd build resolves (dependencies are added then).',
          }),
          load: mkOption({
            type: types.listOf(word),
            internal: true,
            readOnly: true,
            get default() {
              const i = config.boot.initrd;
              return [...new Set([...i.kernelModules, ...i.supportedFilesystems.flatMap((t) => FS_MODULES[t] ?? [t])])];
            },
            description: 'The module names stage 1 loads whatever the hardware; the rest of `modules` it loads for the devices it finds.',
          }),
          earlyMicrocode: mkOption({
            type: types.listOf(types.enum(['intel', 'amd'])),
            internal: true,
            default: [],
            description:
              "CPU vendors whose microcode (from `intel-microcode`, `amd64-microcode`) is prepended to the initrd as an uncompressed cpio, " +
              "where the kernel's early loader reads it before anything runs (NixOS's `boot.initrd.prepend` of the microcode image). " +
              'Set by `hardware.cpu.{intel,amd}.updateMicrocode`.',
          }),
          fileSystems: mkOption({
            type: types.listOf(types.anything),
            internal: true,
            readOnly: true,
            get default() {
              // `x-*` options are for systemd and mount(8)'s helpers, not the kernel: busybox's mount would pass them on.
              const opts = (o: string[]) => o.filter((x) => !x.startsWith('x-')).join(',') || 'defaults';
              return neededForBoot().map((fs) => ({ device: lib.fileSystems.fsSpec(fs) ?? fs.fsType, mountPoint: fs.mountPoint, fsType: fs.fsType, options: opts(fs.options) }));
            },
            description: 'The file systems stage 1 mounts (`{ device, mountPoint, fsType, options }`), the root first.',
          }),
        },
      },
      system: {
        build: {
          bootPackages: mkOption({
            type: types.listOf(types.package),
            internal: true,
            default: ['busybox-static'],
            description: 'Packages the build uses to make boot files (the initrd) that do not become part of the system.',
          }),
        },
      },
    },
    config: {
      boot: {
        initrd: {
          availableKernelModules: lib.mkIf(() => config.boot.initrd.includeDefaultModules, DEFAULT_AVAILABLE),
        },
      },
    },
  };

  /** The configured file systems stage 1 mounts, by mount point (so the root comes first). */
  function neededForBoot(): { mountPoint: string; device: string | null; uuid: string | null; label: string | null; fsType: string; options: string[] }[] {
    const all = Object.values(config.fileSystems);
    return all
      .filter((fs) => fs.neededForBoot || lib.fileSystems.ALWAYS_NEEDED_FOR_BOOT.includes(fs.mountPoint))
      .sort((a, b) => (a.mountPoint < b.mountPoint ? -1 : a.mountPoint > b.mountPoint ? 1 : 0));
  }
};
