/**
 * `--target-host` and `--use-remote-sudo`, as every command that reaches another machine over ssh
 * takes them (deploys, rollback, generations).
 */
import type { Argv } from 'yargs';
import { UsageError } from '../errors.js';
import { parseTarget, sshRunner, type RemoteRunner } from '../remote/ssh.js';

export interface TargetArgs {
  'target-host'?: string;
  'use-remote-sudo'?: boolean;
}

/** The two options; `what` begins the description of --target-host (e.g. "Deploy to"). */
export function targetOptions<T>(y: Argv<T>, what: string): Argv<T & TargetArgs> {
  return y
    .option('target-host', { type: 'string', describe: `${what} USER@HOST[:PORT] over ssh (extra ssh options: $CAIRN_SSHOPTS)` })
    .option('use-remote-sudo', { type: 'boolean', describe: "With --target-host: USER is not root and runs cairn's scripts there through sudo, without a password" }) as Argv<T & TargetArgs>;
}

/** The ssh runner of --target-host; undefined without it. */
export function targetRunner(args: TargetArgs): RemoteRunner | undefined {
  if (args['target-host'] === undefined) {
    if (args['use-remote-sudo']) throw new UsageError('--use-remote-sudo goes with --target-host USER@HOST');
    return undefined;
  }
  return sshRunner(parseTarget(args['target-host']), undefined, { sudo: args['use-remote-sudo'] });
}
