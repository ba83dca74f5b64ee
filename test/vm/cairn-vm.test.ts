/**
 * `cairn vm` as a user runs it: the serial console on the command's stdin/stdout. The machine
 * logs root in on the console (services.getty.autologinUser), a file written there survives a
 * power-off because the state disk is kept, and the second start reuses that disk.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { removeTree } from '../../src/store/index.js';
import { QEMU } from '../../src/vm/index.js';
import { SLOT_WAIT_MS, takeSlot, type Release } from './qemu-slots.js';

const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;
const CACHE = join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const CLI = resolve(import.meta.dirname, '../../bin/cairn.js');
const BOOT_TIMEOUT_MS = 240_000;
/** Root's shell prompt on the console, after the automatic login (bash's default or Debian's). */
const PROMPT = /\(automatic login\)[\s\S]*# $/;

let work: string;
let config: string;
let state: string;
const env = { CAIRN_HOME: STORE_HOME, CAIRN_DEBIAN_CACHE: CACHE };

/** A running `cairn vm` whose console output can be waited on. */
function start(): { proc: ResultPromise; out: () => string; waitFor: (re: RegExp, from?: number) => Promise<void> } {
  const proc = execa('node', [CLI, 'vm', config, '--state', state], { env, stdin: 'pipe', buffer: false, reject: false, forceKillAfterDelay: 2000 });
  let text = '';
  const waiters = new Set<() => void>();
  proc.stdout!.on('data', (c: Buffer) => {
    text += c.toString('utf8');
    for (const w of waiters) w();
  });
  proc.stderr!.on('data', (c: Buffer) => {
    text += c.toString('utf8');
  });
  const waitFor = (re: RegExp, from = 0): Promise<void> =>
    new Promise((resolveWait, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${re} on the console within ${BOOT_TIMEOUT_MS / 1000} s:\n${text.slice(-3000)}`));
      }, BOOT_TIMEOUT_MS);
      const check = (): void => {
        if (re.test(text.slice(from))) {
          clearTimeout(timer);
          waiters.delete(check);
          resolveWait();
        }
      };
      waiters.add(check);
      void proc.then(() => check());
      check();
    });
  return { proc, out: () => text, waitFor };
}

describe.skipIf(!hasQemu)('cairn vm', () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cairn-vm-cli-'));
    config = join(work, 'vmtest.yaml');
    state = join(work, 'vmtest.qcow2');
    writeFileSync(config, 'networking:\n  hostName: vmtest\nsystem:\n  stateVersion: "0.1"\nservices:\n  getty:\n    autologinUser: root\n  qemuGuest:\n    enable: true\n');
  });

  // Its guests count against the machine-wide limit of QEMU guests (the VM test driver's run beside it).
  let releaseSlot: Release | undefined;
  beforeAll(async () => {
    releaseSlot = await takeSlot();
  }, SLOT_WAIT_MS);
  afterAll(() => releaseSlot?.());

  afterAll(() => {
    if (work) removeTree(work);
  });

  it('--dry-run prints the QEMU command: direct kernel boot, state and store disks, forwards', async () => {
    const r = await execa('node', [CLI, 'vm', config, '--state', state, '--forward', '18080:80', '--forward', 'udp:15353:53', '--dry-run'], { env, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    // The kernel's PVH ELF (its own store path, beside the closure), booted with the system's initrd.
    expect(r.stdout).toMatch(/^qemu-system-x86_64 .*-kernel \S+-vmlinux-\S+\/vmlinux -initrd \S+\/initrd /);
    expect(r.stdout).toContain(`-drive file=${state},if=virtio,format=qcow2`);
    expect(r.stdout).toMatch(/-drive file=\S+\/vm\/store-s-[a-z0-9]{32}\.img,if=virtio,format=raw,readonly=on/);
    // services.qemuGuest: the agent's port, at a socket beside the state disk.
    expect(r.stdout).toContain(`socket,id=qga0,path=${join(work, 'vmtest.qga')},server=on,wait=off`);
    expect(r.stderr).toContain(`cairn vm: guest agent at ${join(work, 'vmtest.qga')}`);
    expect(r.stdout).toContain('hostfwd=tcp:127.0.0.1:18080-:80,hostfwd=udp:127.0.0.1:15353-:53');
    expect(r.stdout).toContain('root=LABEL=cairn-vm-root');
    expect(r.stderr).toMatch(/cairn vm: accelerator (tcg|kvm) \(.+\)/);
    expect(r.stderr).toContain('(new)');
    expect(existsSync(state)).toBe(true);
  }, 600_000);

  it('rejects a malformed --forward with exit 1', async () => {
    const r = await execa('node', [CLI, 'vm', config, '--forward', '80'], { env, reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('--forward 80: expected HOST:GUEST, e.g. 2222:22');
  });

  it('boots, and keeps what the machine wrote on its state disk for the next start', async () => {
    const first = start();
    await first.waitFor(PROMPT);
    // The shell sees `$((6*7))`; only the guest turns it into 42, so the echo of our typing never matches.
    first.proc.stdin!.write('echo kept-$((6*7)) > /var/lib/marker; sync; poweroff\n');
    const r1 = await first.proc;
    expect(r1.exitCode, first.out().slice(-2000)).toBe(0);

    const second = start();
    await second.waitFor(PROMPT);
    expect(second.out()).not.toContain('(new)');
    const mark = second.out().length;
    second.proc.stdin!.write('cat /var/lib/marker; poweroff\n');
    await second.waitFor(/^kept-42\r?$/m, mark);
    const r2 = await second.proc;
    expect(r2.exitCode).toBe(0);
  }, 2 * BOOT_TIMEOUT_MS + 60_000);
});
