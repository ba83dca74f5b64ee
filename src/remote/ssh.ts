/**
 * Running shell scripts on a deploy target: over SSH (the OpenSSH client, never a prompt), or, for
 * tests, locally under a folder that stands for the target's root. The scripts live in
 * `scripts/remote/`; the target needs only bash, coreutils, tar and systemd.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa, type ResultPromise } from 'execa';
import { CairnError, UsageError } from '../errors.js';
import { SYSTEM_PROFILE } from '../paths.js';
import { scriptText } from '../build/activate.js';
import { shellQuote } from '../shell.js';

/** Where a deploy keeps its state on the target (a tmpfs: gone at the next boot, as it should be). */
export const RUN_DIR = '/run/cairn';

export interface SshTarget {
  user: string;
  host: string;
  port?: number;
  /** As given: `USER@HOST[:PORT]`. */
  text: string;
}

/** `USER@HOST` or `USER@HOST:PORT` (an IPv6 address in brackets: `root@[::1]:2222`). */
export function parseTarget(text: string): SshTarget {
  const m = /^([^@\s:/]+)@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(\d+))?$/.exec(text);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || m[1]!.startsWith('-') || (port !== undefined && (port < 1 || port > 65535))) {
    throw new UsageError(`--target-host ${text}: expected USER@HOST or USER@HOST:PORT (e.g. root@web1 or root@10.0.0.5:2222)`);
  }
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return port === undefined ? { user: m[1]!, host, text } : { user: m[1]!, host, port, text };
}

/** Extra ssh options from $CAIRN_SSHOPTS (like NIX_SSHOPTS: split on spaces). */
export function sshOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.CAIRN_SSHOPTS ?? '').split(/\s+/).filter((w) => w !== '');
}

export interface RunOptions {
  /** The script's stdin: text, or a stream (piped whole, then closed). Default: none. */
  input?: string | Readable;
  /** Also pass the script's output on to these as it comes (it is captured either way). */
  stdout?: Writable;
  stderr?: Writable;
  /** Ends the session at once, as a dropped connection would. */
  signal?: AbortSignal;
  /**
   * A connection of its own, not one shared with the runner's other sessions: what magic rollback's
   * confirmation needs, since only a new connection proves the target can still be reached.
   */
  fresh?: boolean;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The connection failed or dropped (ssh's exit code 255): the script may not have run, or not to its end. */
  connectionLost: boolean;
}

/** Runs bash scripts on a target. */
export interface RemoteRunner {
  /** The target, as messages name it. */
  readonly name: string;
  /** What stands for `/` on the target (`/`, or a folder in tests). */
  readonly root: string;
  /** How detached work is started there: systemd's transient units, or plain processes (tests). */
  readonly units: 'systemd' | 'plain';
  run(script: string, opts?: RunOptions): Promise<RunResult>;
  /** Closes what the runner keeps open between sessions (a shared connection); runs may follow, opening it again. */
  close?(): Promise<void>;
}

/** Feeds stdin, forwards output and collects the result of a started script. */
async function finish(child: ResultPromise, file: string, opts: RunOptions, lost: (exitCode: number) => boolean): Promise<RunResult> {
  const feeding =
    opts.input !== undefined && typeof opts.input !== 'string'
      ? // A script that stops reading (it failed) breaks the pipe: its exit code tells why.
        pipeline(opts.input, child.stdin!).catch(() => undefined)
      : undefined;
  const r = await child;
  await feeding;
  // Neither an exit code nor a signal: it never started (no ssh installed, say).
  if (r.exitCode === undefined && r.signal === undefined) {
    const code = (r.cause as NodeJS.ErrnoException | undefined)?.code;
    throw new CairnError(`cannot run ${file}${code === 'ENOENT' ? ': it is not installed' : code ? ` (${code})` : ''}`);
  }
  const exitCode = r.exitCode ?? 128 + (constants.signals[r.signal as NodeJS.Signals] ?? 0);
  return { exitCode, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), connectionLost: lost(exitCode) };
}

const ioOptions = (opts: RunOptions) => ({
  input: typeof opts.input === 'string' ? opts.input : undefined,
  stdin: opts.input === undefined ? ('ignore' as const) : ('pipe' as const),
  stdout: opts.stdout ? (['pipe', opts.stdout] as ['pipe', Writable]) : ('pipe' as const),
  stderr: opts.stderr ? (['pipe', opts.stderr] as ['pipe', Writable]) : ('pipe' as const),
  reject: false,
  stripFinalNewline: false,
});

/**
 * How long an idle shared connection stays open. A deploy's sessions follow each other within
 * seconds; after a longer pause (a long build) the next session opens a new one by itself.
 */
const SHARED_IDLE_SECONDS = 60;

