import type { CommandModule, Argv } from 'yargs';
import { join } from 'node:path';
import { Store, formatBytes } from '../../store/index.js';
import { UsageError } from '../../errors.js';
import { deleteGenerations, diffGenerations, listGenerations, parseAge, selectGenerations, setCurrentGeneration, updateBootEntries, type DeleteSelection } from '../../generations/index.js';
import { LOGICAL_STORE, SYSTEM_PROFILE, onCairnSystem } from '../../paths.js';
import { rootSystem, runInRoot } from '../../remote/root.js';
import type { RemoteRunner } from '../../remote/ssh.js';
import { targetOptions, targetRunner, type TargetArgs } from '../target.js';
import { remoteGenerations } from '../../remote/generations.js';

interface Common extends TargetArgs {
  profile?: string;
  root?: string;
  json?: boolean;
}

/** --target-host on list and delete: the system generations of a machine reached over ssh. */
const withTarget = <T>(y: Argv<T>) => targetOptions(y, 'The system generations of');

function remoteRunner(args: Common): RemoteRunner | undefined {
  if (args['target-host'] !== undefined && (args.profile !== undefined || args.root !== undefined)) throw new UsageError('--target-host excludes --profile and --root');
  return targetRunner(args);
}

const isoDate = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19);

/** The store and profile a command works on, and the mounted root they belong to (--root). */
function chosen(args: Common): { store: Store; profile: string; root?: string } {
  if (args.root === undefined) {
    const store = Store.open();
    return { store, profile: profilePath(store, args.profile) };
  }
  if (args.profile !== undefined) throw new UsageError('--profile and --root exclude each other');
  const { dir, store, profile } = rootSystem(args.root);
  return { store, profile, root: dir };
}

/** Boot entries follow a system profile's changes: this machine's, or a mounted root's (in a chroot there). */
async function rewriteBootEntries(t: { store: Store; profile: string; root?: string }): Promise<void> {
  const root = t.root;
  const runIn = root === undefined ? undefined : async (argv: string[]) => (await runInRoot(root, argv, { stdout: process.stderr, stderr: process.stderr })).exitCode;
  await updateBootEntries(t.store, t.profile, runIn);
}

/** The profile a command works on: --profile, else the machine's system profile on a cairn system, else the store's `profiles/system`. */
export function profilePath(store: Store, profile: string | undefined): string {
  return profile ?? (onCairnSystem() && store.dir === LOGICAL_STORE ? SYSTEM_PROFILE : join(store.profilesDir, 'system'));
}

const withProfile = <T>(y: Argv<T>) =>
  y
    .option('profile', { type: 'string', describe: 'The profile (default: <CAIRN_HOME>/profiles/system)' })
    .option('root', { type: 'string', describe: 'The system installed on the root mounted at DIR: its store and system profile (delete and rollback rewrite its boot entries)' })
    .option('json', { type: 'boolean', describe: 'Print JSON' });

/** A generation number of the profile, or a toplevel (store path or link). */
function toplevelOf(store: Store, profile: string, which: string): string {
  if (/^\d+$/.test(which)) {
    const g = listGenerations(store, profile).find((x) => x.number === Number(which));
    if (!g) throw new UsageError(`${profile} has no generation ${which}`);
    return g.toplevel;
  }
  return store.resolve(which);
}

const list: CommandModule<object, Common> = {
  command: 'list',
  describe: 'The generations of the profile: number, date, label, kernel, configuration hash',
  builder: (y) => withTarget(withProfile(y)),
  handler: async (args) => {
    const runner = remoteRunner(args);
    if (runner) {
      const gens = await remoteGenerations(runner);
      if (args.json) process.stdout.write(JSON.stringify(gens, null, 2) + '\n');
      else for (const g of gens) process.stdout.write(`${String(g.number).padStart(4)}  ${isoDate(g.date)}  ${g.toplevel}${g.current ? '  (current)' : ''}\n`);
      return;
    }
    const { store, profile } = chosen(args);
    const gens = listGenerations(store, profile);
    if (args.json) {
      process.stdout.write(JSON.stringify(gens, null, 2) + '\n');
      return;
    }
    for (const g of gens) {
      const date = isoDate(g.date);
      process.stdout.write(`${String(g.number).padStart(4)}  ${date}  ${g.label}  kernel ${g.kernelVersion ?? '-'}  config ${g.configurationHash.slice(0, 12)}${g.current ? '  (current)' : ''}\n`);
    }
  },
};

