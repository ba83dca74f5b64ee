import { createConnection, type Socket } from 'node:net';
import { CairnError } from '../errors.js';

/**
 * A QMP (QEMU Machine Protocol) client over a unix socket: JSON commands in, replies and events
 * out, one command at a time in order. Used to stop, reset and inspect machines without signals.
 */
export class QmpClient {
  private buffer = '';
  private readonly pending: { resolve: (v: unknown) => void; reject: (e: Error) => void; command: string }[] = [];
  private readonly listeners = new Set<(event: QmpEvent) => void>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.onClose(new CairnError('QEMU closed the monitor connection')));
    socket.on('error', (err) => this.onClose(err));
  }

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new CairnError(`no QMP greeting on ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('data', (greeting) => {
        clearTimeout(timer);
        s.pause();
        if (!String(greeting).includes('"QMP"')) reject(new CairnError(`not a QMP socket: ${path}`));
        else resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const client = new QmpClient(socket);
    socket.resume();
    await client.execute('qmp_capabilities');
    return client;
  }

  /** Runs a command and returns its `return` value; a QMP error becomes a CairnError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new CairnError(`QMP connection closed (${command})`));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ resolve: resolve as (v: unknown) => void, reject, command });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  /** Calls `fn` for every asynchronous event (SHUTDOWN, RESET, …); returns an unsubscribe function. */
  onEvent(fn: (event: QmpEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as { return?: unknown; error?: { class: string; desc: string }; event?: string; data?: unknown };
      if (msg.event) {
        for (const l of this.listeners) l({ event: msg.event, data: msg.data });
      } else if ('return' in msg || msg.error) {
        const p = this.pending.shift();
        if (!p) continue;
        if (msg.error) p.reject(new CairnError(`QMP ${p.command}: ${msg.error.desc}`));
        else p.resolve(msg.return);
      }
    }
  }

  private onClose(err: Error): void {
    if (this.closed && this.pending.length === 0) return;
    this.closed = true;
    // A `quit` is answered by the connection closing; every other waiting command failed.
    for (const p of this.pending.splice(0)) p.command === 'quit' ? p.resolve(undefined) : p.reject(err);
  }
}

export interface QmpEvent {
  event: string;
  data?: unknown;
}
