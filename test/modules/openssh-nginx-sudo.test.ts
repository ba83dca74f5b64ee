/**
 * The generated sshd_config, nginx.conf and sudoers are checked by the programs that read them
 * (`sshd -t`, `nginx -t`, `visudo -cf`): the ones of the Debian packages cairn unpacks into its
 * store, so the checks run on any build machine and use the versions the built system runs.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { etcText, evalConfig, evalServer, tempDir } from './helpers.js';
import { storePrograms, type StorePrograms } from './store-programs.js';

const ssh = (extra: object = {}) => evalConfig({ services: { openssh: { enable: true, ...extra } } });

let tools: StorePrograms;
beforeAll(async () => {
  tools = await storePrograms(['openssh-server', 'nginx', 'sudo'], ['usr/sbin/sshd', 'usr/bin/ssh-keygen', 'usr/sbin/nginx', 'usr/sbin/visudo']);
}, 600_000);

/** The script of sshd-keygen.service, running the store's ssh-keygen where the system runs its own. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function hostKeyScript(config: any): string {
  const text = config.systemd.services['sshd-keygen'].script as string;
  expect(text).toContain('/usr/bin/ssh-keygen ');
  return text.replaceAll('/usr/bin/ssh-keygen ', `${tools.path('ssh-keygen')} `);
}

/**
 * As root, sshd -t insists on the privilege separation user `sshd`, which belongs to the built
 * system, not to the build machine: there the check runs as an unprivileged user, owning its files.
 */
const UNPRIVILEGED = 65534;
function asSshdChecker(dir: string, files: string[]): SpawnSyncOptions {
  if (process.getuid?.() !== 0) return {};
  chmodSync(dir, 0o755);
  for (const f of files) chownSync(f, UNPRIVILEGED, UNPRIVILEGED);
  return { uid: UNPRIVILEGED, gid: UNPRIVILEGED, cwd: dir };
}

describe('the checking programs', () => {
  it('run from the store, with none of the host\'s libraries', () => {
    for (const name of ['sshd', 'ssh-keygen', 'nginx', 'visudo']) {
      const libs = tools.libraries(name);
      expect(libs.length, name).toBeGreaterThan(1);
      expect(libs.filter((l) => !l.startsWith(`${tools.store.dir}/`)), name).toEqual([]);
    }
    expect(spawnSync(tools.path('nginx'), ['-v'], { encoding: 'utf8' }).stderr).toMatch(/^nginx version: nginx\/\d/);
    expect(spawnSync(tools.path('visudo'), ['-V'], { encoding: 'utf8' }).stdout).toMatch(/^visudo version \d/);
  });
});

