/** lib.systemd's service helpers: what a module gets from one call. */
import { describe, expect, it } from 'vitest';
import type { ModuleArgs } from '../../src/lib/index.js';
import { etcText, evalConfig } from './helpers.js';

describe('lib.systemd.stateService', () => {
  it('runs a service as an account of its own with its state folder in /var/lib', async () => {
    const c = await evalConfig(({ lib }: ModuleArgs) => ({
      config: lib.systemd.stateService('demo', { description: 'demo daemon', unit: { wantedBy: ['multi-user.target'], serviceConfig: { ExecStart: '/usr/bin/demo --data /var/lib/demo' } } }),
    }));
    expect(c.users.users.demo).toMatchObject({ isSystemUser: true, group: 'demo', home: '/var/lib/demo', description: 'demo daemon' });
    expect(c.users.groups.demo).toBeDefined();
    const unit = etcText(c, 'systemd/system/demo.service');
    for (const line of ['User=demo', 'Group=demo', 'StateDirectory=demo', 'StateDirectoryMode=0750', 'ExecStart=/usr/bin/demo --data /var/lib/demo']) expect(unit).toContain(`\n${line}\n`);
    expect(c.environment.etc['systemd/system/multi-user.target.wants/demo.service'].symlink).toBe('/etc/systemd/system/demo.service');
  });

  it('takes another account and folder name, and lets the unit override its entries', async () => {
    const c = await evalConfig(({ lib }: ModuleArgs) => ({
      config: lib.systemd.stateService('demo-web', { user: 'demo', stateDirectory: 'demo/web', unit: { serviceConfig: { ExecStart: '/usr/bin/demo', StateDirectoryMode: '0700' } } }),
    }));
    expect(c.users.users.demo).toMatchObject({ group: 'demo', home: '/var/lib/demo/web' });
    const unit = etcText(c, 'systemd/system/demo-web.service');
    expect(unit).toContain('\nUser=demo\n');
    expect(unit).toContain('\nStateDirectory=demo/web\n');
    expect(unit).toContain('\nStateDirectoryMode=0700\n');
  });
});

describe('lib.systemd.packagedService and configuredService', () => {
  const demo = (text: string, onChange?: 'restart' | 'reload') => ({ lib }: ModuleArgs) => ({
    config: lib.systemd.packagedService('demo', { packages: ['demo-pkg'], configFile: 'demo/demo.conf', text: () => text, ...(onChange ? { onChange } : {}), unit: { wantedBy: ['multi-user.target'] } }),
  });

  it('writes the file and a drop-in over the packaged unit whose restart trigger follows the file', async () => {
    const a = await evalConfig(demo('port=1\n'));
    expect(etcText(a, 'demo/demo.conf')).toBe('port=1\n');
    expect(a.environment.systemPackages.map(String)).toContain('demo-pkg');
    const dropIn = etcText(a, 'systemd/system/demo.service.d/overrides.conf');
    expect(dropIn).toMatch(/\nX-Restart-Triggers=[0-9a-f]{16}\n/);
    expect(a.environment.etc['systemd/system/multi-user.target.wants/demo.service'].symlink).toBe('/lib/systemd/system/demo.service');
    expect(a.environment.etc['systemd/system/demo.service']).toBeUndefined();

    const b = await evalConfig(demo('port=2\n'));
    expect(etcText(b, 'systemd/system/demo.service.d/overrides.conf')).not.toBe(dropIn);
    expect(etcText(await evalConfig(demo('port=1\n')), 'systemd/system/demo.service.d/overrides.conf')).toBe(dropIn);
  });

  it('reloads instead when asked', async () => {
    const c = await evalConfig(demo('port=1\n', 'reload'));
    const dropIn = etcText(c, 'systemd/system/demo.service.d/overrides.conf');
    expect(dropIn).toMatch(/\nX-Reload-Triggers=[0-9a-f]{16}\n/);
    expect(dropIn).not.toContain('X-Restart-Triggers');
  });

  it('writes a whole unit with configuredService', async () => {
    const c = await evalConfig(({ lib }: ModuleArgs) => ({
      config: lib.systemd.configuredService('demo', { configFile: 'demo.conf', text: () => 'x\n', unit: { serviceConfig: { ExecStart: '/usr/bin/demo -c /etc/demo.conf' } } }),
    }));
    const unit = etcText(c, 'systemd/system/demo.service');
    expect(unit).toContain('\nExecStart=/usr/bin/demo -c /etc/demo.conf\n');
    expect(unit).toMatch(/\nX-Restart-Triggers=[0-9a-f]{16}\n/);
  });
});
