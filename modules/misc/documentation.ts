import type { ModuleArgs } from '../config.js';

/**
 * `documentation.{enable,man.enable,doc.enable,info.enable}`: which documentation outputs of the
 * system's Debian packages the system holds (environment.extraOutputsToInstall), and the programs
 * that read them. Without them, the packages' manual pages, info manuals and /usr/share/doc are
 * not in the system's closure at all.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.documentation;
  const on = (kind: 'man' | 'doc' | 'info') => () => cfg.enable && cfg[kind].enable;
  return {
    options: {
      documentation: {
        enable: mkOption({ type: types.bool, default: true, description: 'Whether documentation tools may be installed (the kinds below); off turns all of them off.' }),
        man: {
          enable: mkOption({
            type: types.bool,
            default: false,
            description:
              "Whether to install manual pages and `man` (man-db) to read them: the packages' `man` outputs (translated pages too, for the " +
              "languages of the system's locales). Unlike NixOS, off by default: cairn builds minimal servers, most administered from elsewhere, " +
              'and without it no manual page is in the closure.',
          }),
        },
        doc: {
          enable: mkOption({
            type: types.bool,
            default: false,
            description:
              "Whether to install the documentation the packages ship in /usr/share/doc (their `doc` outputs: plain text, HTML, examples). " +
              'The copyright files are installed either way. Unlike NixOS, off by default, as documentation.man.enable.',
          }),
        },
        info: {
          enable: mkOption({
            type: types.bool,
            default: false,
            description:
              "Whether to install info manuals (the packages' `info` outputs) and the `info` command. Unlike NixOS, off by default, " +
              'as documentation.man.enable. The menu `info` opens (usr/share/info/dir) is made at build time, as install-info\'s trigger would.',
          }),
        },
      },
    },
    config: mkMerge([
      mkIf(on('man'), { environment: { systemPackages: ['man-db'], extraOutputsToInstall: ['man'] } }),
      mkIf(on('doc'), { environment: { extraOutputsToInstall: ['doc'] } }),
      mkIf(on('info'), { environment: { systemPackages: ['info'], extraOutputsToInstall: ['info'] } }),
    ]),
  };
};
