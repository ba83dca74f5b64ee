import type { ModuleArgs } from '../config.js';

/**
 * `system.debian.*`: the Debian release a system is built from. Its three suites (the release, its
 * updates and its security suite) are the default `packages.repositories`, found through the host's
 * apt configuration (another release's entries lend their archive: a Debian 12 host builds 13).
 * NixOS has no counterpart: its channel plays this part.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  return {
    options: {
      system: {
        debian: {
          release: mkOption({
            type: types.enum(['bookworm', 'trixie']),
            default: lib.debianDefaultRelease,
            example: 'bookworm',
            description:
              'The Debian release the system is built from: `trixie` (Debian 13, the stable release) or `bookworm` (Debian 12, in long-term support). ' +
              'A running system moves to another release by a switch (and back by a rollback); the lock pins the packages of the one chosen. ' +
              'When `packages.repositories` is set, its suites must be of this release.',
          }),
          components: mkOption({
            type: types.listOf(types.str),
            default: ['main'],
            example: ['main', 'non-free-firmware'],
            description:
              "Archive components of the release's default repositories (firmware and microcode options add `non-free-firmware`). " +
              'Ignored when `packages.repositories` is set.',
          }),
        },
      },
    },
    config: {
      get assertions() {
        const release = config.system.debian.release;
        const others = (config.packages.repositories as { suite: string }[])
          .map((r) => r.suite)
          .filter((s) => {
            const codename = lib.debianCodename(s);
            return codename !== undefined && codename !== release;
          });
        return others.length === 0
          ? []
          : [{
              assertion: false,
              message: `packages.repositories lists ${[...new Set(others)].join(', ')}, not of system.debian.release (${release}): set system.debian.release to the release those suites are of`,
            }];
      },
    },
  };
};
