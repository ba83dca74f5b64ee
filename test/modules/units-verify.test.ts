import { accessSync, constants, existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { evalServer, fakeRoot, hasCommand, writeEtc } from './helpers.js';

/**
 * Programs that units run and that come from packages the host may lack (CI installs none of
 * them): a program missing on the host may be stubbed only if the configuration installs the
 * package that ships it. Anything else missing makes verification fail.
 */
const PROGRAMS: Record<string, string> = {
  '/usr/sbin/sshd': 'openssh-server',
  '/usr/sbin/nginx': 'nginx',
  '/usr/sbin/nft': 'nftables',
  '/lib/systemd/systemd-resolved': 'systemd-resolved',
  '/lib/systemd/systemd-timesyncd': 'systemd-timesyncd',
};

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function verify(rootDir: string, units: string[]) {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${rootDir}`, ...units], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

describe.runIf(hasCommand('systemd-analyze'))('units of the server example', () => {
  it('all pass systemd-analyze verify', async () => {
    const config = await evalServer();
    const { dir, stub } = fakeRoot();
    writeEtc(config, dir);
    const etcUnits = join(dir, 'etc/systemd/system');
    const units: string[] = [];
    for (const f of readdirSync(etcUnits)) {
      // Masked units (systemd.suppressedSystemUnits, disabled units) are links to /dev/null: nothing to verify.
      const masked = lstatSync(join(etcUnits, f)).isSymbolicLink() && readlinkSync(join(etcUnits, f)) === '/dev/null';
      if (/\.(service|socket|timer|target|path)$/.test(f) && !masked) units.push(`/etc/systemd/system/${f}`);
      // Drop-ins change packaged units: verify those present on the host (by name).
      const dropin = /^(.*)\.d$/.exec(f)?.[1];
      if (dropin && existsSync(join(dir, 'usr/lib/systemd/system', dropin.replace(/@[^.]*\./, '@.')))) units.push(dropin);
    }
    expect(units).toEqual(expect.arrayContaining(['/etc/systemd/system/sshd.service', '/etc/systemd/system/nginx.service', '/etc/systemd/system/disk-report.timer']));

    // First pass: learn which programs are missing below the root.
    const packages = new Set((config.environment.systemPackages as unknown[]).map(String));
    const first = verify(dir, units);
    const missing = [...first.out.matchAll(/Command (\S+) is not executable/g)].map((m) => m[1]!);
    for (const p of new Set(missing)) {
      if (p.startsWith('/etc/')) continue; // generated scripts must exist as written
      const provider = PROGRAMS[p];
      if (isExecutable(p) || (provider && packages.has(provider))) stub(p);
    }
    // Second pass: nothing at all may be reported.
    const second = verify(dir, units);
    expect(second.out).toBe('');
    expect(second.status).toBe(0);
  });

  it('catches a broken unit (the check is not empty)', async () => {
    const { dir } = fakeRoot();
    mkdirSync(join(dir, 'etc/systemd/system'), { recursive: true });
    writeFileSync(join(dir, 'etc/systemd/system/bad.service'), '[Service]\nType=oneshot\nExecStart=/usr/bin/true\nBogusKey=1\n');
    const r = verify(dir, ['/etc/systemd/system/bad.service']);
    expect(r.out).toMatch(/BogusKey|true is not executable/);
  });
});
