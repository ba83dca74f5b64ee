import type { ModuleArgs } from '../../src/lib/index.js';

/** `environment.systemPackages`: the Debian packages installed system-wide. */
export default ({ lib }: ModuleArgs) => ({
  options: {
    environment: {
      systemPackages: lib.mkOption({
        type: lib.types.listOf(lib.types.package),
        default: [],
        example: ['vim', 'curl'],
        description: 'Debian packages in the system environment (by name); their dependencies come with them.',
      }),
    },
  },
});
