import type { Argv, CommandModule } from 'yargs';
import { collectGarbage, diffClosures, formatBytes, formatChange, repairStore, Store, verifyStore, type PathInfo } from '../../store/index.js';

/** A progress line on stderr when it is a terminal; nothing otherwise (logs and pipes stay clean). */
function progress(label: string): { update: (done: number, total: number) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  return {
    update(done, total) {
      const now = Date.now();
      if (!tty || (now - last < 100 && done !== total)) return;
      last = now;
      process.stderr.write(`\r${label} ${done}/${total}\x1b[K`);
    },
    done() {
      if (tty && last !== 0) process.stderr.write('\r\x1b[K');
    },
  };
}

function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

interface PathInfoArgs {
  paths: string[];
  closure?: boolean;
  size?: boolean;
  json?: boolean;
}

const pathInfo: CommandModule<object, PathInfoArgs> = {
  command: 'path-info <paths..>',
  describe: 'Show metadata of store paths (logical, physical, or links such as ./result)',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'Store paths or links to them' })
      .option('closure', { alias: 'r', type: 'boolean', describe: 'Also show everything they refer to, recursively' })
      .option('size', { alias: 's', type: 'boolean', describe: 'Show each path’s size and closure size' })
      .option('json', { type: 'boolean', describe: 'Print JSON' }) as unknown as Argv<PathInfoArgs>,
  handler: (argv) => {
    const store = Store.open();
    const roots = [...new Set(argv.paths.map((p) => store.resolve(p)))];
    for (const p of roots) store.pathInfo(p); // a CairnError for an invalid one
    const list = argv.closure ? store.closure(roots) : roots;
    const closureSize = (p: string): number => store.closure([p]).reduce((n, q) => n + store.pathInfo(q).narSize, 0);
    if (argv.json) {
      printJson(list.map((p): PathInfo & { closureSize?: number } => {
        const info = store.pathInfo(p);
        return argv.size ? { ...info, closureSize: closureSize(p) } : info;
      }));
      return;
    }
    for (const p of list) {
      if (argv.size) {
        process.stdout.write(`${p}\t${formatBytes(store.pathInfo(p).narSize)}\t${formatBytes(closureSize(p))}\n`);
      } else {
        process.stdout.write(`${p}\n`);
      }
    }
  },
};

interface VerifyArgs {
  'check-contents'?: boolean;
  json?: boolean;
}

const verify: CommandModule<object, VerifyArgs> = {
  command: 'verify',
  describe: 'Check that every store path is complete (and, with --check-contents, unchanged); exit 1 if not',
  builder: (y) =>
    y
      .option('check-contents', { type: 'boolean', describe: 'Rehash every path and compare with its metadata' })
      .option('json', { type: 'boolean', describe: 'Print JSON' }) as unknown as Argv<VerifyArgs>,
  handler: async (argv) => {
    const store = Store.open();
    const bar = progress('verifying');
    const problems = await verifyStore(store, { checkContents: argv['check-contents'], onProgress: bar.update });
    bar.done();
    if (argv.json) printJson({ ok: problems.length === 0, problems });
    else if (problems.length === 0) process.stdout.write('store is consistent\n');
    else for (const p of problems) process.stdout.write(`${p.path}: ${p.problem}\n`);
    if (problems.length > 0) process.exitCode = 1;
  },
};

/** `repair` and `gc`: list only, or print JSON. */
interface DryRunArgs {
  'dry-run'?: boolean;
  json?: boolean;
}

const repair: CommandModule<object, DryRunArgs> = {
  command: 'repair',
  describe: 'Remove store paths whose metadata is damaged, and the paths that refer to them, for the next build to make again',
  builder: (y) =>
    y
      .option('dry-run', { alias: 'n', type: 'boolean', describe: 'Only list what would be removed' })
      .option('json', { type: 'boolean', describe: 'Print JSON' }) as unknown as Argv<DryRunArgs>,
  handler: async (argv) => {
    const store = Store.open();
    const dryRun = argv['dry-run'] === true;
    const result = await repairStore(store, { dryRun });
    if (argv.json) {
      printJson({ dryRun, ...result });
      return;
    }
    for (const d of result.damaged) process.stdout.write(`damaged metadata: ${d.file} (${d.problem})\n`);
    for (const p of result.removed) process.stdout.write(`${dryRun ? 'would remove' : 'removed'} ${p}\n`);
    for (const p of result.skipped) process.stdout.write(`kept ${p} (in use by another process; run repair again later)\n`);
    if (result.damaged.length === 0) process.stdout.write('no damaged metadata\n');
    if (result.skipped.length > 0) process.exitCode = 1;
  },
};

const gc: CommandModule<object, DryRunArgs> = {
  command: 'gc',
  describe: 'Delete store paths no root (profile, gcroots, ./result link, running build) needs',
  builder: (y) =>
    y
      .option('dry-run', { alias: 'n', type: 'boolean', describe: 'Only list what would be deleted' })
      .option('json', { type: 'boolean', describe: 'Print JSON' }) as unknown as Argv<DryRunArgs>,
  handler: async (argv) => {
    const store = Store.open();
    const bar = progress('deleting');
    const dryRun = argv['dry-run'] === true;
    const result = await collectGarbage(store, { dryRun, onProgress: bar.update });
    bar.done();
    if (argv.json) {
      printJson({ dryRun, ...result });
      return;
    }
    for (const p of result.deleted) process.stdout.write(`${dryRun ? 'would delete' : 'deleted'} ${p}\n`);
    for (const p of result.skipped) process.stdout.write(`kept ${p} (in use by another process)\n`);
    const n = result.deleted.length;
    process.stdout.write(
      dryRun
        ? `${n} store path${n === 1 ? '' : 's'} would be deleted, freeing ${formatBytes(result.freedBytes)}\n`
        : `${n} store path${n === 1 ? '' : 's'} deleted, ${formatBytes(result.freedBytes)} freed\n`,
    );
  },
};

interface DiffArgs {
  a: string;
  b: string;
  json?: boolean;
}

const diff: CommandModule<object, DiffArgs> = {
  command: 'diff-closures <a> <b>',
  describe: 'Show package version and size changes between the closures of two store paths',
  builder: (y) =>
    y
      .positional('a', { type: 'string', demandOption: true, describe: 'Old store path or link' })
      .positional('b', { type: 'string', demandOption: true, describe: 'New store path or link' })
      .option('json', { type: 'boolean', describe: 'Print JSON' }) as unknown as Argv<DiffArgs>,
  handler: (argv) => {
    const store = Store.open();
    const changes = diffClosures(store, store.resolve(argv.a), store.resolve(argv.b));
    if (argv.json) printJson(changes);
    else for (const c of changes) process.stdout.write(formatChange(c) + '\n');
  },
};

const storeCommand: CommandModule<object, object> = {
  command: 'store <command>',
  describe: 'Inspect and maintain the store',
  builder: (y) =>
    y
      .command(pathInfo as CommandModule<object, PathInfoArgs>)
      .command(verify as CommandModule<object, VerifyArgs>)
      .command(gc as CommandModule<object, DryRunArgs>)
      .command(repair as CommandModule<object, DryRunArgs>)
      .command(diff as CommandModule<object, DiffArgs>)
      .demandCommand(1, 'Name a store command; see `cairn store --help`.') as unknown as Argv<object>,
  handler: () => {},
};

/** The `cairn store …` commands. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const storeCommands: CommandModule<any, any>[] = [storeCommand];
