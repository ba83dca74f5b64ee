import { createConnection, type Socket } from 'node:net';
import { CairnError } from '../errors.js';

/** What a command run in the guest gave back. */
export interface ExecResult {
  status: number;
  stdout: string;
}

/** Bytes of a command bash reads itself. */
const SHORT_COMMAND = 1024;

/** Commands between removals of the files earlier commands left. */
const SWEEP_EVERY = 64;

const MARKER_OPEN = '<<<cairn:';
const MARKER_CLOSE = '>>>';
const MARKER = /^<<<cairn:(\d+):(\d+):([A-Za-z0-9+/=]*)>>>$/;

/** Where the guest's shell keeps its files: the commands, their outputs, the FIFO. */
const GUEST_FILES = '${TMPDIR:-/tmp}/.cairn-';

/**
 * A pause of a guest command without a process: bash's `read -t` on the shell's FIFO (made before
 * the first command runs), which nobody writes to.
 */
export const guestSleep = (seconds: number): string => `{ read -t ${seconds} -u 9 9<> "${GUEST_FILES}fifo" || :; }`;

/**
 * The host side of the test backdoor: a root shell in the guest reading commands from a virtio
 * port, connected to a unix socket on the host.
 *
 * Each command is one line for the guest's shell followed by the command's text: the line reads
 * exactly that text into a file (a long one with `head -c LENGTH`: bash reads its own input a byte
 * at a time, head in blocks, so a command of megabytes costs no more than its bytes), which runs
 * in a subshell with a time limit (see `frame`). The guest answers with one marker line `<<<cairn:ID:STATUS:BASE64-OUTPUT>>>`;
 * anything else on the port (a command's stderr) is skipped.
 */
