import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { etcText, evalConfig, evalServer, hasCommand, tempDir } from './helpers.js';

const ssh = (extra: object = {}) => evalConfig({ services: { openssh: { enable: true, ...extra } } });

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

  it('does what the package postinst would: sshd user, /run/sshd, host keys at activation', async () => {
    const c = await ssh();
    expect(c.users.users.sshd).toMatchObject({ isSystemUser: true, home: '/run/sshd' });
    expect(c.systemd.tmpfiles.rules).toContain('d /run/sshd 0755 root root -');
    expect(c.environment.systemPackages.map(String)).toContain('openssh-server');
    expect(c.system.activationScripts['ssh-host-keys'].text).toContain("-t ed25519 -N ''");
    // No key material in /etc entries (they end up in the world-readable store).
    expect(Object.values(c.environment.etc).some((e: any) => /PRIVATE KEY/.test(e.text ?? ''))).toBe(false);
  });

  it('writes declared keys per user', async () => {
    const c = await evalServer();
    expect(etcText(c, 'ssh/authorized_keys.d/alice')).toMatch(/^ssh-ed25519 \S+ alice@laptop\n$/);
    expect(c.environment.etc['ssh/authorized_keys.d/deploy']).toBeUndefined();
  });

  it.runIf(hasCommand('ssh-keygen'))('host key script makes keys once and keeps them', async () => {
    const dir = tempDir('hostkeys');
    const c = await ssh({ hostKeys: [{ type: 'ed25519', path: `${dir}/k/ed25519` }] });
    const script = c.system.activationScripts['ssh-host-keys'].text as string;
    expect(spawnSync('bash', ['-e', '-c', script]).status).toBe(0);
    const key = readFileSync(`${dir}/k/ed25519`, 'utf8');
    expect(key).toContain('OPENSSH PRIVATE KEY');
    expect(existsSync(`${dir}/k/ed25519.pub`)).toBe(true);
    expect(spawnSync('bash', ['-e', '-c', script]).status).toBe(0);
    expect(readFileSync(`${dir}/k/ed25519`, 'utf8')).toBe(key);
  });

  it.runIf(hasCommand('sshd') && hasCommand('ssh-keygen'))('sshd -t accepts the generated config (openssh-server on the host)', async () => {
    const dir = tempDir('sshd');
    const c = await evalConfig({
      services: { openssh: { enable: true, hostKeys: [{ type: 'ed25519', path: `${dir}/ed25519` }], settings: { PermitRootLogin: 'no', MaxAuthTries: 3 }, extraConfig: 'Match User deploy\n  AllowTcpForwarding no' } },
    });
    spawnSync('bash', ['-e', '-c', c.system.activationScripts['ssh-host-keys'].text]);
    writeFileSync(join(dir, 'sshd_config'), etcText(c, 'ssh/sshd_config'));
    mkdirSync('/run/sshd', { recursive: true });
    const r = spawnSync('sshd', ['-t', '-f', join(dir, 'sshd_config')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // And the check is real: a bad setting is refused.
    writeFileSync(join(dir, 'bad'), etcText(c, 'ssh/sshd_config') + 'NoSuchSetting yes\n');
    expect(spawnSync('sshd', ['-t', '-f', join(dir, 'bad')]).status).not.toBe(0);
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

  it.runIf(hasCommand('nginx'))('nginx -t accepts the generated config (nginx on the host)', async () => {
    const dir = tempDir('nginx');
    for (const c of [await evalConfig(site), await evalServer()]) {
      const conf = etcText(c, 'nginx/nginx.conf').replace(/\/var\/(log|lib|cache)\/nginx/g, `${dir}/$1`).replace('/run/nginx.pid', `${dir}/nginx.pid`);
      for (const d of ['log', 'lib/body', 'lib/proxy', 'cache']) mkdirSync(join(dir, d), { recursive: true });
      writeFileSync(join(dir, 'nginx.conf'), conf);
      const r = spawnSync('nginx', ['-t', '-q', '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'log/error.log')], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    writeFileSync(join(dir, 'bad.conf'), etcText(await evalServer(), 'nginx/nginx.conf').replace('worker_processes auto;', 'worker_processes many;'));
    expect(spawnSync('nginx', ['-t', '-q', '-c', join(dir, 'bad.conf'), '-e', join(dir, 'log/error.log')]).status).not.toBe(0);
  });
});

describe('security.sudo', () => {
  it('lets wheel use sudo, with a password unless told otherwise', async () => {
    const c = await evalConfig({});
    expect(c.environment.etc.sudoers.mode).toBe('0440');
    expect(etcText(c, 'sudoers')).toContain('\n%wheel ALL=(ALL:ALL) SETENV: ALL\n');
    const np = await evalConfig({ security: { sudo: { wheelNeedsPassword: false, extraRules: 'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx.service' } } });
    expect(etcText(np, 'sudoers')).toContain('\n%wheel ALL=(ALL:ALL) NOPASSWD: SETENV: ALL\n');
    expect(etcText(np, 'sudoers')).toMatch(/\ndeploy ALL=\(root\) NOPASSWD: \/usr\/bin\/systemctl restart nginx.service\n$/);
    expect((await evalConfig({ security: { sudo: { enable: false } } })).environment.etc.sudoers).toBeUndefined();
  });

  it.runIf(hasCommand('visudo'))('visudo -cf accepts the generated sudoers (sudo on the host)', async () => {
    const dir = tempDir('sudo');
    for (const c of [await evalConfig({}), await evalConfig({ security: { sudo: { wheelNeedsPassword: false, extraRules: 'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx.service' } } })]) {
      writeFileSync(join(dir, 'sudoers'), etcText(c, 'sudoers'));
      const r = spawnSync('visudo', ['-c', '-q', '-f', join(dir, 'sudoers')], { encoding: 'utf8' });
      expect(r.status, r.stderr + r.stdout).toBe(0);
    }
    writeFileSync(join(dir, 'bad'), etcText(await evalConfig({ security: { sudo: { extraRules: 'deploy ALL=(root' } } }), 'sudoers'));
    expect(spawnSync('visudo', ['-c', '-q', '-f', join(dir, 'bad')]).status).not.toBe(0);
  });
});
