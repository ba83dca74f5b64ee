import type { ModuleArgs } from '../config.js';

/**
 * `environment.systemPackages`: the Debian packages installed system-wide; and
 * `environment.builtPackages`: store paths that cairn's own builders make (cairn itself, see
 * programs.cairn), whose programs join the Debian ones in /usr/bin.
 */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const builtPackage = types.submodule({
    options: {
      name: mkOption({ type: types.str, description: 'Store name of the path: `/cairn/store/<hash>-<name>`.' }),
      builder: mkOption({ type: types.str, description: 'A registered builder (src/store/builders.ts).' }),
      args: mkOption({ type: types.attrsOf(types.anything), default: {}, description: "The builder's arguments; `packages` is added to them." }),
      packages: mkOption({
        type: types.listOf(types.package),
        default: [],
        description: 'Debian packages it is built from: installed with the system, their store paths its inputs, given to the builder as `args.packages` (name → store path).',
      }),
    },
  });
  return {
    options: {
      environment: {
        systemPackages: mkOption({
          type: types.listOf(types.package),
          default: [],
          example: ['vim', 'curl'],
          description: 'Debian packages in the system environment (by name); their dependencies come with them.',
        }),
        extraOutputsToInstall: mkOption({
          type: types.listOf(types.str),
          default: [],
          example: ['doc', 'lang-de'],
          description:
            "Outputs of the system's packages to install besides their main one (`out`). cairn splits each Debian package as Nix splits its " +
            'packages: `doc` (usr/share/doc, but the copyright files, which stay with the package), `man` (manual pages), `info` (info manuals) ' +
            'and, unlike Nix, one output per language of translations: `lang-<language>` (usr/share/locale/<language>; a translated manual ' +
            'page comes with `man` and its language). A package without such files has no such output. documentation.* and the i18n locales ' +
            'set this: a system holds only the translations of its locales.',
        }),
        builtPackages: mkOption({
          type: types.listOf(builtPackage),
          default: [],
          internal: true,
          description: "Store paths built by cairn's own builders rather than unpacked from Debian; the programs in their `bin/` are linked into /usr/bin.",
        }),
      },
    },
  };
};
