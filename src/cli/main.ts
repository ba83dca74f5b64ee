import yargs, { type Argv } from 'yargs';
import { CairnError, isNoSpace, UsageError } from '../errors.js';
import { mappedStack, userCodeError } from '../lib/usercode.js';
import { evaluationAborted, guardEvaluation } from '../lib/watchdog.js';
import { cairnVersion } from '../paths.js';
import { commands } from './commands/index.js';

/**
 * Runs the CLI and returns the exit code: 0 success, 1 a user's error (configuration, input),
 * 2 a usage error. Errors a user causes print without a stack unless --show-trace is given.
 */
// The entry gives its import() when the bundle runs as a script (src/lib/esm-import.ts).
export { runtimeImport } from '../lib/esm-import.js';

export async function main(argv: string[]): Promise<number> {
  const showTrace = argv.includes('--show-trace');
  const parser = yargs(argv)
    .scriptName('cairn')
    .version(cairnVersion())
    .usage('$0 <command> [options]\n\nDeclarative OS configurations built from Debian packages.')
    .option('show-trace', { type: 'boolean', description: 'Show stack traces of errors', global: true })
    .option('eval-timeout', {
      type: 'number',
      description: 'Stop configuration code that runs this many seconds without returning (default: $CAIRN_EVAL_TIMEOUT, else 60; 0: no limit)',
      global: true,
    })
    .middleware((args) => {
      const limit = args.evalTimeout as number | undefined;
      if (limit !== undefined && !(limit >= 0)) throw new UsageError('--eval-timeout takes a number of seconds (0: no limit)');
      guardEvaluation(limit);
    })
    .command(commands)
    // `cairn completion` prints the script; the shell then asks `cairn --get-yargs-completions …`.
    .completion('completion', 'Print a bash/zsh completion script (source it from ~/.bashrc or ~/.zshrc)')
    .demandCommand(1, 'Name a command; see `cairn --help`.')
    .strict()
    .recommendCommands()
    .help()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg ?? 'invalid usage');
    });
  skipHelpCache(parser);
  try {
    // Configuration code stopped by the time limit, or waiting forever, never returns to the command.
    await Promise.race([parser.parseAsync(), evaluationAborted]);
  } catch (err) {
    return reportError(err, showTrace);
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

/**
 * yargs renders the help of the command it runs before the command starts, for a failure of the
 * command to show later; cairn's failures never show help (see `fail` above), and rendering it
 * costs a tenth of a no-change rebuild. Skipped through yargs's internal methods where it has them.
 */
function skipHelpCache(parser: Argv): void {
  type Internal = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = (parser as unknown as Internal).getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

function reportError(err: unknown, showTrace: boolean): number {
  // An exception thrown by a user's module code outside an option's evaluation is theirs too.
  err = userCodeError(err);
  if (err instanceof CairnError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (err instanceof UsageError) process.stderr.write('Run `cairn --help` for usage.\n');
    if (showTrace) {
      if (err.stack) process.stderr.write(`${err.stack}\n`);
      // A user's exception's own trace, with its TypeScript modules' frames mapped to their lines.
      if (err.cause instanceof Error && err.cause.stack) process.stderr.write(`caused by: ${mappedStack(err.cause.stack)}\n`);
    }
    return err.exitCode;
  }
  if (isNoSpace(err)) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`error: no space left on device${e.path ? ` while writing ${e.path}` : ''}\n`);
    if (showTrace && e.stack) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
  if (err instanceof RangeError && /call stack/.test(err.message)) {
    process.stderr.write('error: infinite recursion (the evaluation went too deep)\n');
    if (showTrace && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
  // Not a user's error: a bug in cairn. Always show where it happened.
  process.stderr.write(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 70;
}
