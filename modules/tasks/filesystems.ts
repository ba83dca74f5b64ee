import type { ModuleArgs } from '../config.js';

/** `fileSystems.<mountpoint>` and `swapDevices`: what is mounted where, rendered to /etc/fstab. */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkDefault, types } = lib;
  const { ALWAYS_NEEDED_FOR_BOOT, NODEV, fsSpec, renderFstab } = lib.fileSystems;
  const nullStr = (description: string, example: string) => mkOption({ type: types.nullOr(types.nonEmptyStr), default: null, example, description });
  const fileSystem = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      mountPoint: mkOption({ type: types.path, default: name, description: 'Where it is mounted (the attribute name by default).' }),
      device: nullStr('The device node, e.g. `/dev/vda2` or `/dev/disk/by-partlabel/root`; it takes precedence over `uuid` and `label`.', '/dev/vda2'),
      label: nullStr('The file system label (`LABEL=…`); used when neither `device` nor `uuid` is set.', 'root'),
      uuid: nullStr('The file system UUID (`UUID=…`); used when `device` is not set.', '0a3407de-014b-458b-b5c1-848e92a327a3'),
      fsType: mkOption({ type: types.word, default: 'auto', example: 'ext4', description: 'The file system type (`auto` lets mount probe it).' }),
      options: mkOption({ type: types.listOf(types.strMatching('[^,\\s]+')), default: ['defaults'], example: ['noatime'], description: 'Mount options.' }),
      neededForBoot: mkOption({
        type: types.bool,
        default: false,
        description: `Mount it in stage 1, before systemd starts (needed for anything stage 2 reads early). Always true for ${ALWAYS_NEEDED_FOR_BOOT.join(', ')}.`,
      }),
      noCheck: mkOption({ type: types.bool, default: false, description: 'Never check it with fsck at boot.' }),
      autoResize: mkOption({
        type: types.bool,
        default: false,
        description:
          'Grow the file system to fill its partition or disk when it is mounted at boot (`x-systemd.growfs`: systemd-growfs, ' +
          'online, for ext4, xfs and btrfs). With `boot.growPartition`, the root partition is first grown to fill its disk.',
      }),
    },
  }));
  const swap = types.submodule({
    options: {
      device: nullStr('The swap partition or file, e.g. `/dev/vda3`.', '/dev/vda3'),
      label: nullStr('The swap label (`LABEL=…`) when `device` is not set.', 'swap'),
      uuid: nullStr('The swap UUID (`UUID=…`) when `device` is not set.', '5c8a3c3e-94b5-4d5e-9b7c-2c0f3e1a9b11'),
      priority: mkOption({ type: types.nullOr(types.ints.between(-1, 32767)), default: null, description: 'Swap priority (higher is used first).' }),
      options: mkOption({ type: types.listOf(types.strMatching('[^,\\s]+')), default: [], example: ['discard'], description: 'Swap options.' }),
      size: mkOption({
        type: types.nullOr(types.ints.positive),
        default: null,
        example: 2048,
        description:
          'The size of a swap file in MiB. When set, `device` is the path of a swap file, made at boot (before it is enabled) when ' +
          'missing or of another size, mode 0600.',
      }),
    },
  });
  /** systemd's name for a path (`systemd-escape --path`): `/var/swapfile` is `var-swapfile`. */
  const escapePath = (path: string): string => {
    const p = path.split('/').filter((c) => c !== '').join('/');
    let out = '';
    for (const [i, c] of [...p].entries()) {
      if (c === '/') out += '-';
      else if (/[A-Za-z0-9:_]/.test(c) || (c === '.' && i > 0)) out += c;
      else for (const b of Buffer.from(c)) out += `\\x${b.toString(16).padStart(2, '0')}`;
    }
    return out;
  };
  /** The service that makes swap file `sw.device` of `sw.size` MiB (NixOS's `mkswap-<name>`), before its swap unit. */
  const swapFileService = (device: string, size: number) => {
    const name = escapePath(device);
    return {
      [`mkswap-${name}`]: {
        description: `Initialisation of swap file ${device}`,
        before: [`${name}.swap`],
        requiredBy: [`${name}.swap`],
        unitConfig: { DefaultDependencies: false, RequiresMountsFor: device.replace(/\/[^/]*$/, '') || '/' },
        serviceConfig: { Type: 'oneshot' },
        script: lib.renderTemplate('tasks/filesystems.mkswap.sh', { file: lib.shellQuote(device), bytes: size * 1024 * 1024, size }),
      },
    };
  };
  return {
    options: {
      fileSystems: mkOption({
        type: types.attrsNamed(types.path, fileSystem),
        default: {},
        example: { '/data': { device: '/dev/vdb', fsType: 'ext4', options: ['noatime'] } },
        description: 'File systems by mount point, written to /etc/fstab (systemd mounts them); those needed for boot are also mounted by stage 1.',
      }),
      swapDevices: mkOption({
        type: types.listOf(swap),
        default: [],
        example: [{ label: 'swap' }],
        description: 'Swap partitions and files, written to /etc/fstab.',
      }),
    },
    config: {
      // The root a cairn image has: an ext4 file system labelled `root`. Field by field, so that
      // setting just `device` or `fsType` keeps the other defaults (`device` takes precedence over `label`).
      fileSystems: { '/': { label: mkDefault('root'), fsType: mkDefault('ext4') } },
      environment: {
        etc: {
          get fstab() {
            // autoResize is systemd-fstab-generator's `x-systemd.growfs` (a systemd-growfs@ unit per mount).
            const fss = Object.values(config.fileSystems).map((fs) => (fs.autoResize && !fs.options.includes('x-systemd.growfs') ? { ...fs, options: [...fs.options, 'x-systemd.growfs'] } : fs));
            return { text: renderFstab(fss, config.swapDevices) };
          },
        },
      },
      systemd: {
        get services() {
          // systemd-fstab-generator grows other file systems (systemd-growfs@) but not the root a running
          // system already has mounted: that is systemd's systemd-growfs-root.service, written here.
          const root = config.fileSystems['/'];
          const growRoot = root?.autoResize
            ? {
                'systemd-growfs-root': {
                  description: 'Grow Root File System',
                  wantedBy: ['local-fs.target'],
                  after: ['-.mount'],
                  before: ['local-fs.target', 'shutdown.target'],
                  conflicts: ['shutdown.target'],
                  unitConfig: { DefaultDependencies: false },
                  serviceConfig: { Type: 'oneshot', RemainAfterExit: true, ExecStart: '/lib/systemd/systemd-growfs /', TimeoutSec: 'infinity' },
                },
              }
            : {};
          return Object.assign(growRoot, ...config.swapDevices.filter((sw) => sw.size !== null && sw.device !== null && sw.device.startsWith('/')).map((sw) => swapFileService(sw.device!, sw.size!)));
        },
      },
      get assertions() {
        const fss = Object.entries(config.fileSystems);
        return [
          ...fss.map(([name, fs]) => ({
            assertion: fsSpec(fs) !== null || NODEV.includes(fs.fsType),
            message: `fileSystems."${name}" needs a device, uuid or label.`,
          })),
          ...config.swapDevices.map((sw, i) => ({
            assertion: fsSpec(sw) !== null,
            message: `swapDevices[${i}] needs a device, uuid or label.`,
          })),
          ...config.swapDevices.map((sw, i) => ({
            assertion: sw.size === null || (sw.device !== null && /^\/[^\s\x00-\x1f\x7f]*[^/]$/.test(sw.device) && !sw.device.startsWith('/dev/')),
            message: `swapDevices[${i}].size is set: device must then be the absolute path of a swap file (not below /dev), not ${JSON.stringify(sw.device)}.`,
          })),
        ];
      },
    },
  };
};
