import type { CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { CairnError } from '../../errors.js';
import { evalConfigFile } from '../../eval/index.js';
import { Store } from '../../store/index.js';
import { lockPackages, lockPathFor, realisePackages, type PackageRequest, type RepositorySpec } from '../../debian/index.js';

/**
 * The package part of a configuration: `environment.systemPackages` (names or package values),
 * `packages.repositories` and `packages.installRecommends`.
 */
export async function packageRequestOf(configPath: string): Promise<PackageRequest> {
  const { config } = await evalConfigFile(configPath);
  const raw = (config.environment?.systemPackages ?? []) as unknown[];
  const packages = raw.map((p) => {
    if (typeof p === 'string') return p;
    if (p && typeof p === 'object' && typeof (p as { name?: unknown }).name === 'string') return (p as { name: string }).name;
    throw new CairnError(`environment.systemPackages: cannot use ${JSON.stringify(p)} as a Debian package`);
  });
  const repos = ((config.packages?.repositories ?? []) as { uri: string | null; suite: string; components: string[]; architecture: string; keyring: string | null }[])
    .map((r): RepositorySpec => ({
      suite: r.suite,
      components: r.components,
      architecture: r.architecture,
      ...(r.uri ? { uri: r.uri } : {}),
      ...(r.keyring ? { keyring: r.keyring } : {}),
    }));
  return { packages, repositories: repos, installRecommends: Boolean(config.packages?.installRecommends) };
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
      .option('json', { type: 'boolean', describe: 'Print JSON: [{ name, version, sha256, storePath }]' })
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
