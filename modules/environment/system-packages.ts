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
