/**
 * The system generations of a deploy target (`cairn generations list|delete --target-host`): listed
 * and deleted there by scripts/remote/generations.sh, which has the target rewrite its boot entries.
 */
import { remoteError, remoteScript, type RemoteRunner } from './ssh.js';

export interface RemoteGeneration {
  number: number;
  /** When the generation was made (its link's time), seconds since the epoch. */
  date: number;
  current: boolean;
  toplevel: string;
}

/** The target's generations, oldest first, after deleting `remove` (never the current one). */
export async function remoteGenerations(runner: RemoteRunner, remove: number[] = []): Promise<RemoteGeneration[]> {
  const r = await runner.run(remoteScript(runner, 'generations.sh', { delete: remove.join(' ') }));
  if (r.exitCode !== 0) throw remoteError(runner, remove.length ? `deleting generations ${remove.join(', ')}` : 'listing the generations', r);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [n, date, current, toplevel] = l.split(' ');
      return { number: Number(n), date: Number(date), current: current === '1', toplevel: toplevel! };
    });
}
