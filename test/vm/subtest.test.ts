/**
 * driver.subtest without QEMU: names and times are recorded and logged, a failure names its
 * subtest, and `fresh` snapshots each running machine the first time and restores it after;
 * the guest agent's port is on QEMU's command line only when asked for.
 */
import { describe, expect, it } from 'vitest';
import { Machine, runSubtest, SubtestError, MachineError, lastLine, stopReason, withoutConsoleTails, subtestSummary, type SubtestResult } from '../../src/testing/index.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuArgs, RunningMachine } from '../../src/vm/index.js';

/** A stand-in machine recording the calls a fresh subtest makes. */
function fakeMachine(up: boolean): { machine: Machine; calls: string[] } {
  const calls: string[] = [];
  let taken = false;
  const machine = {
    name: 'a',
    isUp: up,
    hasSnapshot: (n: string) => taken && n === 'booted',
    waitForUnit: async (u: string) => void calls.push(`waitForUnit ${u}`),
    settle: async () => {
      calls.push('settle');
      return true;
    },
    snapshot: async (n: string) => {
      calls.push(`snapshot ${n}`);
      taken = true;
    },
    restore: async (n: string) => void calls.push(`restore ${n}`),
  } as unknown as Machine;
  return { machine, calls };
}

describe('driver.subtest', () => {
  it('logs and records each subtest with its time; a failure names the subtest', async () => {
    const results: SubtestResult[] = [];
    const log: string[] = [];
    await runSubtest({}, results, (m) => log.push(m), 'first', async () => {});
    const err = await runSubtest({}, results, (m) => log.push(m), 'second', async () => {
      throw new MachineError('machine: succeed("false") failed with exit status 1');
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(SubtestError);
    expect((err as Error).message).toMatch(/^subtest "second" failed after \d+\.\d s: machine: succeed\("false"\) failed with exit status 1$/);
    expect(results.map((r) => [r.name, r.passed])).toEqual([
      ['first', true],
      ['second', false],
    ]);
    expect(results.every((r) => r.seconds >= 0)).toBe(true);
    expect(log[0]).toBe('subtest: first');
    expect(log[1]).toMatch(/^subtest: first: passed in \d+\.\d s$/);
  });

  it('fresh: the first snapshots each running machine once booted and settled, later ones restore it', async () => {
    const a = fakeMachine(true);
    const down = fakeMachine(false);
    const machines = { a: a.machine, down: down.machine };
    const order: string[] = [];
    await runSubtest(machines, [], () => {}, 'one', async () => void order.push(...a.calls), { fresh: true });
    await runSubtest(machines, [], () => {}, 'two', async () => {}, { fresh: true });
    await runSubtest(machines, [], () => {}, 'three', async () => {});
    expect(order).toEqual(['waitForUnit multi-user.target', 'settle', 'snapshot booted']);
    expect(a.calls).toEqual(['waitForUnit multi-user.target', 'settle', 'snapshot booted', 'restore booted']);
    expect(down.calls).toEqual([]);
  });
});

describe('the guest agent port', () => {
  const base = { accel: 'tcg' as const, memoryMiB: 512, cpus: 1, drives: [], network: null };
  it('is a virtio port named org.qemu.guest_agent.0 on the given socket, only when asked for', () => {
    const args = qemuArgs({ ...base, guestAgentSocket: '/run/x/qga.sock' }).join(' ');
    expect(args).toContain('-chardev socket,id=qga0,path=/run/x/qga.sock,server=on,wait=off');
    expect(args).toContain('virtserialport,bus=qga-serial.0,chardev=qga0,name=org.qemu.guest_agent.0');
    expect(qemuArgs(base).join(' ')).not.toContain('guest_agent');
  });

  it('a shutdown leaves no timer behind once QEMU has exited (it would keep `cairn test` running after the test)', async () => {
    const m = new Machine({ name: 'a', dir: mkdtempSync(join(tmpdir(), 'cairn-machine-')) } as ConstructorParameters<typeof Machine>[0]);
    // A machine whose QEMU has already exited.
    (m as unknown as { vm: unknown }).vm = { process: Promise.resolve() };
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    await m.shutdown({ timeout: 600 });
    await new Promise((r) => setImmediate(r));
    expect(timers()).toBe(before);
  });
});

describe('a failed case\'s short message', () => {
  it('keeps the reason and what follows the console tail, not the tail itself', async () => {
    const m = new Machine({ name: 'a', dir: mkdtempSync(join(tmpdir(), 'cairn-machine-')) } as ConstructorParameters<typeof Machine>[0]);
    // A machine that is not running: its error has the console tail like any other.
    const err = (await m.execute('true').catch((e: unknown) => e)) as MachineError;
    expect(err.message).toContain("--- last lines of a's console ---");
    const full = `subtest "x" failed after 1.0 s: ${err.message}\n--- sshd and fail2ban ---\njournal\n${subtestSummary([{ name: 'x', passed: false, seconds: 1 }])}`;
    const short = withoutConsoleTails(full);
    expect(short).not.toContain('last lines of');
    expect(short).toContain('subtest "x" failed after 1.0 s: a: execute("true") needs a running machine: call start() first\n(the console is in the output above)\n--- sshd and fail2ban ---\njournal\n  FAILED');
  });
});

describe('why a machine stopped, from its console', () => {
  const trace = Array.from({ length: 40 }, (_, i) => `[    5.84${i}] ? do_syscall_64+0x93/0x1b0`).join('\n');
  it('names the boot\'s error and the panic that followed it, past the stack trace', () => {
    const console = `[    1.2] cairn stage 1: mounting /dev/vda2\r\n[    5.8] cairn stage 1: error: cannot mount the root file system /dev/vda2\n[    5.8] cairn stage 1: add boot.shell_on_fail to the kernel command line for a rescue shell.\n[    5.83] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n${trace}\n[    5.9] Rebooting in 1 seconds..\n`;
    expect(stopReason(console)).toBe('cairn stage 1: error: cannot mount the root file system /dev/vda2; Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100');
  });
  it('names a panic alone; says nothing of a console with none of these', () => {
    expect(stopReason(`[    3.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n${trace}`)).toBe('Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)');
    expect(stopReason('[    2.0] cairn stage 1: switching to /cairn/store/x/init\nWelcome\n')).toBeUndefined();
  });
  it('names a restart or power-off the guest asked for, and what QEMU said last', () => {
    expect(stopReason('[   40.1] systemd-shutdown[1]: Rebooting.\n[   40.2] reboot: Restarting system\n')).toBe('reboot: Restarting system');
    expect(stopReason('Welcome\nqemu-system-x86_64: terminating on signal 15 from pid 7\n')).toBe('qemu-system-x86_64: terminating on signal 15 from pid 7');
  });
  it('otherwise shows how far the console got, and how the process ended', async () => {
    expect(lastLine('[    0.0] Linux version 6.12\r\n[    1.5] EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path\n\n')).toBe('"EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path"');
    expect(lastLine('')).toBe('(the console is empty)');
    const killed = RunningMachine.start(['-c', 'echo booting; kill -KILL $$'], 'sh');
    const exited = RunningMachine.start(['-c', 'echo booting; exit 3'], 'sh');
    expect(killed.exitDescription).toBeUndefined();
    await Promise.all([killed.process, exited.process]);
    expect(killed.hasExited).toBe(true);
    expect(killed.exitDescription).toMatch(/^killed by SIGKILL after \d+\.\d s$/);
    expect(exited.exitDescription).toMatch(/^exit status 3 after \d+\.\d s$/);
    expect(lastLine(exited.console)).toBe('"booting"');
  });
});
