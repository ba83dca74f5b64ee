import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestShell } from '../../src/vm/shell.js';

/**
 * A stand-in for the guest end of the console: a real bash reading the socket, with the input
 * echoed back as a terminal would (the guest's hvc0 is a tty), to prove the framing ignores echo.
 */
let server: Server;
let sock: string;

beforeAll(async () => {
  sock = join(mkdtempSync(join(tmpdir(), 'cairn-shell-')), 'console.sock');
  server = createServer((conn) => {
    const bash = spawn('bash', [], { stdio: ['pipe', 'pipe', 'ignore'] });
    conn.on('data', (d) => {
      conn.write(d); // echo, like a tty
      bash.stdin.write(d);
    });
    bash.stdout.on('data', (d) => conn.write(d));
    conn.on('close', () => bash.kill());
  });
  await new Promise<void>((r) => server.listen(sock, r));
});

afterAll(() => server.close());

describe('guest shell framing', () => {
  it('returns status and stdout of each command, in order', async () => {
    const sh = await GuestShell.connect(sock);
    expect(await sh.execute('echo hello')).toEqual({ status: 0, stdout: 'hello\n' });
    expect(await sh.execute('exit 3')).toEqual({ status: 3, stdout: '' });
    expect(await sh.execute('false | true')).toMatchObject({ status: 1 }); // pipefail
    expect(await sh.execute('echo before; false; echo after')).toEqual({ status: 1, stdout: 'before\n' }); // errexit
    sh.close();
  });

  it('carries any bytes, quotes and markers-lookalikes in both directions', async () => {
    const sh = await GuestShell.connect(sock);
    const tricky = `it's "quoted" \\ $HOME \`x\` <<<cairn:1:0:AAAA>>> ünïcode\ttab`;
    const shQuote = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
    const r = await sh.execute(`printf '%s' ${shQuote(tricky)}`);
    expect(r).toEqual({ status: 0, stdout: tricky });
    const lines = await sh.execute('seq 1 20000');
    expect(lines.stdout.split('\n').length).toBe(20001);
    sh.close();
  });

  it('gives up on a shell that never answers, instead of waiting for ever', async () => {
    // A console whose reader is not the shell (e.g. a login prompt took it): nothing comes back.
    const silent = join(mkdtempSync(join(tmpdir(), 'cairn-shell-')), 'silent.sock');
    const mute = createServer(() => {});
    await new Promise<void>((r) => mute.listen(silent, r));
    try {
      const sh = await GuestShell.connect(silent);
      await expect(sh.execute('true', { timeoutSeconds: 1, graceSeconds: 1 })).rejects.toThrow(/gave no answer within 2 s/);
      sh.close();
    } finally {
      mute.close();
    }
  });

  it('stops a command at its timeout', async () => {
    const sh = await GuestShell.connect(sock);
    const r = await sh.execute('sleep 30', { timeoutSeconds: 1 });
    expect(r.status).toBe(124); // timeout(1)
    sh.close();
  });
});
