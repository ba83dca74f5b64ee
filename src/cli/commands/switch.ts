import type { CommandModule, Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { CairnError, UsageError } from '../../errors.js';
import { LOGICAL_STORE, SYSTEM_PROFILE } from '../../paths.js';
import { Store, formatBytes } from '../../store/index.js';
import { buildSystem } from '../../build/index.js';
import { evalConfigFile } from '../../eval/index.js';
import { addGeneration, deleteGenerations, listGenerations, setCurrentGeneration } from '../../generations/index.js';
import { progressReporter } from '../progress.js';
import type { RemoteRunner } from '../../remote/ssh.js';
import { targetOptions, targetRunner, type TargetArgs } from '../target.js';
import { copyClosure, validOnTarget } from '../../remote/copy.js';
import { remoteSwitch, type SwitchAction } from '../../remote/switch.js';
import { checkRoot, installToRoot } from '../../remote/root.js';

interface RemoteArgs extends TargetArgs {
  'magic-rollback'?: boolean;
  'confirm-timeout'?: number;
  json?: boolean;
}

/** Refuses to run anywhere but on a running cairn system whose store is the one cairn builds into. */
function requireCairnSystem(store: Store, action: string): void {
  if (!existsSync('/run/current-system') || store.dir !== LOGICAL_STORE) {
    throw new CairnError(
      `cairn ${action} changes the machine it runs on, and this is not a running cairn system ` +
        `(${existsSync('/run/current-system') ? `the store is ${store.dir}, not ${LOGICAL_STORE}` : 'no /run/current-system'}). ` +
        'Deploy to one with --target-host USER@HOST; try a configuration with `cairn vm` or `cairn test`; build an image with `cairn image`.',
    );
  }
}

/**
 * Runs a generation's switch-to-configuration in a transient unit, so that losing the terminal
 * (a dropped SSH session) cannot stop it halfway; its output still reaches this terminal (stderr
 * with --json, which keeps stdout for the summary).
 */
async function runSwitch(toplevel: string, action: SwitchAction, json: boolean): Promise<number> {
  const args = action === 'dry-activate' ? [`${toplevel}/bin/switch-to-configuration`, action] : ['systemd-run', '--quiet', '--wait', '--collect', '--pipe', `--unit=cairn-switch-${Date.now()}`, `${toplevel}/bin/switch-to-configuration`, action];
  const r = await execa(args[0]!, args.slice(1), { stdin: 'inherit', stdout: json ? ['pipe', process.stderr] : 'inherit', stderr: 'inherit', reject: false });
  return r.exitCode ?? 1;
}

/** --target-host and --json; with `magic`, the magic rollback's options too. */
function remoteOptions<T>(y: Argv<T>, magic: boolean): Argv<T & RemoteArgs> {
  let z = targetOptions(y, 'Instead of this machine, deploy to').option('json', { type: 'boolean', describe: 'Print a JSON summary on stdout (the switch output goes to stderr)' });
  if (magic) {
    z = z
      .option('magic-rollback', {
        type: 'boolean',
        default: true,
        describe: 'With --target-host: the target goes back to its previous generation unless cairn confirms over a new connection after the switch (--no-magic-rollback: off)',
      })
      .option('confirm-timeout', { type: 'number', default: 30, describe: 'Seconds the target waits for that confirmation' });
  }
  return z as Argv<T & RemoteArgs>;
}

/** The target of --target-host (if any), after checking it can be deployed to (before a long build). */
async function remoteTarget(args: TargetArgs): Promise<RemoteRunner | undefined> {
  const runner = targetRunner(args);
  if (runner) await validOnTarget(runner);
  return runner;
}

function printJson(summary: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
}

/** `name` is the command (`cairn test` runs VM tests, so the `test` action is `cairn activate`). */
function actionCommand(action: SwitchAction, describe: string, name: string = action): CommandModule<object, { config: string; root?: string } & RemoteArgs> {
  const magic = action === 'switch' || action === 'test';
  return {
    command: `${name} <config>`,
    describe,
    builder: (y) =>
      remoteOptions(y.positional('config', { type: 'string', demandOption: true, describe: 'Configuration file' }), magic).option('root', {
        type: 'string',
        describe: 'With boot: install into the root file system mounted at DIR (its ESP mounted under it) and make the configuration its boot default',
      }),
    handler: async (args) => {
      const json = Boolean(args.json);
      const timeout = magic && args['magic-rollback'] !== false ? (args['confirm-timeout'] ?? 30) : 0;
      if (!(timeout >= 0) || !Number.isFinite(timeout)) throw new UsageError(`--confirm-timeout ${args['confirm-timeout']}: expected a number of seconds`);
      if (args.root !== undefined) {
        if (args['target-host'] !== undefined) throw new UsageError('--root and --target-host exclude each other');
        if (action !== 'boot') throw new CairnError(`--root ${args.root}: nothing runs there for \`cairn ${name}\` to change; \`cairn boot CONFIG --root ${args.root}\` makes the configuration its boot default`);
        checkRoot(args.root);
      }
      const runner = await remoteTarget(args);
      const store = Store.open();
      if (!runner && args.root === undefined) requireCairnSystem(store, name);
      const report = progressReporter();
      const built = await buildSystem(await evalConfigFile(args.config), { store, onProgress: report.progress });
      report.done();
      for (const w of built.warnings) report.warn(w);

      if (args.root !== undefined) {
        const r = await installToRoot(store, built.toplevel, args.root, {
          onProgress: json ? undefined : (sent, total) => report.detail(`copying to ${args.root}: ${formatBytes(sent)} of ~${formatBytes(total)}`),
          stdout: json ? process.stderr : process.stdout,
          stderr: process.stderr,
        });
        report.done();
        process.stderr.write(`generation ${r.generation} of ${join(resolve(args.root), SYSTEM_PROFILE)} (${r.copied} store paths copied, ${formatBytes(r.bytes)})\n`);
        if (json) printJson({ root: resolve(args.root), toplevel: built.toplevel, generation: r.generation, copied: r.copied, copiedBytes: r.bytes, exitCode: 0 });
        return;
      }

      if (!runner) {
        const before = listGenerations(store, SYSTEM_PROFILE).find((g) => g.current)?.number;
        const generation = action === 'switch' || action === 'boot' ? addGeneration(store, SYSTEM_PROFILE, built.toplevel) : null;
        if (generation !== null) process.stderr.write(`generation ${generation} of ${SYSTEM_PROFILE}\n`);
        process.exitCode = await runSwitch(built.toplevel, action, json);
        // 3: nothing was activated (the boot entries could not be written, or another switch ran): the profile goes back too.
        if (process.exitCode === 3 && generation !== null && before !== undefined && generation !== before) {
          setCurrentGeneration(store, SYSTEM_PROFILE, before);
          deleteGenerations(store, SYSTEM_PROFILE, { numbers: [generation] });
          process.stderr.write(`generation ${generation} removed again: ${SYSTEM_PROFILE} is generation ${before}\n`);
        }
        if (json) printJson({ toplevel: built.toplevel, generation, exitCode: process.exitCode });
        return;
      }

      const copied = await copyClosure(store, runner, [built.toplevel], {
        onProgress: json ? undefined : (sent, total) => report.detail(`copying to ${runner.name}: ${formatBytes(sent)} of ~${formatBytes(total)}`),
      });
      report.done();
      if (!json) process.stderr.write(copied.copied.length ? `copied ${copied.copied.length} store paths (${formatBytes(copied.bytes)}) to ${runner.name}\n` : `${runner.name} has the whole closure already\n`);
      const r = await remoteSwitch(runner, { action, toplevel: built.toplevel, confirmTimeout: timeout, stdout: json ? process.stderr : process.stdout, stderr: process.stderr });
      process.exitCode = r.exitCode;
      if (json) printJson({ target: runner.name, toplevel: built.toplevel, generation: r.generation, copied: copied.copied.length, copiedBytes: copied.bytes, exitCode: r.exitCode, confirmed: r.confirmed });
    },
  };
}

const rollback: CommandModule<object, { to?: number } & RemoteArgs> = {
  command: 'rollback',
  describe: 'Switch the running system (or --target-host) back to the previous generation (or --to N)',
  builder: (y) => remoteOptions(y.option('to', { type: 'number', describe: 'Generation number' }), false),
  handler: async (args) => {
    const json = Boolean(args.json);
    const runner = await remoteTarget(args);
    if (runner) {
      const r = await remoteSwitch(runner, { action: 'switch', generation: args.to ?? 'previous', confirmTimeout: 0, stdout: json ? process.stderr : process.stdout, stderr: process.stderr });
      process.exitCode = r.exitCode;
      if (json) printJson({ target: runner.name, generation: r.generation, exitCode: r.exitCode });
      return;
    }
    const store = Store.open();
    requireCairnSystem(store, 'rollback');
    const gens = listGenerations(store, SYSTEM_PROFILE);
    const cur = gens.findIndex((g) => g.current);
    const target = args.to !== undefined ? gens.find((g) => g.number === args.to) : cur > 0 ? gens[cur - 1] : undefined;
    if (!target) throw new CairnError(args.to !== undefined ? `${SYSTEM_PROFILE} has no generation ${args.to}` : 'there is no generation before the current one');
    setCurrentGeneration(store, SYSTEM_PROFILE, target.number);
    process.stderr.write(`rolling back to generation ${target.number}\n`);
    process.exitCode = await runSwitch(target.toplevel, 'switch', json);
    if (json) printJson({ toplevel: target.toplevel, generation: target.number, exitCode: process.exitCode });
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const switchCommands: CommandModule<any, any>[] = [
  actionCommand('switch', 'Build the configuration, make it the boot default and activate it now (on a cairn system, or --target-host)'),
  actionCommand('boot', 'Build the configuration and make it the boot default, without activating it now'),
  actionCommand('test', 'Build the configuration and activate it now, without making it the boot default (nixos-rebuild test)', 'activate'),
  actionCommand('dry-activate', 'Build the configuration and print what activating it would do to each unit, and why'),
  rollback,
];
