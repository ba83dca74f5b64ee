import type { ModuleArgs } from '../config.js';

/**
 * `documentation.enable`, `documentation.man.enable`: the `man` command (man-db) to read the
 * manual pages the system's Debian packages ship (they are kept in the system either way).
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.documentation;
  return {
    options: {
      documentation: {
        enable: mkOption({ type: types.bool, default: true, description: 'Whether documentation tools may be installed (the kinds below); off turns all of them off.' }),
        man: {
          enable: mkOption({
            type: types.bool,
            default: false,
            description:
              "Whether to install `man` (man-db) to read the packages' manual pages. Unlike NixOS, off by default: cairn builds minimal servers, " +
              'and most are administered from elsewhere.',
          }),
        },
      },
    },
    config: mkIf(() => cfg.enable && cfg.man.enable, { environment: { systemPackages: ['man-db'] } }),
  };
};
