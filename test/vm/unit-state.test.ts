import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unitStateCommand } from '../../src/testing/machine.js';

/**
 * waitForUnit's guest command, run by bash as the test shell runs it (`set -eo pipefail`, the
 * shell's FIFO in TMPDIR), with a stand-in `systemctl` that logs its calls and reads the unit's
 * state from a file.
 */
let dir: string;
let flag: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-unit-state-'));
  flag = join(dir, 'booted');
  writeFileSync(
    join(dir, 'systemctl'),
    [
      '#!/bin/bash',
      'echo "$*" >> "$D/calls"',
      'case "$1" in',
      '  show) cat "$D/state" ;;',
      'esac',
    ].join('\n'),
  );
  chmodSync(join(dir, 'systemctl'), 0o755);
  execFileSync('mkfifo', [join(dir, '.cairn-fifo')]);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const state = (active: string) => `ActiveState=${active}\nSubState=x\nLoadState=loaded\n`;

function run(unit = 'multi-user.target'): { out: string; calls: string[] } {
  const out = execFileSync('bash', ['-c', `set -eo pipefail; ${unitStateCommand(unit, flag)}`], { env: { ...process.env, D: dir, TMPDIR: dir, PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' });
  const calls = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n') : [];
  return { out, calls };
}

describe("waitForUnit's guest command", () => {
  it('reads an active unit once, without waiting for the boot', () => {
    writeFileSync(join(dir, 'state'), state('active'));
    const r = run();
    expect(r.out).toContain('ActiveState=active\n');
    expect(r.calls).toEqual(['show --property=ActiveState,SubState,LoadState -- multi-user.target']);
  });

  it('while the machine boots, waits for the boot flag without a process, then reads the unit again: two systemctl calls, not one a second', () => {
    writeFileSync(join(dir, 'state'), state('activating'));
    writeFileSync(join(dir, 'active'), state('active'));
    // multi-user.target is reached 1.5 s later: the unit's state changes, the testing module's unit makes the flag.
    const later = spawn('bash', ['-c', 'sleep 1.5; cp "$D/active" "$D/state"; : > "$F"'], { env: { ...process.env, D: dir, F: flag } });
    const t0 = Date.now();
    const r = run();
    later.kill();
    // 'active' is only there after the flag's moment: the second read came after the wait.
    expect(r.out).toContain('ActiveState=active\n');
    expect(r.calls).toEqual(['show --property=ActiveState,SubState,LoadState -- multi-user.target', 'show --property=ActiveState,SubState,LoadState -- multi-user.target']);
    // The flag ended the wait, not its 30 s bound.
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('after the boot, a unit that is not active yet is read once: the driver polls it', () => {
    writeFileSync(flag, '');
    writeFileSync(join(dir, 'state'), state('inactive'));
    const r = run('nginx.service');
    expect(r.out).toContain('ActiveState=inactive\n');
    expect(r.calls).toEqual(['show --property=ActiveState,SubState,LoadState -- nginx.service']);
  });

  it('a failed unit is reported at once, even during the boot', () => {
    writeFileSync(join(dir, 'state'), state('failed'));
    expect(run().calls).toHaveLength(1);
  });
});