describe('services.openssh', () => {
  it('is key-only by default', async () => {
    const conf = etcText(await ssh(), 'ssh/sshd_config');
    expect(conf).toContain('\nPasswordAuthentication no\n');
    expect(conf).toContain('\nKbdInteractiveAuthentication no\n');
    expect(conf).toContain('\nPermitRootLogin prohibit-password\n');
    expect(conf).toContain('\nAuthorizedKeysFile %h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u\n');
  });

  it('opens its ports in the firewall, and only when enabled', async () => {
    expect((await evalConfig({})).networking.firewall.allowedTCPPorts).not.toContain(22);
    expect(etcText(await evalConfig({}), 'nftables.conf')).not.toMatch(/tcp dport/);
    expect(etcText(await ssh(), 'nftables.conf')).toContain('tcp dport { 22 } accept');
    expect(etcText(await ssh({ ports: [2222] }), 'nftables.conf')).toContain('tcp dport { 2222 } accept');
    expect(etcText(await ssh({ openFirewall: false }), 'nftables.conf')).not.toMatch(/tcp dport/);
  });

  it('does what the package postinst would: sshd user, /run/sshd, host keys before sshd starts', async () => {
    const c = await ssh();
    expect(c.users.users.sshd).toMatchObject({ isSystemUser: true, home: '/run/sshd' });
    expect(c.systemd.tmpfiles.rules).toContain('d /run/sshd 0755 root root -');
    expect(c.environment.systemPackages.map(String)).toContain('openssh-server');
    // The keys come from a unit sshd waits for (as NixOS's sshd-keygen), not from activation,
    // which runs before systemd: a first boot would wait for an RSA key before anything started.
    expect(c.system.activationScripts['ssh-host-keys']).toBeUndefined();
    expect(c.systemd.services['sshd-keygen'].script).toContain("-t ed25519 -N ''");
    expect(c.systemd.services['sshd-keygen'].script).toContain("-t rsa -b 4096 -N ''");
    const keygen = etcText(c, 'systemd/system/sshd-keygen.service');
    expect(keygen).toContain('\nConditionFileNotEmpty=|!/etc/ssh/ssh_host_ed25519_key\nConditionFileNotEmpty=|!/etc/ssh/ssh_host_rsa_key\n');
    expect(keygen).toContain('\nType=oneshot\n');
    expect(c.environment.etc['systemd/system/multi-user.target.wants/sshd-keygen.service']).toBeDefined();
    const sshd = etcText(c, 'systemd/system/sshd.service');
    expect(sshd).toMatch(/\nAfter=[^\n]*\bsshd-keygen\.service\b/);
    expect(sshd).toMatch(/\nWants=[^\n]*\bsshd-keygen\.service\b/);
    // Keys provisioned otherwise: no unit, and sshd does not ask for one.
    const own = await ssh({ generateHostKeys: false });
    expect(own.systemd.services['sshd-keygen']).toBeUndefined();
    expect(etcText(own, 'systemd/system/sshd.service')).not.toMatch(/\nWants=[^\n]*sshd-keygen/);
    // No key material in /etc entries (they end up in the world-readable store).
    expect(Object.values(c.environment.etc).some((e: any) => /PRIVATE KEY/.test(e.text ?? ''))).toBe(false);
  });

  it('writes declared keys per user', async () => {
    const c = await evalServer();
    expect(etcText(c, 'ssh/authorized_keys.d/alice')).toMatch(/^ssh-ed25519 \S+ alice@laptop\n$/);
    expect(c.environment.etc['ssh/authorized_keys.d/deploy']).toBeUndefined();
  });

  it('host key script makes keys once and keeps them', async () => {
    const dir = tempDir('hostkeys');
    const c = await ssh({ hostKeys: [{ type: 'ed25519', path: `${dir}/k/ed25519` }] });
    const script = hostKeyScript(c);
    expect(spawnSync('bash', ['-e', '-c', script]).status).toBe(0);
    const key = readFileSync(`${dir}/k/ed25519`, 'utf8');
    expect(key).toContain('OPENSSH PRIVATE KEY');
    expect(existsSync(`${dir}/k/ed25519.pub`)).toBe(true);
    expect(spawnSync('bash', ['-e', '-c', script]).status).toBe(0);
    expect(readFileSync(`${dir}/k/ed25519`, 'utf8')).toBe(key);
  });

  it('sshd -t accepts the generated config (openssh-server from the store)', async () => {
    const dir = tempDir('sshd');
    const c = await evalConfig({
      services: { openssh: { enable: true, hostKeys: [{ type: 'ed25519', path: `${dir}/ed25519` }], settings: { PermitRootLogin: 'no', MaxAuthTries: 3 }, extraConfig: 'Match User deploy\n  AllowTcpForwarding no' } },
    });
    expect(spawnSync('bash', ['-e', '-c', hostKeyScript(c)]).status).toBe(0);
    writeFileSync(join(dir, 'sshd_config'), etcText(c, 'ssh/sshd_config'));
    // And the check is real: a bad setting is refused.
    writeFileSync(join(dir, 'bad'), etcText(c, 'ssh/sshd_config') + 'NoSuchSetting yes\n');
    const as = asSshdChecker(dir, ['ed25519', 'ed25519.pub', 'sshd_config', 'bad'].map((f) => join(dir, f)));
    const r = spawnSync(tools.path('sshd'), ['-t', '-f', join(dir, 'sshd_config')], { encoding: 'utf8', ...as });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const bad = spawnSync(tools.path('sshd'), ['-t', '-f', join(dir, 'bad')], { encoding: 'utf8', ...as });
    expect(bad.stderr).toContain('Bad configuration option: NoSuchSetting');
    expect(bad.status).not.toBe(0);
  });
});

