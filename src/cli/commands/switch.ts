import type { CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { CairnError } from '../../errors.js';
import { LOGICAL_STORE, SYSTEM_PROFILE } from '../../paths.js';
import { Store } from '../../store/index.js';
import { buildSystem } from '../../build/index.js';
import { addGeneration, deleteGenerations, listGenerations, setCurrentGeneration } from '../../generations/index.js';
import { progressReporter } from '../progress.js';

export { SYSTEM_PROFILE };

type Action = 'switch' | 'boot' | 'test' | 'dry-activate';

/** Refuses to run anywhere but on a running cairn system whose store is the one cairn builds into. */
function requireCairnSystem(store: Store, action: string): void {
  if (!existsSync('/run/current-system') || store.dir !== LOGICAL_STORE) {
    throw new CairnError(
      `cairn ${action} changes the machine it runs on, and this is not a running cairn system ` +
        `(${existsSync('/run/current-system') ? `the store is ${store.dir}, not ${LOGICAL_STORE}` : 'no /run/current-system'}). ` +
        'Try a configuration with `cairn vm` or `cairn test`; build an image with `cairn image`.',
    );
  }
}

/**
 * Runs a generation's switch-to-configuration in a transient unit, so that losing the terminal
 * (a dropped SSH session) cannot stop it halfway; its output still reaches this terminal.
 */
async function runSwitch(toplevel: string, action: Action): Promise<number> {
  const args = action === 'dry-activate' ? [`${toplevel}/bin/switch-to-configuration`, action] : ['systemd-run', '--quiet', '--wait', '--collect', '--pipe', `--unit=cairn-switch-${Date.now()}`, `${toplevel}/bin/switch-to-configuration`, action];
  const r = await execa(args[0]!, args.slice(1), { stdio: 'inherit', reject: false });
  return r.exitCode ?? 1;
}

/** `name` is the command (`cairn test` runs VM tests, so the `test` action is `cairn activate`). */
function actionCommand(action: Action, describe: string, name: string = action): CommandModule<object, { config: string }> {
  return {
    command: `${name} <config>`,
    describe,
    builder: (y) => y.positional('config', { type: 'string', demandOption: true, describe: 'Configuration file' }),
    handler: async (args) => {
      const store = Store.open();
      requireCairnSystem(store, name);
      const report = progressReporter();
      const built = await buildSystem(args.config, { store, onProgress: report.progress });
      report.done();
      for (const w of built.warnings) report.warn(w);
      const sets = action === 'switch' || action === 'boot';
      const before = listGenerations(store, SYSTEM_PROFILE).find((g) => g.current)?.number;
      const added = sets ? addGeneration(store, SYSTEM_PROFILE, built.toplevel) : undefined;
      if (added !== undefined) process.stderr.write(`generation ${added} of ${SYSTEM_PROFILE}\n`);
      process.exitCode = await runSwitch(built.toplevel, action);
      // 3: the boot entries could not be written and nothing was activated: the profile goes back too.
      if (process.exitCode === 3 && added !== undefined && before !== undefined && added !== before) {
        setCurrentGeneration(store, SYSTEM_PROFILE, before);
        deleteGenerations(store, SYSTEM_PROFILE, { numbers: [added] });
        process.stderr.write(`generation ${added} removed again: ${SYSTEM_PROFILE} is generation ${before}\n`);
      }
    },
  };
}

const rollback: CommandModule<object, { to?: number }> = {
  command: 'rollback',
  describe: 'Switch the running system back to the previous generation (or --to N)',
  builder: (y) => y.option('to', { type: 'number', describe: 'Generation number' }),
  handler: async (args) => {
    const store = Store.open();
    requireCairnSystem(store, 'rollback');
    const gens = listGenerations(store, SYSTEM_PROFILE);
    const cur = gens.findIndex((g) => g.current);
    const target = args.to !== undefined ? gens.find((g) => g.number === args.to) : cur > 0 ? gens[cur - 1] : undefined;
    if (!target) throw new CairnError(args.to !== undefined ? `${SYSTEM_PROFILE} has no generation ${args.to}` : 'there is no generation before the current one');
    setCurrentGeneration(store, SYSTEM_PROFILE, target.number);
    process.stderr.write(`rolling back to generation ${target.number}\n`);
    process.exitCode = await runSwitch(target.toplevel, 'switch');
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const switchCommands: CommandModule<any, any>[] = [
  actionCommand('switch', 'Build the configuration, make it the boot default and activate it now (on a cairn system)'),
  actionCommand('boot', 'Build the configuration and make it the boot default, without activating it now'),
  actionCommand('test', 'Build the configuration and activate it now, without making it the boot default (nixos-rebuild test)', 'activate'),
  actionCommand('dry-activate', 'Build the configuration and print what activating it would do to each unit, and why'),
  rollback,
];
