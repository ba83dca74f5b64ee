/**
 * `system.checks` through `cairn build`: generated files are checked by the system's own programs
 * (sshd, nginx, visudo from the packages in the store) and a refused file fails the build with the
 * checker's message and the user's definitions. Against the store the build tests share.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CACHE = join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const repo = resolve(import.meta.dirname, '../..');

let work: string;
const cairn = (args: string[]) => execa('node', [join(repo, 'bin/cairn.js'), ...args], { cwd: work, reject: false, env: { CAIRN_HOME: STORE_HOME, CAIRN_DEBIAN_CACHE: CACHE } });

/** A configuration importing the server example; `body` is YAML at the top level. */
function config(name: string, body: string): string {
  writeFileSync(join(work, name), `imports: [./server.yaml]\n${body}`);
  // The same packages as the server: its lock saves resolving them again.
  copyFileSync(join(work, 'server.lock'), join(work, name.replace(/\.yaml$/, '.lock')));
  return name;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cairn-build-checks-'));
  cpSync(join(repo, 'examples'), work, { recursive: true });
  const r = await cairn(['build', 'server.yaml', '--no-link']);
  expect(r.exitCode, r.stderr).toBe(0);
}, 600_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** What every refusal shares: exit 1, no stack trace, no scratch folder in the message. */
function expectRefused(r: { exitCode?: number; stderr: string }): void {
  expect(r.exitCode, r.stderr).toBe(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toContain('cairn-check-');
  expect(r.stderr).not.toContain('@dir@');
}

describe('cairn build checks the generated files', () => {
  it('refuses a broken services.nginx.appendHttpConfig with nginx\'s message and the definition', async () => {
    const r = await cairn(['build', config('nginx.yaml', 'services:\n  nginx:\n    appendHttpConfig: |\n      gzip maybe;\n'), '--no-link']);
    expectRefused(r);
    expect(r.stderr).toContain('services.nginx: `nginx -t` refused the generated nginx.conf:');
    expect(r.stderr).toMatch(/nginx: \[emerg\] invalid value "maybe" in "gzip" directive, it must be "on" or "off" in nginx\.conf:\d+/);
    expect(r.stderr).toContain('from services.nginx.appendHttpConfig defined at nginx.yaml:4:5');
    // Nothing past the check was built.
    expect(r.stderr).not.toContain('building the toplevel');
  }, 600_000);

  it('refuses a broken virtual host extraConfig naming that option; an ACME site passes with a throwaway certificate', async () => {
    const site = 'security:\n  acme:\n    acceptTerms: true\n    defaults: { email: admin@example.org }\nservices:\n  nginx:\n    virtualHosts:\n      shop.example.org:\n        enableACME: true\n        forceSSL: true\n';
    const r = await cairn(['build', config('vhost.yaml', `${site}        extraConfig: |\n          add_header X-Shop;\n`), '--no-link']);
    expectRefused(r);
    expect(r.stderr).toMatch(/nginx: \[emerg\] invalid number of arguments in "add_header" directive in nginx\.conf:\d+/);
    expect(r.stderr).toContain('from services.nginx.virtualHosts."shop.example.org".extraConfig defined at vhost.yaml:12:9');
    const ok = await cairn(['build', config('acme.yaml', `${site}        extraConfig: |\n          add_header X-Shop yes;\n`), '--no-link']);
    // (A check that passed once is not run again: the store keeps its mark.)
    expect(ok.exitCode, ok.stderr).toBe(0);
  }, 600_000);

  it('refuses a Caddyfile caddy cannot adapt, naming the site\'s extraConfig', async () => {
    const r = await cairn(['build', config('caddy.yaml', 'services:\n  caddy:\n    enable: true\n    virtualHosts:\n      localhost:\n        extraConfig: |\n          respond "hi"\n          no_such_directive\n'), '--no-link']);
    expectRefused(r);
    expect(r.stderr).toContain('services.caddy: `caddy adapt` refused the generated Caddyfile:');
    expect(r.stderr).toMatch(/unrecognized directive: no_such_directive/);
    expect(r.stderr).toContain('from services.caddy.virtualHosts."localhost".extraConfig defined at caddy.yaml:7:9');
  }, 600_000);

  it('refuses a broken services.openssh.extraConfig with sshd\'s message and the definition', async () => {
    const r = await cairn(['build', config('ssh.yaml', 'services:\n  openssh:\n    extraConfig: |\n      Match User deploy\n        NoSuchSetting yes\n'), '--no-link']);
    expectRefused(r);
    expect(r.stderr).toContain('services.openssh: `sshd -t` refused the generated sshd_config:');
    // The line is the one of /etc/ssh/sshd_config itself.
    expect(r.stderr).toMatch(/sshd_config: line 16: Bad configuration option: NoSuchSetting\n/);
    expect(r.stderr).toContain('from services.openssh.extraConfig defined at ssh.yaml:4:5');
  }, 600_000);

  it('refuses a setting sshd does not accept, naming services.openssh.settings', async () => {
    const r = await cairn(['build', config('ssh-settings.yaml', 'services:\n  openssh:\n    settings:\n      MaxAuthTries: lots\n'), '--no-link']);
    expectRefused(r);
    expect(r.stderr).toMatch(/sshd_config line \d+: MaxAuthTries integer value invalid/);
    expect(r.stderr).toMatch(/from services\.openssh\.settings defined at [^\n]*ssh-settings\.yaml:4:5/);
  }, 600_000);

  it('names every refused file of a build, sudoers too', async () => {
    const r = await cairn(['build', config('both.yaml', 'security:\n  sudo:\n    extraConfig: "deploy ALL=(root"\nservices:\n  nginx:\n    appendHttpConfig: "gzip maybe;"\n'), '--no-link']);
    expectRefused(r);
    expect(r.stderr).toContain('security.sudo: `visudo -c` refused the generated sudoers:');
    expect(r.stderr).toMatch(/syntax error/);
    expect(r.stderr).toContain('from security.sudo.extraConfig defined at both.yaml:4:5');
    expect(r.stderr).toContain('services.nginx: `nginx -t` refused the generated nginx.conf:');
  }, 600_000);

  it('builds a valid configuration, and a no-change rebuild runs no check', async () => {
    // A configuration of its own, so that its checks have not run in an earlier test run.
    const stamp = `${process.pid}-${Date.now()}`;
    const file = config('valid.yaml', `services:\n  nginx:\n    appendHttpConfig: |\n      # ${stamp}\n      gzip on;\n`);
    const first = await cairn(['build', file, '--no-link']);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/^checking .*services\.nginx/m);
    const again = await cairn(['build', file, '--no-link']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).not.toMatch(/^checking/m);
  }, 600_000);

  it('can be turned off for a file that names what only the running system has', async () => {
    const file = config('off.yaml', 'services:\n  nginx:\n    appendHttpConfig: "ssl_certificate /var/lib/acme/web1/cert.pem; ssl_certificate_key /var/lib/acme/web1/key.pem;"\n');
    const on = await cairn(['build', file, '--no-link']);
    expectRefused(on);
    expect(on.stderr).toContain('cert.pem');
    writeFileSync(join(work, file), `imports: [./server.yaml]\nservices:\n  nginx:\n    appendHttpConfig: "ssl_certificate /var/lib/acme/web1/cert.pem; ssl_certificate_key /var/lib/acme/web1/key.pem;"\nsystem:\n  checks:\n    services.nginx:\n      enable: false\n`);
    const off = await cairn(['build', file, '--no-link']);
    expect(off.exitCode, off.stderr).toBe(0);
  }, 600_000);

  it.runIf(process.getuid?.() === 0)('checks as an unprivileged user when root\'s store is below a folder only root may enter', async () => {
    // root's default store is below /root (mode 0700): the shared store, seen from such a folder.
    const closed = mkdtempSync(join(tmpdir(), 'cairn-checks-closed-'));
    try {
      chmodSync(closed, 0o700);
      const home = join(closed, 'home');
      mkdirSync(home);
      for (const d of ['store', 'var', 'gcroots', 'profiles']) symlinkSync(join(STORE_HOME, d), join(home, d));
      const env = { CAIRN_HOME: home, CAIRN_DEBIAN_CACHE: CACHE };
      const ok = await execa('node', [join(repo, 'bin/cairn.js'), 'build', 'server.yaml', '--no-link'], { cwd: work, reject: false, env });
      expect(ok.exitCode, ok.stderr).toBe(0);
      // All three ran (in the order their modules are evaluated).
      expect(ok.stderr.match(/^checking (.*)$/m)?.[1]?.split(', ').sort()).toEqual(['security.sudo', 'services.nginx', 'services.openssh']);
      const bad = await execa('node', [join(repo, 'bin/cairn.js'), 'build', config('closed.yaml', 'services:\n  openssh:\n    extraConfig: "NoSuchSetting yes"\n'), '--no-link'], { cwd: work, reject: false, env });
      expectRefused(bad);
      expect(bad.stderr).toContain('Bad configuration option: NoSuchSetting');
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  }, 600_000);

  it('runs only programs of the packages, none of the building machine', async () => {
    const r = await cairn(['build', config('escape.yaml', 'system:\n  checks:\n    web:\n      package: nginx\n      program: usr/sbin/nginx\n      setup: [["../../../../bin/sh", "-c", "true"]]\n'), '--no-link']);
    expectRefused(r);
    expect(r.stderr).toContain("system.checks.web: '../../../../bin/sh' is not a plain relative path");
    const missing = await cairn(['build', config('missing.yaml', 'system:\n  checks:\n    web:\n      package: nginx\n      program: usr/sbin/no-such-program\n'), '--no-link']);
    expectRefused(missing);
    expect(missing.stderr).toContain('system.checks.web: usr/sbin/no-such-program is in none of the packages');
  }, 600_000);

  it('refuses a check whose program is not in the system', async () => {
    writeFileSync(join(work, 'foreign.yaml'), 'imports: [./minimal.yaml]\nsystem:\n  checks:\n    web:\n      package: nginx\n      program: usr/sbin/nginx\n      args: ["-t"]\n');
    const r = await cairn(['build', 'foreign.yaml', '--no-link']);
    expectRefused(r);
    expect(r.stderr).toContain("system.checks.web: the package nginx is not one of the system's packages");
  }, 600_000);
});
