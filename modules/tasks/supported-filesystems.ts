import type { ModuleArgs } from '../config.js';

/** What each file system type needs on a running system: its tools' package. */
const TOOLS: Record<string, string> = {
  ext2: 'e2fsprogs', ext3: 'e2fsprogs', ext4: 'e2fsprogs', btrfs: 'btrfs-progs', xfs: 'xfsprogs', vfat: 'dosfstools', exfat: 'exfatprogs',
  f2fs: 'f2fs-tools', ntfs: 'ntfs-3g', ntfs3: 'ntfs-3g', nfs: 'nfs-common', nfs4: 'nfs-common', cifs: 'cifs-utils', squashfs: 'squashfs-tools',
};

/**
 * `boot.supportedFilesystems`: file system types the running system can mount and make: their
 * kernel drivers among the available modules, and their tools (mkfs, fsck) installed.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const fs = () => config.boot.supportedFilesystems;
  return {
    options: {
      boot: {
        supportedFilesystems: mkOption({
          type: types.listOf(types.strMatching('[a-z0-9]+')),
          default: [],
          example: ['btrfs', 'xfs'],
          description:
            'File system types the system can mount after boot (besides those of `fileSystems`): their kernel modules and tools ' +
            `(${Object.entries(TOOLS).map(([t, p]) => `${t}: ${p}`).join(', ')}). For stage 1, see \`boot.initrd.supportedFilesystems\`.`,
        }),
      },
    },
    config: {
      boot: {
        get availableKernelModules() {
          // Every file system driver has the alias `fs-<type>` (the name mount asks the kernel for).
          return fs().map((t) => `fs-${t}`);
        },
      },
      environment: {
        get systemPackages() {
          return [...new Set(fs().flatMap((t) => (TOOLS[t] ? [TOOLS[t]!] : [])))];
        },
      },
    },
  };
};
