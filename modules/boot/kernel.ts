import type { ModuleArgs } from '../config.js';

/**
 * Modules a VM or a common server may need after boot, loaded on demand by udev or modprobe:
 * QEMU's virtio devices, common disk controllers and NICs (also of the big clouds), the file
 * systems and virtual network devices every distribution uses, device mapper and the crypto it
 * asks for by alias. No sound, GPU, wireless or other desktop hardware.
 */
const DEFAULT_AVAILABLE = [
  // QEMU and other hypervisors
  'virtio_pci', 'virtio_blk', 'virtio_scsi', 'virtio_net', 'virtio_console', 'virtio_balloon', 'virtio_rng', 'virtio_input',
  '9p', '9pnet_virtio', 'vmw_vsock_virtio_transport', 'vmw_pvscsi', 'vmxnet3', 'hv_vmbus', 'hv_storvsc', 'hv_netvsc', 'hv_utils',
  'xen_blkfront', 'xen_netfront',
  // disks and USB
  'ahci', 'ata_piix', 'nvme', 'sd_mod', 'sr_mod', 'usb_storage', 'uas', 'xhci_pci', 'ehci_pci', 'ohci_pci', 'uhci_hcd', 'usbhid', 'hid_generic',
  'megaraid_sas', 'mpt3sas',
  // NICs
  'e1000', 'e1000e', 'igb', 'ixgbe', 'i40e', 'r8169', 'tg3', 'bnxt_en', 'ena', 'gve',
  // file systems
  // nls_*: character sets FAT and ISO 9660 mounts ask for (Debian's FAT default iocharset is ascii); autofs4: systemd loads it at start.
  'ext4', 'vfat', 'nls_*', 'efivarfs', 'isofs', 'overlay', 'squashfs', 'fuse', 'loop', 'autofs4',
  // virtual network devices
  'tun', 'bridge', '8021q', 'veth', 'macvlan', 'dummy', 'bonding', 'wireguard',
  // device mapper and the crypto it asks for
  'dm_mod', 'dm_crypt', 'aesni_intel', 'xts', 'sha256_ssse3', 'crc32c_intel',
  // ACPI power button (a host's shutdown request), input events
  'button', 'evdev',
];

/** File system types whose mounts load character sets (`iocharset`, `codepage`). */
const CHARSET_FS = new Set(['vfat', 'msdos', 'exfat', 'iso9660', 'udf', 'ntfs3']);

/** File system types that are no kernel module. */
const NOT_MODULES = new Set(['auto', 'none', 'proc', 'sysfs', 'devtmpfs', 'tmpfs', 'ramfs', 'devpts', 'cgroup2', 'bind']);

