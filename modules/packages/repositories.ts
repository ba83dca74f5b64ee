import type { ModuleArgs } from '../config.js';

/**
 * `packages.*`: where Debian packages come from and how dependencies are followed.
 * With no repositories listed, cairn uses Debian 12 (bookworm, bookworm-updates,
 * bookworm-security; main; amd64) through the host's own apt configuration.
 */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const repository = types.submodule({
    options: {
      uri: mkOption({
        type: types.nullOr(types.str),
        default: null,
        description: "Base URI of the archive (the folder holding `dists/` and `pool/`). Default: the host apt configuration's URI for this suite.",
      }),
      suite: mkOption({ type: types.str, description: 'Suite (codename) to read, e.g. `bookworm-security`.' }),
      components: mkOption({ type: types.listOf(types.str), default: ['main'], description: 'Archive components to read.' }),
      architecture: mkOption({ type: types.str, default: 'amd64', description: 'Debian architecture of the packages.' }),
      keyring: mkOption({
        type: types.nullOr(types.str),
        default: null,
        description: "OpenPGP keys the suite's InRelease must be signed with: a keyring file (binary or armored), a folder of them, or an inline armored key block. Default: the host entry's Signed-By.",
      }),
    },
  });
  return {
    options: {
      packages: {
        repositories: mkOption({
          type: types.listOf(repository),
          default: [],
          description: "Debian repositories to resolve packages from, highest version winning across them (apt's default for equal pins). Empty: Debian 12 through the host's apt configuration.",
        }),
        installRecommends: mkOption({
          type: types.bool,
          default: false,
          description: 'Follow Recommends as well as Depends and Pre-Depends (off by default, for minimal systems as debootstrap and mkosi build).',
        }),
      },
    },
  };
};
