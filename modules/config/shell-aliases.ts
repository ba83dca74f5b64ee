import type { ModuleArgs } from '../../src/lib/index.js';
import { shellQuote } from './variables.js';

/** `environment.shellAliases`: aliases of interactive shells, in /etc/profile.d/cairn-aliases.sh. */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const aliases = config.environment.shellAliases;
  return {
    options: {
      environment: {
        shellAliases: mkOption({
          type: types.attrsOf(types.strMatching('[^\n]*')),
          default: {},
          example: { ll: 'ls -l', jf: 'journalctl -f' },
          description: 'Shell aliases of all users, by name.',
        }),
      },
    },
    config: mkIf(() => Object.keys(aliases as object).length > 0, {
      environment: {
        etc: {
          'profile.d/cairn-aliases.sh': {
            get text() {
              const list = Object.entries(aliases as Record<string, string>).map(([name, value]) => ({ name, quoted: shellQuote(value) }));
              return lib.renderTemplate('profile/aliases.sh', { aliases: list });
            },
          },
        },
      },
    }),
  };
};
