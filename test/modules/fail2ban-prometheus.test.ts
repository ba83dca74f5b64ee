import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CairnError } from '../../src/errors.js';
import { etcText, evalConfig, fakeRoot, hasCommand, tempDir, writeEtc, refusal } from './helpers.js';
import { storePrograms, type StorePrograms } from './store-programs.js';

const failure = refusal;

/** The command line a service's start script runs, as bash splits it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function startArgv(c: any, unit: string): string[] {
  const script = /ExecStart=\/etc\/(\S+)/.exec(etcText(c, `systemd/system/${unit}`))![1]!;
  const text = etcText(c, script).replace(/\bexec (\S+)/, 'printf "%s\\n"');
  const r = spawnSync('bash', ['-c', text], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').slice(0, -1);
}

/** jail.local as fail2ban reads it: `{ section: { key: value } }` (continuation lines joined by \n). */
function readIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  let last = '';
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) section = out[header[1]!] = {};
    else if (/^\s/.test(line)) section![last] += `\n${line.trim()}`;
    else {
      const m = /^([^=]+?) = (.*)$/.exec(line)!;
      last = m[1]!;
      section![last] = m[2]!;
    }
  }
  return out;
}

describe('services.fail2ban', () => {
  it("bans through nftables, reads the journal, and jails sshd on sshd's ports (as NixOS)", async () => {
    const c = await evalConfig({ services: { openssh: { enable: true, ports: [22, 2222] }, fail2ban: { enable: true, ignoreIP: ['192.168.0.0/16'], bantime: '1h' } } });
    const jails = readIni(etcText(c, 'fail2ban/jail.local'));
    expect(jails.DEFAULT).toEqual({
      banaction: 'nftables-multiport',
      banaction_allports: 'nftables-allports',
      backend: 'systemd',
      maxretry: '3',
      bantime: '1h',
      ignoreip: '127.0.0.1/8 ::1 192.168.0.0/16',
    });
    expect(jails.sshd).toEqual({ enabled: 'true', port: '22,2222' });
    // The journal backend's module, and the firewall tool the actions run.
    expect(c.environment.systemPackages.map(String)).toEqual(expect.arrayContaining(['fail2ban', 'python3-systemd', 'nftables']));
    // sshd logs the failures the filter reads.
    expect(c.services.openssh.settings.LogLevel).toBe('VERBOSE');
    expect(etcText(c, 'ssh/sshd_config')).toContain('LogLevel VERBOSE');
    // Debian's own choice of jails is emptied: only declared jails run.
    expect(etcText(c, 'fail2ban/jail.d/defaults-debian.conf')).not.toMatch(/^\s*\[|enabled/m);
    expect(readIni(etcText(c, 'fail2ban/fail2ban.local')).Definition).toMatchObject({ logtarget: 'SYSLOG', socket: '/run/fail2ban/fail2ban.sock', dbfile: '/var/lib/fail2ban/fail2ban.sqlite3' });
    // Debian's unit, changed by a drop-in: started at boot, restarted with the firewall and on a new jail.local.
    const dropin = etcText(c, 'systemd/system/fail2ban.service.d/overrides.conf');
    expect(dropin).toContain('PartOf=nftables.service\n');
    expect(dropin).toContain('StateDirectory=fail2ban\n');
    // NixOS's sandbox: no devices, kernel tunables or modules for a daemon that reads the journal and runs nft.
    for (const line of ['PrivateDevices=true', 'ProtectKernelTunables=true', 'ProtectKernelModules=true', 'NoNewPrivileges=true']) expect(dropin).toContain(`${line}\n`);
    // Its modules are compiled in sw (src/build/python.ts): a cache prefix would make Python look only there.
    expect(dropin).not.toContain('PYTHONPYCACHEPREFIX');
    expect(c.environment.etc['systemd/system/multi-user.target.wants/fail2ban.service'].symlink).toBe('/lib/systemd/system/fail2ban.service');
    const other = await evalConfig({ services: { openssh: { enable: true, ports: [22, 2222] }, fail2ban: { enable: true, ignoreIP: ['192.168.0.0/16'], bantime: '2h' } } });
    expect(/X-Restart-Triggers=(\w+)/.exec(dropin)![1]).not.toBe(/X-Restart-Triggers=(\w+)/.exec(etcText(other, 'systemd/system/fail2ban.service.d/overrides.conf'))![1]);
  });

  it('has no sshd jail without sshd, and the sshd jail can be turned off', async () => {
    const alone = await evalConfig({ services: { fail2ban: { enable: true } } });
    expect(readIni(etcText(alone, 'fail2ban/jail.local')).sshd).toBeUndefined();
    const off = await evalConfig({ services: { openssh: { enable: true }, fail2ban: { enable: true, jails: { sshd: { enabled: false } } } } });
    expect(readIni(etcText(off, 'fail2ban/jail.local')).sshd).toEqual({ enabled: 'false', port: '22' });
  });

  it('writes jails as settings, inline filters and text, and bantime-increment in DEFAULT', async () => {
    const c = await evalConfig({
      services: {
        fail2ban: {
          enable: true,
          'bantime-increment': { enable: true, maxtime: '48h', overalljails: true },
          jails: {
            app: {
              filter: { Definition: { failregex: '^Login failed from <HOST>$\n            ^Bad token from <HOST>$', journalmatch: '_SYSTEMD_UNIT=app.service' } },
              settings: { port: 8080, findtime: '10m' },
            },
            dovecot: { filter: 'dovecot[mode=aggressive]' },
            nginx: { filter: 'nginx-http-auth', settings: { backend: 'auto', logpath: '/var/log/nginx/error.log' } },
            raw: 'enabled = true\nfilter = sshd\nport = 2022\n',
          },
        },
      },
    });
    const jails = readIni(etcText(c, 'fail2ban/jail.local'));
    expect(jails.DEFAULT).toMatchObject({ 'bantime.increment': 'true', 'bantime.maxtime': '48h', 'bantime.overalljails': 'true' });
    expect(jails.DEFAULT!['bantime.formula']).toBeUndefined();
    expect(jails.app).toEqual({ enabled: 'true', filter: 'cairn-app', port: '8080', findtime: '10m' });
    expect(jails.nginx).toEqual({ enabled: 'true', filter: 'nginx-http-auth', backend: 'auto', logpath: '/var/log/nginx/error.log' });
    expect(jails.dovecot).toEqual({ enabled: 'true', filter: 'dovecot[mode=aggressive]' });
    expect(jails.raw).toEqual({ enabled: 'true', filter: 'sshd', port: '2022' });
    const filter = readIni(etcText(c, 'fail2ban/filter.d/cairn-app.local'));
    expect(filter.Definition!.failregex).toBe('^Login failed from <HOST>$\n^Bad token from <HOST>$');
  });

  it.each([
    [{ jails: { app: { settings: { failregex: 'one\nlogpath = /etc/shadow' } } } }, 'services.fail2ban.jails.app.settings.failregex'],
    [{ jails: { 'a]b': { settings: {} } } }, 'services.fail2ban.jails'],
    [{ jails: { app: { settings: { 'x = y': 1 } } } }, 'services.fail2ban.jails.app.settings'],
    [{ ignoreIP: ['10.0.0.1\nbackend = auto'] }, 'services.fail2ban.ignoreIP'],
    [{ 'bantime-increment': { enable: true, formula: 'ban.Time', multipliers: '1 2 4' } }, 'formula and multipliers cannot both be set'],
  ])('refuses %j', async (fail2ban, message) => {
    expect(await failure({ services: { fail2ban: { enable: true, ...fail2ban } } })).toContain(message);
  });
});

const node = { job_name: 'node', static_configs: [{ targets: ['127.0.0.1:9100'], labels: { role: 'yes' } }] };

describe('services.prometheus', () => {
  it("renders prometheus.yml, the rules file and NixOS's command line", async () => {
    const c = await evalConfig({
      services: {
        prometheus: {
          enable: true,
          port: 9191,
          listenAddress: '[::1]',
          retentionTime: '30d',
          stateDir: 'metrics',
          extraFlags: ['--web.page-title=it\'s "$HOME" `x`'],
          globalConfig: { scrape_interval: '15s', external_labels: { site: 'on' } },
          scrapeConfigs: [node, { job_name: 'self', scrape_interval: '5s', metrics_path: '/metrics', static_configs: [{ targets: ['localhost:9191'] }], tls_config: { ca_file: '/etc/ssl/ca.pem' } }],
          rules: ['groups:\n  - name: up\n    rules:\n      - alert: Down\n        expr: up == 0\n'],
          ruleFiles: ['/var/lib/rules/*.yml'],
        },
      },
    });
    const yml = parseYaml(etcText(c, 'prometheus/prometheus.yml'));
    expect(yml).toEqual({
      global: { scrape_interval: '15s', external_labels: { site: 'on' } },
      rule_files: ['/var/lib/rules/*.yml', '/etc/prometheus/rules.yml'],
      scrape_configs: [
        { job_name: 'node', static_configs: [{ targets: ['127.0.0.1:9100'], labels: { role: 'yes' } }] },
        { job_name: 'self', scrape_interval: '5s', metrics_path: '/metrics', static_configs: [{ targets: ['localhost:9191'], labels: {} }], tls_config: { ca_file: '/etc/ssl/ca.pem' } },
      ],
    });
    expect(parseYaml(etcText(c, 'prometheus/rules.yml')).groups[0].rules[0].alert).toBe('Down');
    expect(startArgv(c, 'prometheus.service')).toEqual([
      '--config.file=/etc/prometheus/prometheus.yml',
      '--storage.tsdb.path=/var/lib/metrics/data/',
      '--web.listen-address=[::1]:9191',
      '--storage.tsdb.retention.time=30d',
      '--web.page-title=it\'s "$HOME" `x`',
    ]);
    const unit = etcText(c, 'systemd/system/prometheus.service');
    expect(unit).toContain('User=prometheus\n');
    expect(unit).toContain('StateDirectory=metrics\n');
    expect(unit).toMatch(/X-Reload-Triggers=/);
    expect(c.users.users.prometheus).toMatchObject({ isSystemUser: true, group: 'prometheus', home: '/var/lib/metrics' });
    expect(c.system.checks['services.prometheus'].args).toEqual(['check', 'config', '@dir@/prometheus.yml']);
  });

  it('leaves out the rules file without rules, and the check with checkConfig = false', async () => {
    const c = await evalConfig({ services: { prometheus: { enable: true, checkConfig: false, scrapeConfigs: [node] } } });
    expect(parseYaml(etcText(c, 'prometheus/prometheus.yml')).rule_files).toEqual([]);
    expect(c.environment.etc['prometheus/rules.yml']).toBeUndefined();
    expect(c.system.checks['services.prometheus']).toBeUndefined();
    expect(startArgv(c, 'prometheus.service')).toEqual(['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/var/lib/prometheus2/data/', '--web.listen-address=0.0.0.0:9090']);
    const syntax = await evalConfig({ services: { prometheus: { enable: true, checkConfig: 'syntax-only' } } });
    expect(syntax.system.checks['services.prometheus'].args).toEqual(['check', 'config', '--syntax-only', '@dir@/prometheus.yml']);
  });

  it.each([
    [{ scrapeConfigs: [{ ...node, basic_auth: { username: 'u', password: 'hunter2' } }] }, 'services.prometheus.scrapeConfigs[0].basic_auth.password: a secret in prometheus.yml would be in the world-readable store', 'password_file'],
    [{ scrapeConfigs: [{ ...node, authorization: { credentials: 'tok' } }] }, 'services.prometheus.scrapeConfigs[0].authorization.credentials', 'credentials_file'],
    [{ retentionTime: '30 days' }, 'services.prometheus.retentionTime', ''],
    [{ stateDir: '../etc' }, 'services.prometheus.stateDir', ''],
    [{ stateDir: 'a/./b' }, 'services.prometheus.stateDir', ''],
    [{ extraFlags: ['--a\n--b'] }, 'services.prometheus.extraFlags', ''],
    [{ scrapeConfigs: [{ static_configs: [] }] }, 'job_name', ''],
  ])('refuses %j', async (prometheus, message, instead) => {
    const m = await failure({ services: { prometheus: { enable: true, ...prometheus } } });
    expect(m).toContain(message);
    expect(m).toContain(instead);
  });
});

describe('services.prometheus.exporters.node', () => {
  it('runs with collector flags as its own account, and opens its port only with openFirewall', async () => {
    const c = await evalConfig({
      services: { prometheus: { exporters: { node: { enable: true, port: 9101, listenAddress: '127.0.0.1', enabledCollectors: ['systemd', 'processes'], disabledCollectors: ['timex'], extraFlags: ['--collector.textfile.directory=/var/lib/n e'] } } } },
    });
    expect(startArgv(c, 'prometheus-node-exporter.service')).toEqual([
      '--collector.systemd',
      '--collector.processes',
      '--no-collector.timex',
      '--web.listen-address=127.0.0.1:9101',
      '--collector.textfile.directory=/var/lib/n e',
    ]);
    expect(etcText(c, 'systemd/system/prometheus-node-exporter.service')).toContain('User=node-exporter\n');
    expect(c.users.users['node-exporter']).toMatchObject({ isSystemUser: true, group: 'node-exporter' });
    expect(c.environment.systemPackages.map(String)).toContain('prometheus-node-exporter');
    // The textfile collector's folder, which Debian's postinst would make.
    expect(c.systemd.tmpfiles.rules).toContain('d /var/lib/prometheus/node-exporter 0755 root root -');
    expect(c.networking.firewall.ruleset).not.toContain('9101');

    const open = await evalConfig({ services: { prometheus: { exporters: { node: { enable: true, openFirewall: true } } } } });
    expect(open.networking.firewall.ruleset).toMatch(/^\s*tcp dport 9100 accept$/m);
    const own = await evalConfig({ services: { prometheus: { exporters: { node: { enable: true, openFirewall: true, firewallRules: 'iifname "eth1" tcp dport 9100 accept' } } } } });
    expect(own.networking.firewall.ruleset).toContain('iifname "eth1" tcp dport 9100 accept');
    expect(own.networking.firewall.ruleset).not.toMatch(/^\s*tcp dport 9100 accept$/m);
  });

  it.each([[{ enabledCollectors: ['systemd --web.listen-address=:1'] }], [{ user: 'a b' }]])('refuses %j', async (n) => {
    expect(await failure({ services: { prometheus: { exporters: { node: { enable: true, ...n } } } } })).toContain('services.prometheus.exporters.node.');
  });
});

describe('promtool check config (from the store) as the build check runs it', () => {
  let tools: StorePrograms;
  beforeAll(async () => {
    tools = await storePrograms(['prometheus'], ['usr/bin/promtool']);
  }, 600_000);

  const check = async (rules: string[]) => {
    const c = await evalConfig({ services: { prometheus: { enable: true, scrapeConfigs: [node], rules, ruleFiles: ['/nowhere/*.yml'] } } });
    const spec = c.system.checks['services.prometheus'];
    expect([String(spec.package), spec.program]).toEqual(['prometheus', 'usr/bin/promtool']);
    const dir = tempDir('promtool');
    const sub = (x: string) => x.split('@dir@').join(dir);
    for (const [name, text] of Object.entries(spec.files as Record<string, string>)) writeFileSync(join(dir, name), sub(text));
    return spawnSync(tools.path('promtool'), spec.args.map(sub), { encoding: 'utf8' });
  };

  it('accepts the generated file and rules, and refuses a rule that is not PromQL', async () => {
    const ok = await check(['groups:\n  - name: up\n    rules:\n      - alert: Down\n        expr: up == 0\n']);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain('SUCCESS: 1 rules found');
    const bad = await check(['groups:\n  - name: up\n    rules:\n      - alert: Down\n        expr: up ==\n']);
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain('parse error');
  });
});

describe.runIf(hasCommand('systemd-analyze'))('the units', () => {
  it('pass systemd-analyze verify', async () => {
    const c = await evalConfig({ services: { prometheus: { enable: true, extraFlags: ['--x=%h $HOME'], scrapeConfigs: [node], exporters: { node: { enable: true } } } } });
    const { dir, stub } = fakeRoot();
    writeEtc(c, dir);
    stub('/usr/bin/kill'); // procps's, as openssh's ExecReload uses it
    const units = ['/etc/systemd/system/prometheus.service', '/etc/systemd/system/prometheus-node-exporter.service'];
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${dir}`, ...units], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});
