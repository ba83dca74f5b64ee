import type { ModuleArgs } from '../config.js';

/** The system's identity: its name and the cairn release whose state layout it follows. */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  return {
    options: {
      system: {
        name: mkOption({
          type: types.strMatching('[A-Za-z0-9][A-Za-z0-9._-]*'),
          default: config.networking.hostName,
          defaultText: 'config.networking.hostName',
          description: 'The name of the system, used in the names of its builds and boot entries.',
        }),
        stateVersion: mkOption({
          type: types.strMatching('[0-9]+\\.[0-9]+'),
          default: '0.1',
          example: '0.1',
          description:
            'The cairn release whose defaults for stateful data (user ids, folder layouts) this system was first installed with. ' +
            'Keep it unchanged across upgrades; it is not the version of the software installed.',
        }),
      },
    },
  };
};
