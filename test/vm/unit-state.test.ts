import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unitStateCommand } from '../../src/testing/machine.js';

/**
 * waitForUnit's guest command, run by bash as the test shell runs it (`set -eo pipefail`), with a
 * stand-in `systemctl` that logs its calls: the unit's state comes from a file, and
 * `is-system-running --wait` answers what another file says (the boot ending while it waited).
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
      // The boot ends while it waits: the unit is active afterwards.
      '  is-system-running) [ -e "$D/after" ] && cp "$D/after" "$D/state"; cat "$D/system"; [ "$(cat "$D/system")" = running ] ;;',
      'esac',
    ].join('\n'),
  );
  chmodSync(join(dir, 'systemctl'), 0o755);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const state = (active: string) => `ActiveState=${active}\nSubState=x\nLoadState=loaded\n`;

function run(unit = 'multi-user.target'): { out: string; calls: string[] } {
  const out = execFileSync('bash', ['-c', `set -eo pipefail; ${unitStateCommand(unit, flag)}`], { env: { ...process.env, D: dir, PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' });
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

  it('while the machine boots, waits for the boot to end (one blocking call, not a poll a second) and reads the unit again', () => {
    writeFileSync(join(dir, 'state'), state('activating'));
    writeFileSync(join(dir, 'after'), state('active'));
    writeFileSync(join(dir, 'system'), 'running');
    const r = run();
    expect(r.out).toContain('ActiveState=active\n');
    expect(r.calls).toEqual(['show --property=ActiveState,SubState,LoadState -- multi-user.target', 'is-system-running --wait', 'show --property=ActiveState,SubState,LoadState -- multi-user.target']);
    // The boot is over: later reads do not wait.
    expect(existsSync(flag)).toBe(true);
  });

  it('a boot still going on when the wait ends (its 5 s) is not taken for a finished one', () => {
    writeFileSync(join(dir, 'state'), state('activating'));
    writeFileSync(join(dir, 'system'), 'starting');
    expect(run().out).toContain('ActiveState=activating\n');
    expect(existsSync(flag)).toBe(false);
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
