import type { ModuleArgs } from '../config.js';

/** `programs.htop`: htop, and its system-wide defaults /etc/htoprc from `settings` (as NixOS). */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.programs.htop;
  const scalar = types.oneOf([types.bool, types.int, types.singleLineStr]);
  const show = (v: string | number | boolean) => (v === true ? '1' : v === false ? '0' : String(v));
  return {
    options: {
      programs: {
        htop: {
          enable: mkOption({ type: types.bool, default: false, description: 'Whether to install htop.' }),
          package: lib.mkPackageOption('htop', { default: 'htop' }),
          settings: mkOption({
            type: types.attrsNamed(types.strMatching('[A-Za-z0-9_]+'), types.either(scalar, types.listOf(scalar))),
            default: {},
            example: { hide_kernel_threads: true, show_program_path: false, tree_view: true },
            description: "htop's settings (htoprc keys; booleans are 1/0, a list is space-separated), the defaults of users without their own ~/.config/htop/htoprc.",
          }),
        },
      },
    },
    config: mkIf(cfg.enable, {
      environment: {
        get systemPackages() {
          return [cfg.package];
        },
        etc: {
          htoprc: lib.mkIf(() => Object.keys(cfg.settings).length > 0, {
            get text() {
              return Object.entries(cfg.settings)
                .map(([k, v]) => `${k}=${Array.isArray(v) ? v.map(show).join(' ') : show(v)}\n`)
                .join('');
            },
          }),
        },
      },
    }),
  };
};