const diff: CommandModule<object, Common & { a: string; b: string }> = {
  command: 'diff <a> <b>',
  describe: 'What changed between two generations (numbers or toplevels): packages, units, /etc, kernel, closure size',
  builder: (y) => withProfile(y).positional('a', { type: 'string', demandOption: true }).positional('b', { type: 'string', demandOption: true }),
  handler: (args) => {
    const { store, profile } = chosen(args);
    const d = diffGenerations(store, toplevelOf(store, profile, args.a), toplevelOf(store, profile, args.b));
    if (args.json) {
      process.stdout.write(JSON.stringify(d, null, 2) + '\n');
      return;
    }
    const out: string[] = [];
    if (d.packages.length) {
      out.push('packages:');
      for (const p of d.packages) out.push(p.before === null ? `  + ${p.name} ${p.after}` : p.after === null ? `  - ${p.name} ${p.before}` : `  ~ ${p.name} ${p.before} → ${p.after}`);
    }
    const sign = { added: '+', removed: '-', changed: '~' } as const;
    if (d.units.length) out.push('units:', ...d.units.map((u) => `  ${sign[u.change]} ${u.unit}`));
    if (d.etc.length) out.push('/etc:', ...d.etc.map((e) => `  ${sign[e.change]} ${e.path}`));
    if (d.kernel) out.push(`kernel: ${d.kernel.before ?? '∅'} → ${d.kernel.after ?? '∅'}`);
    if (d.kernelParams) out.push(`kernel parameters: ${d.kernelParams.before.join(' ')} → ${d.kernelParams.after.join(' ')}`);
    out.push(`closure: ${formatBytes(d.closureBytes.before)} → ${formatBytes(d.closureBytes.after)} (${formatBytes(d.closureBytes.after - d.closureBytes.before, true)})`);
    process.stdout.write(out.join('\n') + '\n');
  },
};

const del: CommandModule<object, Common & { numbers?: number[]; 'older-than'?: string; keep?: number }> = {
  command: 'delete [numbers..]',
  describe: 'Delete generations (never the current one); `cairn store gc` then frees their paths',
  builder: (y) =>
    withTarget(withProfile(y))
      .positional('numbers', { type: 'number', array: true, describe: 'Generation numbers' })
      .option('older-than', { type: 'string', describe: 'Those made more than this long ago: 30d, 12h, …' })
      .option('keep', { type: 'number', describe: 'Keep only the newest N' }),
  handler: async (args) => {
    if (!args.numbers?.length && args['older-than'] === undefined && args.keep === undefined) throw new UsageError('name generations, --older-than AGE or --keep N');
    const selection: DeleteSelection = {
      numbers: args.numbers,
      ...(args['older-than'] !== undefined ? { olderThanSeconds: parseAge(args['older-than']) } : {}),
      ...(args.keep !== undefined ? { keep: args.keep } : {}),
    };
    const runner = remoteRunner(args);
    if (runner) {
      const doomed = selectGenerations(await remoteGenerations(runner), `${SYSTEM_PROFILE} on ${runner.name}`, selection);
      if (doomed.length) await remoteGenerations(runner, doomed);
      process.stdout.write(args.json ? JSON.stringify({ deleted: doomed }) + '\n' : doomed.length ? `deleted generations ${doomed.join(', ')} on ${runner.name}\n` : 'nothing to delete\n');
      return;
    }
    const t = chosen(args);
    const { store, profile } = t;
    const gone = deleteGenerations(store, profile, selection);
    process.stdout.write(args.json ? JSON.stringify({ deleted: gone }) + '\n' : gone.length ? `deleted generations ${gone.join(', ')}\n` : 'nothing to delete\n');
    if (gone.length) await rewriteBootEntries(t);
  },
};

const rollback: CommandModule<object, Common & { to?: number }> = {
  command: 'rollback',
  describe: "Make the previous generation (or --to N) the profile's current one",
  builder: (y) => withProfile(y).option('to', { type: 'number', describe: 'Generation number' }),
  handler: async (args) => {
    const t = chosen(args);
    const { store, profile } = t;
    const gens = listGenerations(store, profile);
    const cur = gens.findIndex((g) => g.current);
    const target = args.to ?? (cur > 0 ? gens[cur - 1]!.number : undefined);
    if (target === undefined) throw new UsageError('there is no generation before the current one');
    setCurrentGeneration(store, profile, target);
    process.stdout.write(`${profile} is generation ${target}\n`);
    await rewriteBootEntries(t);
  },
};

const generations: CommandModule = {
  command: 'generations <command>',
  describe: 'List, compare and delete the generations of a profile',
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  builder: (y) => y.command([list, diff, del, rollback] as CommandModule<any, any>[]).demandCommand(1),
  handler: () => {},
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const generationsCommands: CommandModule<any, any>[] = [generations];
