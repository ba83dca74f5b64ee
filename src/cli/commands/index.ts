import type { CommandModule } from 'yargs';
import { doctorCommands } from './doctor.js';
import { evalCommands } from './eval.js';
import { storeCommands } from './store.js';
import { packagesCommands } from './packages.js';
import { buildCommands } from './build.js';
import { imageCommands } from './image.js';
import { vmCommands } from './vm.js';
import { testCommands } from './test.js';
import { generationsCommands } from './generations.js';
import { switchCommands } from './switch.js';
import { initCommands } from './init.js';
import { secretsCommands } from './secrets.js';

/** Every `cairn` subcommand; each area of the engine contributes its own file. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [...evalCommands, ...doctorCommands, ...storeCommands, ...packagesCommands, ...buildCommands, ...imageCommands, ...vmCommands, ...testCommands, ...generationsCommands, ...switchCommands, ...initCommands, ...secretsCommands];
