// A user module in TypeScript: declares `motd.*` and turns it into /etc/motd.
// Everything comes through the arguments; `import type` only helps editors.
import type { ModuleArgs } from '../../src/lib/index.js';

export default ({ config, lib }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.motd;
  return {
    options: {
      motd: {
        enable: lib.mkEnableOption('a message of the day'),
        lines: mkOption({
          type: types.listOf(types.str),
          default: [],
          description: 'Lines of /etc/motd, after the greeting.',
        }),
      },
    },
    config: mkIf(cfg.enable, {
      environment: {
        etc: {
          motd: {
            get text() {
              return [`This is ${config.networking.hostName}.`, ...cfg.lines].join('\n') + '\n';
            },
          },
        },
      },
    }),
  };
};
