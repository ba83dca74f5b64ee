import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { etcText, evalConfig, evalServer, hasCommand, tempDir } from './helpers.js';

const unit = (config: unknown, name: string) => etcText(config, `systemd/system/${name}`);

describe('systemd.services', () => {
  it('renders NixOS-shaped services, with the switch keys NixOS writes', async () => {
    const c = await evalConfig({
      systemd: {
        services: {
          web: {
            description: 'A web app',
            wantedBy: ['multi-user.target'],
            requiredBy: ['app.target'],
            after: ['network.target'],
            wants: ['network-online.target'],
            environment: { GREETING: 'say "hi" at 100%', UNSET: null },
            path: ['rsync', '/opt/tool'],
            serviceConfig: { Restart: 'always', ExecStart: '/usr/bin/web --serve' },
            restartIfChanged: false,
            stopIfChanged: false,
            restartTriggers: ['v1'],
            reloadTriggers: ['r1'],
          },
        },
      },
    });
    const text = unit(c, 'web.service');
    expect(text).toContain('Description=A web app\n');
    expect(text).toContain('Wants=network-online.target\n');
    expect(text).toContain('After=network.target\n');
    expect(text).toMatch(/\[Unit\][^[]*X-Restart-Triggers=[0-9a-f]{16}\n/);
    expect(text).toMatch(/\[Unit\][^[]*X-Reload-Triggers=[0-9a-f]{16}\n/);
    expect(text).toMatch(/\[Service\][^[]*X-RestartIfChanged=false\n/);
    expect(text).toMatch(/\[Service\][^[]*X-StopIfChanged=false\n/);
    expect(text).not.toContain('X-ReloadIfChanged');
    // Quotes and backslashes escaped, % doubled (systemd specifiers); null variables left out.
    expect(text).toContain('Environment="GREETING=say \\"hi\\" at 100%%"\n');
    expect(text).not.toContain('UNSET');
    expect(text).toContain('Environment="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/tool/bin:/opt/tool/sbin"\n');
    expect(c.environment.systemPackages.map(String)).toContain('rsync');
    expect(c.environment.etc['systemd/system/multi-user.target.wants/web.service']).toMatchObject({ symlink: '/etc/systemd/system/web.service' });
    expect(c.environment.etc['systemd/system/app.target.requires/web.service']).toMatchObject({ symlink: '/etc/systemd/system/web.service' });
  });

  it('changes the unit when only a trigger changes', async () => {
    const mk = (v: string) => evalConfig({ systemd: { services: { a: { serviceConfig: { ExecStart: '/bin/true' }, restartTriggers: [v] } } } });
    expect(unit(await mk('one'), 'a.service')).not.toBe(unit(await mk('two'), 'a.service'));
  });

  it('turns scripts into executables named by their digest, so a changed script changes the unit', async () => {
    const mk = (script: string) => evalConfig({ systemd: { services: { job: { script, preStart: 'mkdir -p /var/lib/job', serviceConfig: { Type: 'oneshot' } } } } });
    const a = await mk('echo one');
    const b = await mk('echo two');
    const start = /ExecStart=(\/etc\/cairn\/scripts\/job-start-[0-9a-f]{16})\n/.exec(unit(a, 'job.service'))![1]!;
    expect(unit(a, 'job.service')).toMatch(/ExecStartPre=\/etc\/cairn\/scripts\/job-pre-start-[0-9a-f]{16}\n/);
    const entry = a.environment.etc[start.slice('/etc/'.length)];
    expect(entry.mode).toBe('0755');
    expect(entry.text).toMatch(/^#!\/bin\/bash\n/);
    expect(entry.text).toContain('set -e\necho one\n');
    expect(unit(b, 'job.service')).not.toContain(start);

    // The script runs as written, and `set -e` stops it at the first failure.
    const dir = tempDir('script');
    const file = join(dir, 'run');
    const failing = await mk(`echo ran > ${dir}/out\nfalse\necho after >> ${dir}/out`);
    const path = /ExecStart=\/etc\/(\S+)/.exec(unit(failing, 'job.service'))![1]!;
    writeFileSync(file, failing.environment.etc[path].text);
    chmodSync(file, 0o755);
    expect(spawnSync(file).status).not.toBe(0);
    expect(readFileSync(join(dir, 'out'), 'utf8')).toBe('ran\n');
  });

  it('adds a timer for startAt', async () => {
    const c = await evalConfig({ systemd: { services: { rep: { script: 'true', startAt: ['daily', 'Mon 12:00'] } } } });
    expect(unit(c, 'rep.timer')).toContain('[Timer]\nOnCalendar=daily\nOnCalendar=Mon 12:00\n');
    expect(c.environment.etc['systemd/system/timers.target.wants/rep.timer'].symlink).toBe('/etc/systemd/system/rep.timer');
  });

  it('writes a drop-in and links the packaged unit for asDropin', async () => {
    const c = await evalConfig({ systemd: { services: { 'getty@tty3': { overrideStrategy: 'asDropin', wantedBy: ['getty.target'], serviceConfig: { Nice: 5 } } } } });
    expect(etcText(c, 'systemd/system/getty@tty3.service.d/overrides.conf')).toContain('[Service]\nNice=5\n');
    expect(c.environment.etc['systemd/system/getty@tty3.service']).toBeUndefined();
    expect(c.environment.etc['systemd/system/getty.target.wants/getty@tty3.service'].symlink).toBe('/lib/systemd/system/getty@.service');
  });

  it('masks disabled units (packaged ones too) and refuses a service with nothing to run', async () => {
    const c = await evalConfig({ systemd: { services: { off: { enable: false, script: 'true', wantedBy: ['multi-user.target'] }, 'systemd-networkd-wait-online': { enable: false } } } });
    expect(Object.keys(c.environment.etc).filter((k) => k.includes('off.service'))).toEqual(['systemd/system/off.service']);
    expect(c.environment.etc['systemd/system/off.service'].symlink).toBe('/dev/null');
    expect(c.environment.etc['systemd/system/systemd-networkd-wait-online.service'].symlink).toBe('/dev/null');
    await expect(evalConfig({ systemd: { services: { empty: { description: 'x' } } } })).rejects.toThrow(/systemd.services.empty has neither `script' nor `serviceConfig.ExecStart'/);
  });

  it('renders sockets, targets and paths', async () => {
    const c = await evalConfig({
      systemd: {
        sockets: { echo: { listenStreams: ['127.0.0.1:7'], wantedBy: ['sockets.target'], socketConfig: { Accept: true } } },
        targets: { app: { description: 'The app', wants: ['web.service'] } },
        paths: { watch: { pathConfig: { PathChanged: '/etc/app.conf', Unit: 'reload-app.service' } } },
      },
    });
    expect(unit(c, 'echo.socket')).toContain('[Socket]\nListenStream=127.0.0.1:7\nAccept=true\n');
    expect(unit(c, 'app.target')).toContain('[Unit]\nDescription=The app\nWants=web.service\n');
    expect(unit(c, 'watch.path')).toContain('[Path]\nPathChanged=/etc/app.conf\nUnit=reload-app.service\n');
  });

  it('writes tmpfiles rules in order', async () => {
    const c = await evalConfig({ systemd: { tmpfiles: { rules: ['d /var/lib/a 0750 root root -', 'L+ /var/b - - - - /var/lib/a'] } } });
    expect(etcText(c, 'tmpfiles.d/00-cairn.conf')).toBe('# Generated by cairn from systemd.tmpfiles.rules; see tmpfiles.d(5).\nd /var/lib/a 0750 root root -\nL+ /var/b - - - - /var/lib/a\n');
  });

  it.runIf(hasCommand('systemd-tmpfiles'))('writes rules systemd-tmpfiles accepts', async () => {
    const c = await evalServer();
    const dir = tempDir('tmpfiles');
    writeFileSync(join(dir, 'cairn.conf'), etcText(c, 'tmpfiles.d/00-cairn.conf'));
    // --dry-run is not in 252; --root confines --create to a scratch tree.
    const r = spawnSync('systemd-tmpfiles', ['--create', `--root=${dir}`, join(dir, 'cairn.conf')], { encoding: 'utf8' });
    expect(r.stderr.replace(/.*Failed to resolve (user|group) '(deploy|www-data|adm)'.*\n?/g, '')).toBe('');
    expect(existsSync(join(dir, 'run/sshd')) && statSync(join(dir, 'run/sshd')).isDirectory()).toBe(true);
  });
});
