import type { ModuleArgs } from '../config.js';

/** The ESP's default mount: on first access, unmounted after two idle minutes (systemd-gpt-auto-generator's ESP automount). */
const ESP_AUTOMOUNT = ['x-systemd.automount', 'x-systemd.idle-timeout=120'];

/**
 * `boot.loader.*`: systemd-boot with one Boot Loader Specification entry per generation on the
 * EFI system partition, and/or GRUB for BIOS machines: its core image in the disk's BIOS boot
 * partition, its `grub.cfg`, kernels and initrds on the same FAT partition (GRUB reads FAT), so
 * both loaders (a hybrid disk) list the same files. Images write the first entries; from then on each generation's
 * `bin/install-bootloader` (run by switch-to-configuration `switch` and `boot`) rewrites them on
 * the ESP mounted at `boot.loader.efi.efiSysMountPoint`. The build records these settings in each
 * toplevel (boot.json and `boot/`); the generation being switched to decides them for the menu.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, mkDefault, mkOptionDefault, types } = lib;
  const cfg = config.boot.loader['systemd-boot'];
  const grub = config.boot.loader.grub;
  return {
    options: {
      boot: {
        loader: {
          timeout: mkOption({
            type: types.nullOr(types.ints.unsigned),
            default: 5,
            description: 'Seconds the boot menu waits before booting the default entry; null waits for a key, 0 boots at once. The default of `systemd-boot.timeout` and GRUB\'s menu timeout.',
          }),
          grub: {
            enable: mkOption({
              type: types.bool,
              default: false,
              description:
                'Whether GRUB boots the machine from BIOS (legacy boot, cloud VPSes without UEFI). Images with a BIOS boot partition ' +
                '(`--format raw-bios`, or `raw-hybrid` together with systemd-boot) get GRUB\'s boot sector and core image; `grub.cfg` ' +
                '(one menu entry per generation, the current one the default), kernels and initrds live on the FAT partition mounted at ' +
                '`boot.loader.efi.efiSysMountPoint`, kept in step by `cairn switch`/`cairn boot`, rollbacks and `cairn generations delete`. ' +
                'Turns systemd-boot off unless it is enabled explicitly (then the disk boots under BIOS and UEFI).',
            }),
            device: mkOption({
              type: types.str,
              default: '',
              example: '/dev/vda',
              description: 'The disk whose boot sector and BIOS boot partition `cairn boot --root` installs GRUB to (`nodev`: none). Added to `devices`.',
            }),
            devices: mkOption({
              type: types.listOf(types.str),
              default: [],
              example: ['/dev/sda', '/dev/sdb'],
              description: 'Disks GRUB is installed to by `cairn boot --root`, each with a BIOS boot partition (GPT type 21686148-6449-6E6F-744E-656564454649).',
            }),
            configurationLimit: mkOption({
              type: types.ints.positive,
              default: 100,
              description: 'At most this many generations get a menu entry (the newest, and always the current one).',
            }),
            extraEntries: mkOption({
              type: types.lines,
              default: '',
              example: "menuentry 'Reboot' {\n  reboot\n}",
              description: 'GRUB script added after the generations\' menu entries, as written (its author\'s on purpose).',
            }),
          },
          efi: {
            efiSysMountPoint: mkOption({
              type: types.path,
              default: '/boot',
              description:
                'Where the EFI system partition is mounted: switches write the boot entries, kernels and initrds there. ' +
                "Unless `fileSystems` defines this mount's `options`, it is an automount (`x-systemd.automount`, `x-systemd.idle-timeout=120`, " +
                "as systemd's generators mount an ESP): mounted on first access, so the boot does not wait for its device, and unmounted when idle.",
            }),
          },
          'systemd-boot': {
            enable: mkOption({
              type: types.bool,
              defaultText: '!boot.loader.grub.enable',
              description:
                'Whether systemd-boot is the boot loader (UEFI): disk images install it with one entry per generation, and ' +
                '`cairn switch`/`cairn boot` keep the entries in step with the system profile. Its EFI binary comes from the ' +
                '`systemd-boot-efi` package, which becomes part of the system.',
            }),
            timeout: mkOption({
              type: types.nullOr(types.ints.unsigned),
              defaultText: 'boot.loader.timeout',
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
              description: 'At most this many generations get a boot entry (the newest, and always the current one); null keeps all. Limits what the ESP must hold.',
            }),
            bootCounting: {
              enable: mkOption({
                type: types.bool,
                default: true,
                description:
                  'Automatic boot assessment (Boot Loader Specification): the entry of a generation a switch makes the default is ' +
                  'written with `tries`; systemd-boot counts each boot down, `systemd-bless-boot` marks the entry good once ' +
                  '`boot-complete.target` is reached, and an entry out of tries is skipped, so the machine falls back to the ' +
                  'previous generation. Units that must work for a boot to count as good declare `requiredBy = [ "boot-complete.target" ]` ' +
                  'and `before = [ "boot-complete.target" ]`. Adds the `systemd-boot` package (systemd-bless-boot, bootctl).',
              }),
              tries: mkOption({
                type: types.ints.positive,
                default: 3,
                description: 'Boots a new generation gets to reach boot-complete.target before it is abandoned.',
              }),
            },
          },
        },
      },
    },
    config: {
      boot: {
        loader: {
          // GRUB replaces systemd-boot unless both are asked for (a hybrid BIOS/UEFI disk).
          'systemd-boot': {
            get enable() {
              return mkOptionDefault(!grub.enable);
            },
            get timeout() {
              return mkOptionDefault(config.boot.loader.timeout);
            },
          },
          grub: {
            get devices() {
              return mkIf(grub.device !== '' && grub.device !== 'nodev', [grub.device]);
            },
          },
        },
      },
      environment: {
        systemPackages: mkMerge([mkIf(cfg.enable, ['systemd-boot-efi']), mkIf(() => cfg.enable && cfg.bootCounting.enable, ['systemd-boot'])]),
      },
      // A getter: the mount point is a name read from config. umask: the ESP holds the loader's
      // random seed; only root reads it. Mounted on first access, as systemd's own generators mount
      // an ESP: the boot does not wait for udev to find its device (local-fs.target would), and the
      // FAT file system, which has no journal, is unmounted again when idle. Not when stage 1
      // mounts it (neededForBoot): an automount over a mounted file system fails to start.
      get fileSystems() {
        const vm = config.virtualisation;
        // A VM booted directly (no firmware, no loader) has no ESP to mount.
        const hasEsp = (cfg.enable || grub.enable) && !(vm.vm && !vm.useBootLoader);
        const esp = config.boot.loader.efi.efiSysMountPoint;
        return mkIf(hasEsp, {
          [esp]: {
            label: mkDefault('ESP'),
            fsType: mkDefault('vfat'),
            get options() {
              return mkDefault(config.fileSystems[esp]!.neededForBoot ? ['umask=0077'] : ['umask=0077', ...ESP_AUTOMOUNT]);
            },
          },
        });
      },
    },
  };
};
