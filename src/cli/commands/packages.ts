import type { CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { evalConfigFile } from '../../eval/index.js';
import { Store } from '../../store/index.js';
import { lockPackages, lockPathFor, realisePackages, type PackageRequest } from '../../debian/index.js';

/**
 * The package part of a configuration: `environment.systemPackages` (names or package values),
 * `packages.repositories` and `packages.installRecommends`.
 */
export async function packageRequestOf(configPath: string): Promise<PackageRequest & { outputs: string[] }> {
  const { spec } = await evalConfigFile(configPath);
  const { system, repositories, installRecommends, outputs } = spec.packages;
  return { packages: system, repositories, installRecommends, outputs };
}

interface PackagesArgs {
  config: string;
  json?: boolean;
  jobs?: number;
}

const packagesCommand: CommandModule<object, PackagesArgs> = {
  command: 'packages <config>',
  describe: 'Resolve, download and unpack the Debian packages of a configuration into the store',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Configuration file' })
      .option('json', { type: 'boolean', describe: 'Print JSON: [{ name, version, sha256, storePath, outputs }] (storePath: the main output; outputs: those environment.extraOutputsToInstall asks for)' })
      .option('jobs', { type: 'number', describe: 'Packages unpacked at once (default: CPU count)' }),
  handler: async (args) => {
    const request = await packageRequestOf(args.config);
    const lockPath = lockPathFor(resolve(args.config));
    const { lock, repositories, resolved } = await lockPackages(request, { lockPath });
    if (resolved) process.stderr.write(`wrote ${lockPath} (${lock.packages.length} packages)\n`);
    const tty = Boolean(process.stderr.isTTY);
    const result = await realisePackages(lock, repositories, Store.open(), {
      jobs: args.jobs,
      progress: tty,
      outputs: request.outputs,
      onProgress: tty ? (done, total, name) => process.stderr.write(`\r\x1b[Kunpacking ${done}/${total} ${name}`) : undefined,
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (args.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else for (const p of result) process.stdout.write(`${p.name} ${p.version} ${p.storePath}\n`);
  },
};

interface LockArgs {
  config: string;
  update?: string[];
}

const lockCommand: CommandModule<object, LockArgs> = {
  command: 'lock <config>',
  describe: 'Create or refresh the lock beside the configuration, CONFIG.lock (--update PKG… moves only those packages)',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Configuration file' })
      .option('update', { type: 'string', array: true, describe: 'Re-resolve moving only these packages; the others keep their locked versions' }),
  handler: async (args) => {
    const request = await packageRequestOf(args.config);
    const lockPath = lockPathFor(resolve(args.config));
    const { lock } = await lockPackages(request, { lockPath, update: args.update && args.update.length > 0 ? args.update : true });
    process.stderr.write(`wrote ${lockPath} (${lock.packages.length} packages)\n`);
  },
};

/** `cairn packages` and `cairn lock`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const packagesCommands: CommandModule<any, any>[] = [packagesCommand, lockCommand];
