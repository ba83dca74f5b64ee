import type { ModuleArgs } from '../config.js';

/**
 * `packages.*`: where Debian packages come from and how dependencies are followed.
 * By default, the three suites of `system.debian.release` (e.g. trixie, trixie-updates,
 * trixie-security; main; amd64) through the host's own apt configuration.
 */
export default ({ lib, config }: ModuleArgs) => {
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
          get default() {
            const { release } = config.system.debian;
            // Several modules may each list `main` with their own component.
            const components = [...new Set(config.system.debian.components as string[])];
            return lib.debianSuites(release).map((suite) => ({ suite, components }));
          },
          defaultText: 'the suites <release>, <release>-updates and <release>-security of system.debian.release, with system.debian.components',
          description: "Debian repositories to resolve packages from, highest version winning across them (apt's default for equal pins). An entry without `uri` or `keyring` takes the host apt configuration's for its suite, or, where the host has none (a Debian 12 host building Debian 13), those of its entry for the same kind of suite of another release.",
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
