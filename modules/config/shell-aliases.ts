import type { ModuleArgs } from '../config.js';

/** `environment.shellAliases`: aliases of interactive shells, in /etc/profile.d/cairn-aliases.sh. */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const aliases = config.environment.shellAliases;
  return {
    options: {
      environment: {
        shellAliases: mkOption({
          // An alias name is one word of the shell: no quoting, `=`, `$` or `/` in it.
          type: types.attrsNamed(types.strMatching('[A-Za-z0-9_.:+@%,-]+'), types.singleLineStr),
          default: {},
          example: { ll: 'ls -l', jf: 'journalctl -f' },
          description: 'Shell aliases of all users, by name.',
        }),
      },
    },
    config: mkIf(Object.keys(aliases).length > 0, {
      environment: {
        etc: {
          'profile.d/cairn-aliases.sh': {
            text: lib.renderTemplate('config/shell-aliases.aliases.sh', {
              aliases: Object.entries(aliases).map(([name, value]) => ({ name, quoted: lib.shellQuote(value) })),
            }),
          },
        },
      },
    }),
  };
};
