/**
 * Switching a deploy target to a generation (scripts/remote/switch.sh), with deploy-rs's magic
 * rollback: before anything changes, a watchdog unit is started on the target; once the switch
 * has ended, it waits `confirmTimeout` seconds for cairn to confirm over a NEW connection, which
 * proves the target is still reachable. Without a confirmation it puts the previous generation
 * back: the profile (switch) and the running system (the old generation's switch-to-configuration
 * `switch`, or for activate the previous system's `test`). The confirmation and the deadline race
 * for one exclusive link on the target, so exactly one of them wins.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { CairnError } from '../errors.js';
import { scriptText } from '../build/activate.js';
import { remoteScript, type RemoteRunner, type RunResult } from './ssh.js';

export type SwitchAction = 'switch' | 'boot' | 'test' | 'dry-activate';

export interface RemoteSwitchOptions {
  action: SwitchAction;
  /** Logical toplevel, valid on the target (copyClosure). */
  toplevel?: string;
  /** Instead of a toplevel: a generation of the target's profile (a rollback; the action is `switch`). */
  generation?: number | 'previous';
  /** Seconds the target waits for the confirmation once the switch has ended; 0: no magic rollback. */
  confirmTimeout: number;
  /** Where the target's output goes as it comes. */
  stdout: Writable;
  stderr: Writable;
  /** How long a confirmation waits for a switch that is still running (its own connection dropped). Seconds. */
  switchWait?: number;
}

export interface RemoteSwitchResult {
  /** switch-to-configuration's exit code (3: nothing activated, the profile was put back). */
  exitCode: number;
  /** The profile's generation the target is on (switch, boot, rollback). */
  generation: number | null;
  /** Magic rollback: confirmed in time (null: not armed, or nothing to confirm). */
  confirmed: boolean | null;
  /** Names the target's units: cairn-switch-<token>, cairn-rollback-<token>. */
  token: string;
}

/** Passes output on while noting the generation switch.sh announces (`generation N of …`, `rolling back to generation N`). */
class GenerationNoter extends Writable {
  generation: number | null = null;
  private partial = '';
  constructor(private readonly out: Writable) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop()!;
    for (const l of lines) {
      const m = /^(?:generation|rolling back to generation) (\d+)\b/.exec(l);
      if (m) this.generation = Number(m[1]);
    }
    this.out.write(chunk, cb);
  }
}

/** Runs switch-to-configuration of a generation on the target; see the file comment for magic rollback. */
export async function remoteSwitch(runner: RemoteRunner, opts: RemoteSwitchOptions): Promise<RemoteSwitchResult> {
  const token = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const rollback = opts.generation !== undefined;
  const action: SwitchAction = rollback ? 'switch' : opts.action;
  const watched = !rollback && opts.confirmTimeout > 0 && (action === 'switch' || action === 'test');
  const script = remoteScript(runner, 'switch.sh', {
    action,
    toplevel: opts.toplevel ?? '',
    pick: rollback ? String(opts.generation) : '',
    token,
    timeout: watched ? Math.ceil(opts.confirmTimeout) : 0,
    deploy: `${scriptText('remote/lib.sh')}\n${scriptText('remote/deploy.sh')}`,
  });
  const noter = new GenerationNoter(opts.stderr);
  const r = await runner.run(script, { stdout: opts.stdout, stderr: noter });
  const result = (exitCode: number, confirmed: boolean | null): RemoteSwitchResult => ({ exitCode, generation: noter.generation, confirmed, token });
  const lost = (): CairnError =>
    new CairnError(`the connection to ${runner.name} failed or dropped during the switch${said(r)}; if the switch began, it runs to its end there (journalctl -u cairn-switch-${token})`);
  if (!watched) {
    if (r.connectionLost) throw lost();
    return result(r.exitCode, null);
  }

  // A new connection: that it works is what the confirmation proves.
  const c = await runner.run(remoteScript(runner, 'confirm.sh', { token, wait_limit: opts.switchWait ?? 600 }), { fresh: true });
  const [word, rc, why] = (c.stdout.trim().split('\n').pop() ?? '').split(' ');
  if (c.exitCode !== 0 || c.connectionLost || !word) {
    throw new CairnError(
      `cannot confirm the switch on ${runner.name}${said(c)}: unconfirmed, it rolls back to its previous generation by itself ${opts.confirmTimeout} s after the switch ended`,
    );
  }
  switch (word) {
    case 'confirmed':
      if (rc !== '0') {
        // Reachable, so it keeps the generation, as a local switch that fails does; say why it failed.
        const how = why === 'killed' ? 'it was killed before it ended' : why === 'stopped' ? 'it was stopped by a signal' : `switch-to-configuration exited ${rc}`;
        opts.stderr.write(
          `the switch on ${runner.name} failed: ${how} (journalctl -u cairn-switch-${token}); confirmed: ${runner.name} is reachable and keeps the new generation (cairn rollback goes back)\n`,
        );
      } else opts.stderr.write(`confirmed: ${runner.name} keeps the new generation\n`);
      return result(Number(rc), true);
    case 'late':
      throw new CairnError(`the confirmation reached ${runner.name} after the ${opts.confirmTimeout} s deadline: it is rolling back to its previous generation`);
    case 'running':
      throw new CairnError(
        `the switch on ${runner.name} is still running after ${opts.switchWait ?? 600} s, unconfirmed: when it ends, the target rolls back by itself ${opts.confirmTimeout} s later (journalctl -u cairn-switch-${token})`,
      );
    case 'ended':
      // Nothing was activated (exit 3, or the switch never began): nothing to confirm.
      if (rc === 'none') {
        if (r.connectionLost) throw lost();
        return result(r.exitCode || 1, null);
      }
      return result(Number(rc), null);
    default: // unknown: switch.sh stopped before it recorded the deploy (it said why), or never ran
      if (r.connectionLost) throw lost();
      return result(r.exitCode, null);
  }
}

/** `: <what ssh said>` for a failed connection, else nothing. */
function said(r: RunResult): string {
  if (!r.connectionLost) return '';
  const last = r.stderr.trim().split('\n').pop();
  return last ? ` (${last})` : '';
}