/** Shared connections still open, closed when the process exits (one listener for them all). */
const atExit = new Set<() => void>();
let exitListener = false;
function closeAtExit(close: () => void): void {
  if (!exitListener) process.once('exit', () => [...atExit].forEach((c) => c()));
  exitListener = true;
  atExit.add(close);
}

/**
 * A target reached with `ssh`: BatchMode (no prompts), a connect timeout, keep-alives to notice a
 * dead link, and only errors from ssh itself (no known-hosts notices among the switch's output).
 * With `sudo`, a user other than root runs the scripts as root through `sudo -n` (no password
 * prompt: the user must be allowed without one, as nixos-rebuild's --use-remote-sudo expects).
 *
 * The runner's sessions share one connection (OpenSSH's ControlMaster, its socket in a private
 * folder), since each new one costs a key exchange; a `fresh` session opens its own. The shared
 * connection is closed when the process exits, or by itself once idle.
 */
export function sshRunner(target: SshTarget, extraOptions: string[] = sshOptionsFromEnv(), how: { sudo?: boolean } = {}): RemoteRunner {
  const sudo = how.sudo ? 'sudo -n -- ' : '';
  const destination = ['--', `${target.user}@${target.host}`];
  // ssh takes the first value given for an option: the user's come first (a ControlPath of theirs too).
  const common = [
    ...extraOptions,
    ...['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=15', '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3', '-o', 'LogLevel=ERROR'],
    ...(target.port === undefined ? [] : ['-p', String(target.port)]),
  ];
  let socketDir: string | undefined;
  const shared = (): string[] => {
    if (socketDir === undefined) {
      socketDir = mkdtempSync(join(tmpdir(), 'cairn-ssh-'));
      closeAtExit(close);
    }
    return ['-o', `ControlPath=${join(socketDir, 'socket')}`, '-o', 'ControlMaster=auto', '-o', `ControlPersist=${SHARED_IDLE_SECONDS}`];
  };
  function close(): void {
    if (socketDir === undefined) return;
    spawnSync('ssh', [...common, '-o', `ControlPath=${join(socketDir, 'socket')}`, '-O', 'exit', ...destination], { stdio: 'ignore', timeout: 10_000 });
    rmSync(socketDir, { recursive: true, force: true });
    atExit.delete(close);
    socketDir = undefined;
  }
  return {
    name: target.text,
    root: '/',
    units: 'systemd',
    run: (script, opts = {}) => {
      const connection = opts.fresh ? ['-o', 'ControlPath=none', '-o', 'ControlMaster=no'] : shared();
      const child = execa('ssh', [...common, ...connection, ...destination, `${sudo}bash -c ${shellQuote(script)}`], { ...ioOptions(opts), cancelSignal: opts.signal });
      return finish(child, 'ssh', opts, (code) => code === 255);
    },
    close: async () => close(),
  };
}

/** Scripts run by bash on this machine, with `root` standing for the target's `/` (tests). */
export function localRunner(root: string): RemoteRunner {
  return {
    name: `local folder ${root}`,
    root,
    units: 'plain',
    run: (script, opts = {}) => {
      // Its own process group, so an abort ends the whole session (bash and what it started), as sshd would.
      const child = execa('bash', ['-c', script], { ...ioOptions(opts), detached: true });
      const abort = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // ended already
        }
      };
      opts.signal?.addEventListener('abort', abort, { once: true });
      return finish(child, 'bash', opts, () => false).finally(() => opts.signal?.removeEventListener('abort', abort));
    },
  };
}

/**
 * A script of `scripts/remote/` ready to run on the runner's target: its variables (quoted), then
 * the shared helpers of lib.sh, then the script.
 */
export function remoteScript(runner: RemoteRunner, name: string, vars: Record<string, string | number> = {}): string {
  const all: Record<string, string | number> = { R: runner.root === '/' ? '' : runner.root.replace(/\/+$/, ''), units: runner.units, rundir: RUN_DIR, profile: SYSTEM_PROFILE, ...vars };
  return ['set -uo pipefail', ...Object.entries(all).map(([k, v]) => `${k}=${shellQuote(String(v))}`), scriptText('remote/lib.sh'), scriptText(`remote/${name}`)].join('\n');
}

/** A failure on the target as the user sees it: the target named, the script's own message. */
export function remoteError(runner: RemoteRunner, doing: string, r: RunResult): CairnError {
  const said = r.stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(-5).join('\n');
  if (r.connectionLost) return new CairnError(`${doing}: cannot reach ${runner.name} over ssh${said ? `: ${said}` : ''}`);
  return new CairnError(`${doing} on ${runner.name} failed${said ? `: ${said}` : ` (exit code ${r.exitCode})`}`);
}
