import type { CommandModule } from 'yargs';

// Filled in with the module system: eval, option, options, schema.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const evalCommands: CommandModule<any, any>[] = [];