describe('services.nginx', () => {
  const site = {
    services: {
      nginx: {
        enable: true,
        virtualHosts: {
          'a.example.org': { root: '/srv/a', serverAliases: ['www.a.example.org'], locations: { '/api/': { proxyPass: 'http://127.0.0.1:8080' }, '/static/': { root: '/srv/static', extraConfig: 'expires 1d;' } } },
          b: { serverName: 'b.example.org', listen: [{ addr: '127.0.0.1', port: 8081 }], locations: { '/': { tryFiles: '$uri =404' } } },
        },
      },
    },
  };

  it('renders virtual hosts and locations', async () => {
    const conf = etcText(await evalConfig(site), 'nginx/nginx.conf');
    expect(conf).toContain('    server_name a.example.org www.a.example.org;\n    root /srv/a;\n');
    expect(conf).toContain('    location /api/ {\n      proxy_pass http://127.0.0.1:8080;\n');
    expect(conf).toContain('    location /static/ {\n      root /srv/static;\n      expires 1d;\n    }\n');
    expect(conf).toContain('    listen 127.0.0.1:8081;\n    server_name b.example.org;\n');
    // A location without its own root does not inherit the server's in the template.
    expect(conf).not.toMatch(/location \/api\/ \{\n\s+root/);
    expect(conf).toContain('user www-data www-data;');
  });

  it('does what the package postinst would, and reloads on change', async () => {
    const c = await evalConfig(site);
    expect(c.systemd.tmpfiles.rules).toContain('d /var/log/nginx 0750 root adm -');
    expect(etcText(c, 'systemd/system/nginx.service')).toMatch(/X-ReloadIfChanged=true/);
    const other = await evalConfig(site, { services: { nginx: { appendHttpConfig: 'gzip on;' } } });
    const trig = (x: any) => /X-Reload-Triggers=(\S+)/.exec(etcText(x, 'systemd/system/nginx.service'))![1];
    expect(trig(c)).not.toBe(trig(other));
  });

  it('nginx -t accepts the generated config (nginx from the store)', async () => {
    const dir = tempDir('nginx');
    for (const c of [await evalConfig(site), await evalServer()]) {
      const conf = etcText(c, 'nginx/nginx.conf').replace(/\/var\/(log|lib|cache)\/nginx/g, `${dir}/$1`).replace('/run/nginx.pid', `${dir}/nginx.pid`);
      for (const d of ['log', 'lib/body', 'lib/proxy', 'cache']) mkdirSync(join(dir, d), { recursive: true });
      writeFileSync(join(dir, 'nginx.conf'), conf);
      const r = spawnSync(tools.path('nginx'), ['-t', '-q', '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'log/error.log')], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    writeFileSync(join(dir, 'bad.conf'), etcText(await evalServer(), 'nginx/nginx.conf').replace('worker_processes auto;', 'worker_processes many;'));
    const bad = spawnSync(tools.path('nginx'), ['-t', '-q', '-c', join(dir, 'bad.conf'), '-e', join(dir, 'log/error.log')], { encoding: 'utf8' });
    expect(bad.stderr).toContain('"worker_processes" directive invalid value');
    expect(bad.status).not.toBe(0);
  });
});

describe('security.sudo', () => {
  it('lets wheel use sudo, with a password unless told otherwise', async () => {
    const c = await evalConfig({});
    expect(c.environment.etc.sudoers.mode).toBe('0440');
    expect(etcText(c, 'sudoers')).toContain('\n%wheel ALL=(ALL:ALL) SETENV: ALL\n');
    const np = await evalConfig({ security: { sudo: { wheelNeedsPassword: false, extraRules: [{ users: ['deploy'], runAs: 'root', commands: [{ command: '/usr/bin/systemctl restart nginx.service', options: ['NOPASSWD'] }] }] } } });
    expect(etcText(np, 'sudoers')).toContain('\n%wheel ALL=(ALL:ALL) NOPASSWD: SETENV: ALL\n');
    expect(etcText(np, 'sudoers')).toMatch(/\ndeploy ALL=\(root\) NOPASSWD: \/usr\/bin\/systemctl restart nginx.service\n$/);
    expect((await evalConfig({ security: { sudo: { enable: false } } })).environment.etc.sudoers).toBeUndefined();
  });

  it('renders structured extraRules as NixOS does, escaping what sudoers would read as separators', async () => {
    const c = await evalConfig({
      security: {
        sudo: {
          extraRules: [
            { users: ['alice', 1005], groups: ['ops', 2000], runAs: 'root', commands: ['/usr/bin/id', { command: '/usr/bin/env A=1,B:2', options: ['NOPASSWD', 'SETENV'] }] },
          ],
          extraConfig: 'Defaults timestamp_timeout=5',
        },
      },
    });
    const text = etcText(c, 'sudoers');
    const cmds = '/usr/bin/id, NOPASSWD:SETENV: /usr/bin/env A\\=1\\,B\\:2';
    expect(text).toContain(`\nalice ALL=(root) ${cmds}\n#1005 ALL=(root) ${cmds}\n%ops ALL=(root) ${cmds}\n%#2000 ALL=(root) ${cmds}\nDefaults timestamp_timeout=5\n`);
    const dir = tempDir('sudo-rules');
    writeFileSync(join(dir, 'sudoers'), text);
    const r = spawnSync(tools.path('visudo'), ['-c', '-q', '-f', join(dir, 'sudoers')], { encoding: 'utf8' });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    // What would end the rule or start a comment is refused where it is defined.
    for (const bad of [{ commands: ['/bin/sh\nroot ALL=(ALL) ALL'] }, { commands: ['/bin/true # x'] }, { runAs: 'root) ALL' }, { host: 'a b' }, { users: ['bob,root'] }]) {
      await expect(evalConfig({ security: { sudo: { extraRules: [{ users: ['alice'], commands: ['/bin/true'], ...bad }] } } })).rejects.toThrow(/security\.sudo\.extraRules/);
    }
  });

  it('visudo -cf accepts the generated sudoers (sudo from the store)', async () => {
    const dir = tempDir('sudo');
    for (const c of [await evalConfig({}), await evalConfig({ security: { sudo: { wheelNeedsPassword: false, extraRules: [{ users: ['deploy'], runAs: 'root', commands: [{ command: '/usr/bin/systemctl restart nginx.service', options: ['NOPASSWD'] }] }] } } })]) {
      writeFileSync(join(dir, 'sudoers'), etcText(c, 'sudoers'));
      const r = spawnSync(tools.path('visudo'), ['-c', '-q', '-f', join(dir, 'sudoers')], { encoding: 'utf8' });
      expect(r.status, r.stderr + r.stdout).toBe(0);
    }
    writeFileSync(join(dir, 'bad'), etcText(await evalConfig({ security: { sudo: { extraConfig: 'deploy ALL=(root' } } }), 'sudoers'));
    const bad = spawnSync(tools.path('visudo'), ['-c', '-f', join(dir, 'bad')], { encoding: 'utf8' });
    expect(bad.stderr + bad.stdout).toMatch(/syntax error/);
    expect(bad.status).not.toBe(0);
  });
});
