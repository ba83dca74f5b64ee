import type { ModuleArgs } from '../config.js';

/** `assertions` and `warnings`: checked and printed after evaluation, as in NixOS. */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  return {
    options: {
      assertions: mkOption({
        type: types.listOf(
          types.submodule({
            options: {
              assertion: mkOption({ type: types.bool, description: 'Must hold for the configuration to be built.' }),
              message: mkOption({ type: types.str, description: 'Shown when the assertion fails.' }),
            },
          }),
        ),
        default: [],
        internal: true,
        description: 'Conditions a configuration must meet; every failing message is reported.',
      }),
      warnings: mkOption({
        type: types.listOf(types.str),
        default: [],
        internal: true,
        description: 'Messages printed when the configuration is evaluated.',
      }),
    },
  };
};
