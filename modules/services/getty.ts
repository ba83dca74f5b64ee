import type { ModuleArgs } from '../config.js';

/**
 * `services.getty`: login prompts. The serial console (`serial-getty@<tty>`, the packaged
 * template unit, enabled through a link) can log a user in without a password, which is what a
 * VM under test wants and what a machine in production must not have.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const cfg = config.services.getty;
  return {
    options: {
      services: {
        getty: {
          serialConsoles: mkOption({ type: types.listOf(types.strMatching('tty[A-Za-z0-9]+|hvc[0-9]+')), default: ['ttyS0'], description: 'Serial terminals with a login prompt.' }),
          autologinUser: mkOption({ type: types.nullOr(types.accountName), default: null, example: 'root', description: 'A user logged in on the serial consoles without a password (for VMs and tests only).' }),
          baudRate: mkOption({ type: types.ints.positive, default: 115200, description: 'The speed of the serial consoles.' }),
          extraArgs: mkOption({ type: types.listOf(types.word), default: [], description: 'More agetty arguments.' }),
        },
      },
    },
    config: {
      systemd: {
        get services() {
          const services: Record<string, unknown> = {};
          const autologin = cfg.autologinUser;
          const args = [...(autologin !== null ? ['--autologin', autologin] : []), ...cfg.extraArgs, '--keep-baud', `${cfg.baudRate},57600,38400,9600`, '-', '$TERM'];
          // login's options replace agetty's own, so an automatic login must ask for -f (no password) itself.
          const loginOptions = autologin !== null ? '-p -f -- \\\\u' : '-p -- \\\\u';
          for (const tty of cfg.serialConsoles) {
            services[`serial-getty@${tty}`] = {
              overrideStrategy: 'asDropin',
              wantedBy: ['getty.target'],
              serviceConfig: {
                // An empty ExecStart= first clears the packaged command, as a drop-in must.
                ExecStart: ['', `-/sbin/agetty -o '${loginOptions}' ${args.join(' ')}`],
              },
            };
          }
          return services;
        },
      },
    },
  };
};
