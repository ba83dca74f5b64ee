import type { CommandModule } from 'yargs';
import { Store } from '../../store/index.js';
import { buildSystem } from '../../build/index.js';
import { evalConfigFile } from '../../eval/index.js';
import { progressReporter } from '../progress.js';
import { addGeneration } from '../../generations/index.js';

interface BuildArgs {
  config: string;
  json?: boolean;
  jobs?: number;
  'out-link': string;
  link?: boolean;
  profile?: string;
}

const buildCommand: CommandModule<object, BuildArgs> = {
  command: 'build <config>',
  describe: 'Build the system of a configuration: prints its toplevel store path and links it at ./result',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Configuration file' })
      .option('json', { type: 'boolean', describe: 'Print JSON: { toplevel, sw, etc, kernel, initrd, packages, closureSize } (instead of the toplevel)' })
      .option('jobs', { type: 'number', describe: 'Packages unpacked at once (default: CPU count)' })
      .option('out-link', { type: 'string', default: 'result', describe: 'Where to link the toplevel (a GC root)' })
      .option('link', { type: 'boolean', default: true, describe: 'Make the out-link (--no-link: only print the path)' })
      .option('profile', { type: 'string', describe: 'Also make the toplevel the newest generation of this profile (a folder path ending in the profile name)' }),
  handler: async (args) => {
    const store = Store.open();
    const report = progressReporter();
    const built = await buildSystem(await evalConfigFile(args.config), { store, jobs: args.jobs, onProgress: report.progress });
    report.done();
    for (const w of built.warnings) report.warn(w);
    // The link is replaced by one rename (and registered as a GC root) only once the toplevel is valid.
    if (args.link) store.addRoot(args['out-link'], built.toplevel);
    if (args.profile) process.stderr.write(`generation ${addGeneration(store, args.profile, built.toplevel)} of ${args.profile}\n`);
    if (args.json) {
      const closureSize = built.closure.reduce((n, p) => n + store.pathInfo(p).narSize, 0);
      const { toplevel, sw, etc, kernel, initrd, packages } = built;
      // One JSON document and nothing else, for tools that parse stdout: the toplevel is in it.
      process.stdout.write(JSON.stringify({ toplevel, sw, etc, kernel, initrd, packages, closureSize }, null, 2) + '\n');
    } else {
      process.stdout.write(`${built.toplevel}\n`);
    }
  },
};

/** `cairn build`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const buildCommands: CommandModule<any, any>[] = [buildCommand];
