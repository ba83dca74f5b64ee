import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestShell } from '../../src/vm/shell.js';

/**
 * A stand-in for the guest end of the port: a real bash reading the socket (from a pipe, so a byte
 * at a time, as from the guest's port), its stdout and stderr both going back, as in the guest.
 */
let server: Server;
let sock: string;
/** The stand-in's temporary folder, where the commands' files go. */
let guestTmp: string;

beforeAll(async () => {
  sock = join(mkdtempSync(join(tmpdir(), 'cairn-shell-')), 'console.sock');
  guestTmp = mkdtempSync(join(tmpdir(), 'cairn-shell-tmp-'));
  server = createServer((conn) => {
    const bash = spawn('bash', [], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: guestTmp } });
    conn.on('data', (d) => bash.stdin.write(d));
    bash.stdout.on('data', (d) => conn.write(d));
    bash.stderr.on('data', (d) => conn.write(d));
    conn.on('close', () => bash.kill());
  });
  await new Promise<void>((r) => server.listen(sock, r));
});

// The commands' files include answers of megabytes: none is left in the host's /tmp.
afterAll(() => {
  server.close();
  for (const dir of [dirname(sock), guestTmp]) rmSync(dir, { recursive: true, force: true });
});

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
    // Short ASCII commands are read by bash's `read`, others by head: both keep every byte
    // (leading blanks, backslashes, trailing newlines; a command just below and above the bound).
    expect(await sh.execute("  printf '%s|' ' x ' 'a\\\\b'\n\n\n")).toEqual({ status: 0, stdout: ' x |a\\\\b|' });
    for (const n of [1020, 1030]) {
      const cmd = `printf %s ${'y'.repeat(n - 10)} `;
      expect(await sh.execute(cmd)).toEqual({ status: 0, stdout: 'y'.repeat(n - 10) });
    }
    // Text on stderr that looks like the start of a marker does not hide the answer after it.
    expect(await sh.execute("echo '<<<cairn:9:0:QUJD' >&2; echo '>>> <<<cairn:' >&2; echo out")).toEqual({ status: 0, stdout: 'out\n' });
    sh.close();
  });

  it('carries commands and answers of megabytes, and the next command after them', async () => {
    const sh = await GuestShell.connect(sock);
    // The command's text is read by its own reader, not bash's: a heredoc of 3 MB arrives whole.
    const text = 'ab\u00e9\n'.repeat(750_000);
    const r = await sh.execute(`sha256sum <<'EOF'\n${text}EOF`);
    expect(r.stdout.split(' ')[0]).toBe(createHash('sha256').update(`${text}`).digest('hex'));
    // An answer of 6 MB (in many chunks of the socket) comes back whole.
    const big = await sh.execute("head -c 6000000 /dev/zero | tr '\\0' z");
    expect(big.stdout.length).toBe(6_000_000);
    expect(big.stdout.replace(/z/g, '')).toBe('');
    expect(await sh.execute('echo next')).toEqual({ status: 0, stdout: 'next\n' });
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

  it('removes the files of earlier commands every 64 commands, not after each', async () => {
    const sh = await GuestShell.connect(sock);
    for (let i = 1; i <= 70; i++) expect(await sh.execute(`echo ${i}`)).toEqual({ status: 0, stdout: `${i}\n` });
    const left = readdirSync(guestTmp).sort();
    // The 64th command removed those before it (of this connection and of earlier ones).
    expect(left).toEqual([...[64, 65, 66, 67, 68, 69, 70].flatMap((i) => [`.cairn-cmd-${i}`, `.cairn-out-${i}`]), '.cairn-fifo'].sort());
    sh.close();
  });

  it('stops a command at its timeout', async () => {
    const sh = await GuestShell.connect(sock);
    const r = await sh.execute('sleep 30', { timeoutSeconds: 1 });
    expect(r.status).toBe(124); // as timeout(1) answers
    // The command's own children end with it, and the shell goes on.
    expect((await sh.execute('sleep 31 & sleep 32', { timeoutSeconds: 1 })).status).toBe(124);
    expect(await sh.execute('pgrep -f "^sleep 3[12]$" || echo none')).toEqual({ status: 0, stdout: 'none\n' });
    sh.close();
  });
});
