import type { Package } from '../../src/lib/index.js';
import type { ModuleArgs } from '../config.js';
import { HOST_TOOLS } from '../../src/host/tools.js';
import { cairnVersion } from '../../src/paths.js';
import { runtimeHash, type SelfArgs } from '../../src/build/self.js';

/**
 * `programs.cairn`: cairn itself on the system, so that `cairn switch` works inside the machine.
 * It is the cairn that builds the system, copied into the store (src/build/self.ts), run by
 * Debian's Node (Debian 12 has Node 18, which the CLI bundle supports), with the host tools a build
 * drives (gpgv and Debian's archive keys, dpkg-deb, xz). Packages still come from
 * `packages.repositories`, or the machine's /etc/apt when they name no URI and keyring.
 */
export default ({ lib, config }: ModuleArgs) => {
  const cfg = config.programs.cairn;
  return {
    options: {
      programs: {
        cairn: {
          enable: lib.mkEnableOption('cairn on the system (`cairn` on the PATH, so `cairn switch` runs inside the machine)'),
          nodePackage: lib.mkPackageOption('nodejs', { extraDescription: 'cairn runs on its `/usr/bin/node`, which must be Node.js 18.19 or newer.' }),
        },
      },
    },
    config: lib.mkIf(cfg.enable, {
      environment: {
        systemPackages: [...new Set(HOST_TOOLS.filter((t) => t.build).map((t) => t.package))],
        // A getter: the hash reads cairn's files, only for systems that have it.
        get builtPackages() {
          const node = cfg.nodePackage.name;
          const args: SelfArgs = { files: runtimeHash(), node };
          return [{ name: `cairn-${cairnVersion()}`, builder: 'cairn:self', args, packages: [node] }];
        },
      },
    }),
  };
};
