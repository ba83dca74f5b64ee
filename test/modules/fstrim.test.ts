import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalSystem } from '../../src/eval/index.js';
import { lockPackages, realisePackages } from '../../src/debian/index.js';
import { Store } from '../../src/store/index.js';
import { etcText, fakeRoot, hasCommand, tempDir, writeEtc } from './helpers.js';
import { TEST_STORE_HOME } from './store-programs.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function evalWith(...modules: unknown[]): Promise<any> {
  return (await evalSystem(modules as never[])).config;
}

const DROPIN = 'systemd/system/fstrim.timer.d/overrides.conf';
const LINK = 'systemd/system/timers.target.wants/fstrim.timer';

describe('services.fstrim', () => {
  it('is on by default, as in NixOS: the packaged timer is wanted by timers.target, weekly', async () => {
    const c = await evalWith({});
    expect(c.services.fstrim).toEqual({ enable: true, interval: 'weekly' });
    // The link enables util-linux's own timer, as `systemctl enable` would; no unit of cairn's own.
    expect(c.environment.etc[LINK]).toMatchObject({ symlink: '/lib/systemd/system/fstrim.timer' });
    expect(c.environment.etc['systemd/system/fstrim.timer']).toBeUndefined();
    expect(c.environment.systemPackages.map(String)).toContain('util-linux');
    // The packaged OnCalendar= is cleared before the schedule is set: otherwise both would apply.
    expect(etcText(c, DROPIN)).toMatch(/\[Timer\]\nOnCalendar=\nOnCalendar=weekly\n/);
  });

  it('a changed interval replaces the schedule', async () => {
    const c = await evalWith({ services: { fstrim: { interval: 'Mon *-*-* 03:00:00' } } });
    const text = etcText(c, DROPIN);
    expect(text).toMatch(/\[Timer\]\nOnCalendar=\nOnCalendar=Mon \*-\*-\* 03:00:00\n/);
    expect(text).not.toContain('weekly');
  });

  it('disabled, the timer is neither wanted nor changed', async () => {
    const c = await evalWith({ services: { fstrim: { enable: false } } });
    expect(c.environment.etc[LINK]).toBeUndefined();
    expect(c.environment.etc[DROPIN]).toBeUndefined();
    expect(Object.keys(c.systemd.timers)).not.toContain('fstrim');
  });

  it('refuses an interval that would not stay one unit file entry, naming the option and its line', async () => {
    const dir = tempDir('fstrim');
    const file = join(dir, 'configuration.yaml');
    writeFileSync(file, 'services:\n  fstrim:\n    interval: "weekly\\nExecStart=/bin/sh"\n');
    await expect(evalSystem([file])).rejects.toThrow(/`services\.fstrim\.interval' is not of type `systemd calendar event[\s\S]*configuration\.yaml:3/);
    await expect(evalWith({ services: { fstrim: { interval: '' } } })).rejects.toThrow(/services\.fstrim\.interval/);
  });

  describe('with Debian\'s util-linux', () => {
    it('ships the units the module enables, and the timer with its drop-in passes systemd-analyze verify', async () => {
      mkdirSync(process.env.CAIRN_DEBIAN_CACHE!, { recursive: true });
      const store = Store.open(TEST_STORE_HOME);
      const { lock, repositories } = await lockPackages({ packages: ['util-linux'] });
      const realised = await realisePackages(lock, repositories, store);
      const pkg = store.toPhysical(realised.find((p) => p.name === 'util-linux')!.storePath);
      const units = join(pkg, 'usr/lib/systemd/system');
      // The drop-in's reset is needed because the packaged timer has a schedule of its own.
      expect(readFileSync(join(units, 'fstrim.timer'), 'utf8')).toMatch(/^OnCalendar=weekly$/m);
      expect(readFileSync(join(units, 'fstrim.service'), 'utf8')).toMatch(/^ExecStart=\/sbin\/fstrim /m);
      if (!hasCommand('systemd-analyze')) return;

      const c = await evalWith({ services: { fstrim: { interval: 'daily' } } });
      const { dir } = fakeRoot();
      // The package's own units and program, not whatever the host has.
      for (const f of ['fstrim.timer', 'fstrim.service']) copyFileSync(join(units, f), join(dir, 'usr/lib/systemd/system', f));
      copyFileSync(join(pkg, 'usr/sbin/fstrim'), join(dir, 'usr/sbin/fstrim'));
      writeEtc(c, dir);
      const verify = (interval: string) => {
        writeFileSync(join(dir, 'etc', DROPIN), etcText(c, DROPIN).replace('OnCalendar=daily', `OnCalendar=${interval}`));
        const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${dir}`, 'fstrim.timer'], { encoding: 'utf8' });
        return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
      };
      expect(verify('daily')).toEqual({ status: 0, out: '' });
      // The check is not empty: a schedule systemd cannot read is reported.
      expect(verify('every other tuesday').out).toMatch(/calendar/i);
    });
  });
});
