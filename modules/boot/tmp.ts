import type { ModuleArgs } from '../config.js';

/** `boot.tmp`: /tmp emptied at boot, or a tmpfs (as NixOS's system/boot/tmp.nix). */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.boot.tmp;
  return {
    imports: [
      lib.mkRenamedOptionModule(['boot', 'cleanTmpDir'], ['boot', 'tmp', 'cleanOnBoot']),
      lib.mkRenamedOptionModule(['boot', 'tmpOnTmpfs'], ['boot', 'tmp', 'useTmpfs']),
      lib.mkRenamedOptionModule(['boot', 'tmpOnTmpfsSize'], ['boot', 'tmp', 'tmpfsSize']),
    ],
    options: {
      boot: {
        tmp: {
          cleanOnBoot: mkOption({ type: types.bool, default: false, description: 'Whether to delete everything in /tmp at boot (systemd-tmpfiles).' }),
          useTmpfs: mkOption({
            type: types.bool,
            default: false,
            description:
              'Whether /tmp is a tmpfs (in memory, empty at every boot). Large files in /tmp then take memory or swap. ' +
              "Off (as in NixOS), /tmp is a folder of the root: Debian 13's own tmp.mount is masked.",
          }),
          tmpfsSize: mkOption({
            type: types.strMatching('[0-9]+[kmgKMG%]?'),
            default: '50%',
            example: '2G',
            description: "The most memory the /tmp tmpfs takes (its `size=`): bytes with a k, m or g suffix, or a percentage of RAM.",
          }),
        },
      },
    },
    config: mkMerge([
      mkIf(cfg.useTmpfs, {
        fileSystems: {
          '/tmp': { device: 'tmpfs', fsType: 'tmpfs', get options() { return ['mode=1777', 'strictatime', 'rw', 'nosuid', 'nodev', `size=${cfg.tmpfsSize}`]; } },
        },
      }),
      mkIf(cfg.cleanOnBoot, { systemd: { tmpfiles: { rules: ['D! /tmp 1777 root root'] } } }),
      // Debian 13's systemd mounts a tmpfs on /tmp by its own tmp.mount (enabled in the package);
      // as in NixOS, /tmp is on the root unless this option or fileSystems."/tmp" says otherwise.
      // fstab's mounts come from a generator, which /etc overrides: masked only when none is declared.
      mkIf(() => !('/tmp' in config.fileSystems), {
        environment: { etc: { 'systemd/system/tmp.mount': { symlink: '/dev/null' } } },
      }),
    ]),
  };
};
