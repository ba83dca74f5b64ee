import type { CommandModule } from 'yargs';
import { basename, extname } from 'node:path';
import { Store } from '../../store/index.js';
import { buildSystem } from '../../build/index.js';
import { evalConfigFile } from '../../eval/index.js';
import { buildImage, findFormat, parseSize } from '../../image/index.js';
import { progressReporter } from '../progress.js';
import { listGenerations } from '../../generations/index.js';

interface ImageArgs {
  config: string;
  format: string;
  output?: string;
  size: string;
  generations?: string[];
  profile?: string;
  json?: boolean;
  jobs?: number;
}

const imageCommand: CommandModule<object, ImageArgs> = {
  command: 'image <config>',
  describe: 'Build the system and a bootable disk image of it (GPT: ESP with systemd-boot, ext4 root), as a normal user',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Configuration file' })
      .option('format', { type: 'string', default: 'raw', describe: 'raw|qcow2 (raw-efi, qcow2-efi), or a format .json file' })
      .option('output', { alias: 'o', type: 'string', describe: 'Image file (default: <config name>.<format extension>)' })
      .option('size', { type: 'string', default: 'auto', describe: 'Disk size: auto (closure + image.headroom) or e.g. 4G' })
      .option('generations', {
        type: 'string',
        array: true,
        describe: 'Older generations to carry, oldest first (toplevel store paths or links such as ./result); the configuration becomes the newest, default entry',
      })
      .option('profile', { type: 'string', describe: 'Carry every generation of this profile (numbered as there); the configuration follows as the newest unless it is the newest already' })
      .option('jobs', { type: 'number', describe: 'Packages unpacked at once (default: CPU count)' })
      .option('json', { type: 'boolean', describe: 'Print JSON: { output, format, bytes, generations, defaultGeneration, toplevel }' }),
  handler: async (args) => {
    const format = findFormat(args.format);
    // Checked before the build: a typo should not cost one.
    if (args.size !== 'auto') parseSize(args.size, '--size');
    const store = Store.open();
    const report = progressReporter();
    const built = await buildSystem(await evalConfigFile(args.config), { store, jobs: args.jobs, onProgress: report.progress });
    for (const w of built.warnings) report.warn(w);
    // A profile's generations keep their numbers; --generations and the configuration follow them.
    const gens = args.profile ? listGenerations(store, args.profile).map((g) => ({ number: g.number, toplevel: g.toplevel })) : [];
    for (const t of [...(args.generations ?? []).map((g) => store.resolve(g)), built.toplevel]) {
      if (gens[gens.length - 1]?.toplevel !== t) gens.push({ number: (gens[gens.length - 1]?.number ?? 0) + 1, toplevel: t });
    }
    const output = args.output ?? `${basename(args.config, extname(args.config))}.${format.extension}`;
    const image = await buildImage({ store, format, toplevels: gens.map((g) => g.toplevel), numbers: gens.map((g) => g.number), output, size: args.size, onProgress: report.progress });
    report.done();
    if (args.json) {
      process.stdout.write(
        JSON.stringify(
          { output: image.output, format: image.format, bytes: image.bytes, generations: image.generations, defaultGeneration: image.defaultGeneration, toplevel: built.toplevel },
          null,
          2,
        ) + '\n',
      );
    } else {
      process.stdout.write(`${image.output}\n`);
    }
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const imageCommands: CommandModule<any, any>[] = [imageCommand];