export class GuestShell {
  private buffer = '';
  /** Where in `buffer` the search for a marker's end goes on. */
  private scanned = 0;
  /** The last bytes received, for `waitForText` (the command buffer is trimmed as it parses). */
  private recent = '';
  private readonly textWaiters = new Set<() => void>();
  private seq = 0;
  private waiter?: { id: number; resolve: (r: ExecResult) => void; reject: (e: Error) => void };
  private closedError?: Error;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    const closed = (err: Error): void => {
      this.closedError ??= err;
      this.waiter?.reject(err);
      this.waiter = undefined;
      for (const w of [...this.textWaiters]) w();
    };
    socket.on('close', () => closed(new CairnError('the guest shell connection closed')));
    socket.on('error', closed);
  }

  static connect(path: string): Promise<GuestShell> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new GuestShell(s)));
      s.once('error', reject);
    });
  }

  /** What is sent to the guest's shell for one command: the line that runs it, then its text. */
  static frame(id: number, command: string, timeoutSeconds: number): Buffer {
    const text = Buffer.from(command, 'utf8');
    // A short command is read by bash's own `read` (a process less), a long one by head (bash's
    // reads are a byte each). `read -N` counts characters: only for ASCII (no NUL, which a shell
    // variable cannot hold), whose characters are bytes in any locale.
    const take = text.length <= SHORT_COMMAND && /^[\x01-\x7f]*$/.test(command) ? `IFS= read -r -N ${text.length} c; printf %s "$c"` : `head -c ${text.length}`;
    // The command's files, in the temporary folder (the guest's /tmp). Those of earlier commands
    // are removed every SWEEP_EVERY commands, not after each: an rm is a process the next command
    // would wait for. Names are never reused within a connection, so a command's background
    // process that still writes to its output file cannot write into another's.
    const sweep = id % SWEEP_EVERY === 0 ? 'rm -f "$t"cmd-* "$t"out-* "$t"cut-*; ' : '';
    // The command runs in a subshell of its own process group (set -m), not in `timeout bash -c`:
    // two programs started for each command were most of its cost in an emulated guest (78 ms
    // against 15 for a subshell). The time limit is a second subshell that sleeps in bash's own
    // `read -t` on a FIFO nobody writes to, then ends the command's whole group as timeout(1)
    // would, answering 124 as it does.
    const line =
      `t=${GUEST_FILES}; ${sweep}${take} > "$t"cmd-${id}; [ -p "$t"fifo ] || mkfifo "$t"fifo; ` +
      `set -m; ( set -eo pipefail; . "$t"cmd-${id} ) > "$t"out-${id} < /dev/null & p=$!; ` +
      `( ${guestSleep(timeoutSeconds)}; : > "$t"cut-${id}; kill -TERM -- -$p ) 2>/dev/null & w=$!; set +m; ` +
      `wait $p; s=$?; kill $w 2>/dev/null; [ ! -e "$t"cut-${id} ] || s=124; ` +
      // No output (most commands): no base64 process to start.
      `if [ -s "$t"out-${id} ]; then echo "<<<cairn:${id}:$s:$(base64 -w 0 < "$t"out-${id})>>>"; else echo "<<<cairn:${id}:$s:>>>"; fi\n`;
    return Buffer.concat([Buffer.from(line), text]);
  }

  /** Runs a shell command as root in the guest; stdout is returned, stderr goes to the console. */
  execute(command: string, opts: { timeoutSeconds?: number; graceSeconds?: number } = {}): Promise<ExecResult> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.waiter) return Promise.reject(new Error('internal: one guest command at a time'));
    const id = ++this.seq;
    const timeoutSeconds = opts.timeoutSeconds ?? 900;
    const giveUp = timeoutSeconds + (opts.graceSeconds ?? 60);
    return new Promise<ExecResult>((resolve, reject) => {
      // The guest's `timeout` ends the command; a shell that never answers at all (hung, or its
      // console taken by another reader) must not hang the driver: give up a while later.
      const timer = setTimeout(() => {
        if (this.waiter?.id !== id) return;
        this.waiter = undefined;
        reject(new CairnError(`the guest shell gave no answer within ${giveUp} s`));
      }, giveUp * 1000);
      const settle = <T>(f: (v: T) => void) => (v: T): void => {
        clearTimeout(timer);
        f(v);
      };
      this.waiter = { id, resolve: settle(resolve), reject: settle(reject) };
      this.socket.write(GuestShell.frame(id, command, timeoutSeconds));
    });
  }

  /** Sends a line to the guest's shell without waiting for an answer (e.g. `poweroff`). */
  socketWrite(text: string): void {
    if (!this.closedError) this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }

  /**
   * After the guest was rolled back (a snapshot restored): forget what arrived before, and run a
   * command to prove the guest's shell reads again. Markers of earlier commands that may still
   * arrive carry other ids and are skipped.
   */
  async resync(timeoutSeconds: number): Promise<void> {
    if (this.waiter) throw new Error('internal: resync while a guest command runs');
    this.buffer = '';
    this.scanned = 0;
    this.recent = '';
    const r = await this.execute('true', { timeoutSeconds });
    if (r.status !== 0) throw new CairnError(`the guest shell answered with exit status ${r.status}`);
  }

  /** Resolves once the guest has printed `text` (e.g. the backdoor's greeting); rejects after `timeoutMs` or on close. */
  waitForText(text: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.textWaiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        if (this.recent.includes(text)) {
          this.recent = this.recent.slice(this.recent.indexOf(text) + text.length);
          done();
        } else if (this.closedError) done(this.closedError);
      };
      const timer = setTimeout(() => done(new CairnError(`the guest shell did not print '${text}' within ${timeoutMs / 1000} s`)), timeoutMs);
      this.textWaiters.add(check);
      check();
    });
  }

  private onData(chunk: string): void {
    this.recent = (this.recent + chunk).slice(-8192);
    for (const w of [...this.textWaiters]) w();
    // Where a marker's start not yet looked for may begin (one may straddle the old end).
    let fresh = Math.max(0, this.buffer.length - (MARKER_OPEN.length - 1));
    this.buffer += chunk;
    for (;;) {
      // Only the new text is searched for a marker's end: a marker of megabytes arrives in many
      // chunks, and searching all of it for each would take time in its size squared.
      const close = this.buffer.indexOf(MARKER_CLOSE, this.scanned);
      if (close < 0) break;
      // Its start is the last one before its end: other text may hold a start of its own.
      const open = this.buffer.lastIndexOf(MARKER_OPEN, close);
      const m = open >= 0 ? MARKER.exec(this.buffer.slice(open, close + MARKER_CLOSE.length)) : null;
      this.buffer = this.buffer.slice(close + MARKER_CLOSE.length);
      this.scanned = 0;
      fresh = 0;
      if (m && this.waiter?.id === Number(m[1])) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve({ status: Number(m[2]), stdout: Buffer.from(m[3]!, 'base64').toString('utf8') });
      }
    }
    // Keep only what may still hold the start of a marker: the last start in the new text, else
    // the one kept before (the buffer begins with it). The next search for an end goes on from
    // where this one stopped (an end cut by the chunk's edge is found with the next chunk).
    let open = -1;
    for (let i = this.buffer.indexOf(MARKER_OPEN, fresh); i >= 0; i = this.buffer.indexOf(MARKER_OPEN, i + 1)) open = i;
    if (open > 0) this.buffer = this.buffer.slice(open);
    else if (open < 0 && !this.buffer.startsWith(MARKER_OPEN)) this.buffer = this.buffer.slice(-16);
    this.scanned = Math.max(0, this.buffer.length - (MARKER_CLOSE.length - 1));
  }
}