/**
 * `boot.kernelPackage`, `boot.kernelParams`, `boot.console`, `boot.consoleLogLevel`, `boot.kernelModules`,
 * `boot.availableKernelModules`, `boot.blacklistedKernelModules`: the kernel a system boots, what it
 * is told on its command line, which of its modules it ships and which load.
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
        consoleLogLevel: mkOption({
          type: types.ints.between(0, 7),
          default: 4,
          description:
            'The kernel console log level (`loglevel=` on the command line): messages more important than it (a lower number) are printed on the console. ' +
            "As in NixOS, 4 by default: warnings and worse; every boot message the kernel prints on a serial console is boot time (the journal keeps them all).",
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
          description:
            'Kernel modules loaded in stage 2 (by systemd-modules-load), besides those udev loads for the hardware it finds. ' +
            'They and their dependencies are in the system\'s module tree. A name that is no module, built-in module or alias of this kernel fails the build.',
        }),
        availableKernelModules: mkOption({
          type: types.listOf(word),
          default: [],
          example: ['snd_hda_intel', 'nft_*'],
          description:
            'Kernel modules the running system can load on demand (udev, modprobe) without loading them at boot. Unlike NixOS, whose ' +
            "system holds the kernel's whole module tree, cairn ships only these, `boot.kernelModules`, the initrd's modules and the drivers of " +
            "`fileSystems` (each with its dependencies), since Debian's tree is ~400 MB; `hardware.enableAllHardware` ships all of it. " +
            'cairn adds a default set for VMs and common servers (virtio, common disk controllers and NICs, ext4, vfat, overlay, loop, tun, ' +
            'bridge, vlan, wireguard, device mapper, …); remove it with `lib.mkForce`. A name may be a glob over module names (`nft_*`).',
        }),
        extraModulePackages: mkOption({
          // Only the empty list passes: nixos-generate-config writes `boot.extraModulePackages = [ ]`,
          // which translates as it is; an entry is refused where it is written, saying why.
          type: types.listOf(
            lib.mkOptionType({
              name: 'outOfTreeModules',
              description:
                "an out-of-tree module package, which cairn cannot build yet (Debian ships them as DKMS sources, e.g. v4l2loopback-dkms, " +
                "built by maintainer scripts cairn never runs; the kernel package's own modules go in boot.kernelModules)",
              descriptionClass: 'noun',
              check: () => false,
              merge: (_loc, defs) => defs[0]?.value,
              jsonSchema: () => ({ not: {} }),
            }),
          ),
          default: [],
          description:
            "NixOS's packages of kernel modules built outside the kernel. Only `[]` is accepted: Debian ships such modules as DKMS sources, " +
            'which need a build against the kernel headers that cairn does not do yet. The modules of Debian\'s kernel package (WireGuard among them) ' +
            'are named in `boot.kernelModules`.',
        }),
        blacklistedKernelModules: mkOption({
          type: types.listOf(word),
          default: [],
          example: ['cirrusfb', 'i2c_piix4'],
          description:
            'Kernel modules that are not loaded automatically (by their aliases: hardware probing, a program asking for a protocol); ' +
            'they still load explicitly or as a dependency of another module. `blacklist` lines in /etc/modprobe.d/cairn-blacklist.conf; ' +
            "in the initrd, stage 1 does not load them for the devices it finds (their aliases are left out of its modules.alias).",
        }),
      },
      system: {
        build: {
          kernelModules: mkOption({
            type: types.nullOr(types.anything),
            internal: true,
            readOnly: true,
            get default() {
              if (config.hardware.enableAllHardware) return null;
              const b = config.boot;
              const fsTypes = [...new Set(Object.values(config.fileSystems).map((fs) => fs.fsType))].filter((t) => !NOT_MODULES.has(t)).sort();
              return {
                required: [...new Set([...b.kernelModules, ...b.availableKernelModules, ...b.initrd.modules])].sort(),
                // A type the kernel knows as `fs-<type>` only, or built in: taken when found, else mount says why.
                optional: fsTypes.flatMap((t) => [t, `fs-${t}`, ...(CHARSET_FS.has(t) ? ['nls_*'] : [])]),
              };
            },
            description: "What the system's module tree holds (`{ required, optional }` module names), or null for the kernel's whole tree.",
          }),
        },
      },
    },
    config: {
      boot: {
        availableKernelModules: DEFAULT_AVAILABLE,
        // A getter: the console list is read only when the parameters are.
        get kernelParams() {
          return lib.mkBefore([...config.boot.console.map((c) => `console=${c}`), `loglevel=${config.boot.consoleLogLevel}`]);
        },
      },
      systemd: {
        services: {
          // Units ask for modules through modprobe@<module>.service (the FUSE control file system,
          // configfs, logind's drm). When the module is already there (built in with parameters,
          // or loaded by stage 1 or udev), /sys/module/<module> exists and modprobe would do
          // nothing: the unit is skipped instead of starting a process (~0.4 s of CPU under emulation).
          // A reduced module tree skips the modules it does not have as well (its own drop-in, see
          // loadableModules in src/build/kernel.ts).
          'modprobe@': { overrideStrategy: 'asDropin', unitConfig: { ConditionPathExists: '!/sys/module/%i' } },
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
