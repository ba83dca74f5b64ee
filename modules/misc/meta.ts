import type { ModuleArgs } from '../../src/lib/index.js';

/**
 * `meta`: a module's `meta` attribute defines this option, as in NixOS. cairn keeps no structured
 * fields in it; it is free-form information about the modules, merged like any attribute set.
 */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  return {
    options: {
      meta: mkOption({
        type: types.attrsOf(types.anything),
        default: {},
        example: { owner: 'ops' },
        description: 'Free-form information about the modules: the `meta` attribute of each, merged.',
      }),
    },
  };
};
