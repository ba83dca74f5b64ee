/**
 * nginx's NixOS options as they render into nginx.conf (HTTPS and redirects, ACME sites, locations,
 * the global recommended settings, upstreams), the checks that refuse contradictory settings, and
 * security.acme's units and lego script, run here against a stand-in lego.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { storePrograms, type StorePrograms } from './store-programs.js';
import { CairnError } from '../../src/errors.js';
import { etcText, evalConfig, fakeRoot, hasCommand, tempDir, writeEtc, refusal } from './helpers.js';

const acme = { security: { acme: { acceptTerms: true, defaults: { email: 'admin@example.org' } } } };
const nginx = (virtualHosts: object, extra: object = {}) => ({ services: { nginx: { enable: true, virtualHosts, ...extra } } });
const conf = async (...modules: object[]) => etcText(await evalConfig(acme, ...modules), 'nginx/nginx.conf');
/** The server blocks of nginx.conf, each as its text. */
const servers = (text: string): string[] => text.split('\n  server {\n').slice(1).map((b) => b.slice(0, b.indexOf('\n  }\n')));

/** The message of the error evaluating `modules` (and reading every option) raises. */
const failure = (...modules: object[]): Promise<string> => refusal(acme, ...modules);

describe('services.nginx virtual hosts', () => {
  it('forceSSL: an HTTP block that redirects with redirectCode (and answers ACME), the site on 443 with HTTP/2', async () => {
    const [redirect, site] = servers(await conf(nginx({ 'a.example': { enableACME: true, forceSSL: true, redirectCode: 308, serverAliases: ['www.a.example'], root: '/srv/a' } })));
    expect(redirect).toContain('    listen 0.0.0.0:80;\n    listen [::]:80;\n    server_name a.example www.a.example;\n');
    expect(redirect).toContain('    location ^~ /.well-known/acme-challenge/ {\n      root /var/lib/acme/acme-challenge;\n      auth_basic off;\n    }\n');
    expect(redirect).toContain('    location / {\n      return 308 https://$host$request_uri;\n    }');
    expect(site).toContain('    listen 0.0.0.0:443 ssl;\n    listen [::]:443 ssl;\n    server_name a.example www.a.example;\n    http2 on;\n');
    expect(site).not.toMatch(/listen \S+:80/);
    expect(site).toContain('    ssl_certificate /var/lib/acme/a.example/fullchain.pem;\n    ssl_certificate_key /var/lib/acme/a.example/key.pem;\n    ssl_trusted_certificate /var/lib/acme/a.example/chain.pem;');
  });

  it("HTTP/2 is a listen parameter for Debian 12's nginx 1.22 (the server directive came in 1.25.1)", async () => {
    const [, site] = servers(await conf(nginx({ 'a.example': { forceSSL: true, sslCertificate: '/c', sslCertificateKey: '/k' } }), { system: { debian: { release: 'bookworm' } } }));
    expect(site).toContain('    listen 0.0.0.0:443 ssl http2;\n    listen [::]:443 ssl http2;\n    server_name a.example;\n');
    expect(site).not.toContain('http2 on;');
  });

  it('addSSL serves both ports in one block, onlySSL only 443; listen overrides both', async () => {
    const text = await conf(
      nginx({
        add: { addSSL: true, sslCertificate: '/etc/ssl/add.pem', sslCertificateKey: '/var/lib/keys/add.key', http2: false },
        only: { onlySSL: true, listenAddresses: ['127.0.0.1'], sslCertificate: '/etc/ssl/o.pem', sslCertificateKey: '/var/lib/keys/o.key' },
        own: { addSSL: true, sslCertificate: '/c', sslCertificateKey: '/k', default: true, listen: [{ addr: '192.0.2.1', port: 8443, ssl: true, extraParameters: ['backlog=1024'] }, { addr: 'unix:/run/x.sock' }] },
      }),
    );
    const [add, only, own] = servers(text);
    expect(add).toContain('    listen 0.0.0.0:443 ssl;\n    listen [::]:443 ssl;\n    listen 0.0.0.0:80;\n    listen [::]:80;\n');
    expect(add).toContain('ssl_certificate /etc/ssl/add.pem;\n    ssl_certificate_key /var/lib/keys/add.key;');
    expect(add).not.toContain('http2');
    expect(only).toContain('    listen 127.0.0.1:443 ssl;\n    server_name only;\n    http2 on;\n');
    expect(own).toContain('    listen 192.0.2.1:8443 ssl default_server backlog=1024;\n    listen unix:/run/x.sock default_server;\n');
  });

  it('useACMEHost serves another certificate and asks for none of its own; the certificate lists the names', async () => {
    const c = await evalConfig(acme, nginx({ 'a.example': { enableACME: true, forceSSL: true, serverAliases: ['b.example'] }, 'c.example': { useACMEHost: 'a.example', addSSL: true } }), {
      security: { acme: { certs: { 'a.example': { extraDomainNames: ['c.example'] } } } },
    });
    const site = servers(etcText(c, 'nginx/nginx.conf'))[2]!;
    expect(site).toContain('server_name c.example;');
    expect(site).toContain('ssl_certificate /var/lib/acme/a.example/fullchain.pem;');
    expect(site).toContain('location ^~ /.well-known/acme-challenge/');
    expect(Object.keys(c.security.acme.certs)).toEqual(['a.example']);
    const cert = c.security.acme.certs['a.example'];
    expect(cert).toMatchObject({ domain: 'a.example', webroot: '/var/lib/acme/acme-challenge', group: 'www-data', reloadServices: ['nginx.service'] });
    expect([...cert.extraDomainNames].sort()).toEqual(['b.example', 'c.example']);
    // nginx starts on the placeholder: it wants the self-signed units, lego orders after nginx.
    expect(etcText(c, 'systemd/system/nginx.service')).toMatch(/^Wants=acme-selfsigned-a\.example\.service$/m);
    expect(etcText(c, 'systemd/system/acme-a.example.service')).toMatch(/^After=.* nginx\.service$/m);
  });

  it('globalRedirect, rejectSSL, basicAuthFile and the site extraConfig', async () => {
    const [old, reject] = servers(
      await conf(nginx({ old: { globalRedirect: 'new.example', redirectCode: 302, basicAuthFile: '/var/lib/htpasswd', extraConfig: 'add_header X-Old yes;' }, reject: { default: true, rejectSSL: true } })),
    );
    expect(old).toContain('    location / {\n      return 302 http://new.example$request_uri;\n    }\n    auth_basic secured;\n    auth_basic_user_file /var/lib/htpasswd;\n    add_header X-Old yes;');
    expect(reject).toContain('listen 0.0.0.0:443 ssl default_server;');
    expect(reject).toContain('ssl_reject_handshake on;');
    expect(reject).not.toContain('ssl_certificate');
  });
});

describe('services.nginx locations', () => {
  it('render each option, in priority order, then by path', async () => {
    const text = await conf(
      nginx({
        s: {
          locations: {
            '/z/': { priority: 10, return: '301 https://x$request_uri' },
            '/b/': { alias: '/srv/b/', index: 'index.html', tryFiles: '$uri =404', basicAuthFile: '/var/lib/pw' },
            '/a/': { root: '/srv/a', extraConfig: 'expires 1d;' },
            '= /teapot': { return: 418, priority: 2000 },
          },
        },
      }),
    );
    const order = [...text.matchAll(/location (.+) \{/g)].map((m) => m[1]);
    expect(order).toEqual(['/z/', '/a/', '/b/', '= /teapot']);
    expect(text).toContain('    location /b/ {\n      index index.html;\n      try_files $uri =404;\n      alias /srv/b/;\n      auth_basic secured;\n      auth_basic_user_file /var/lib/pw;\n    }');
    expect(text).toContain('    location = /teapot {\n      return 418;\n    }');
  });

  it('proxyWebsockets: HTTP/1.1, Upgrade and Connection from the map; recommended headers again in the location', async () => {
    const plain = await conf(nginx({ s: { locations: { '/': { proxyPass: 'http://127.0.0.1:8080' } } } }));
    expect(plain).not.toContain('$connection_upgrade');
    expect(plain).not.toContain('X-Forwarded-Host');
    const text = await conf(nginx({ s: { locations: { '/ws/': { proxyPass: 'http://127.0.0.1:9000', proxyWebsockets: true } } } }, { recommendedProxySettings: true }));
    expect(text).toContain("  map $http_upgrade $connection_upgrade {\n    default upgrade;\n    '' close;\n  }");
    expect(text).toContain(
      '    location /ws/ {\n      proxy_pass http://127.0.0.1:9000;\n      proxy_http_version 1.1;\n      proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection $connection_upgrade;\n      proxy_set_header Host $host;\n',
    );
    expect(text).toContain('  proxy_set_header "Connection" "";\n');
  });
});

describe('services.nginx global options', () => {
  it('recommended settings, body size, TLS versions, upstreams, status page, http config before and after', async () => {
    const text = await conf(
      nginx(
        { s: {} },
        {
          recommendedTlsSettings: true,
          recommendedGzipSettings: true,
          recommendedOptimisation: true,
          clientMaxBodySize: '1g',
          sslCiphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
          statusPage: true,
          upstreams: { app: { servers: { '127.0.0.1:8000': {}, 'unix:/run/app.sock': { backup: true, parameters: ['weight=5'] } }, extraConfig: 'keepalive 8;' } },
          commonHttpConfig: 'resolver 127.0.0.1;',
          appendHttpConfig: 'server_names_hash_bucket_size 64;',
        },
      ),
    );
    expect(text).toMatch(/^http \{\n {2}resolver 127\.0\.0\.1;\n/m);
    expect(text).toMatch(/ {2}server_names_hash_bucket_size 64;\n\}\n$/);
    for (const line of ['client_max_body_size 1g;', 'ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;', 'ssl_session_tickets off;', 'gzip on;', 'tcp_nodelay on;']) {
      expect(text).toContain(`\n  ${line}\n`);
    }
    expect(text).toContain('  upstream app {\n    server 127.0.0.1:8000;\n    server unix:/run/app.sock backup weight=5;\n    keepalive 8;\n  }');
    expect(text).toContain('    location /nginx_status {\n      stub_status on;');
    const bare = await conf(nginx({ s: {} }));
    expect(bare).toContain('\n  client_max_body_size 10m;\n');
    expect(bare).not.toMatch(/gzip|ssl_session|tcp_nodelay|nginx_status|modules-available/);
  });

  it('package: a flavour is installed and its dynamic modules loaded', async () => {
    const c = await evalConfig(nginx({ s: {} }, { package: 'nginx-extras' }));
    expect(c.environment.systemPackages.map(String)).toContain('nginx-extras');
    expect(etcText(c, 'nginx/nginx.conf')).toContain('\ninclude /usr/share/nginx/modules-available/*.conf;\n');
    expect((await evalConfig(nginx({ s: {} }))).environment.systemPackages.map(String)).not.toContain('nginx-extras');
  });

  it('the build check names the extraConfig options, with a throwaway certificate for HTTPS sites', async () => {
    const c = await evalConfig(acme, nginx({ 'a.b': { enableACME: true, forceSSL: true, extraConfig: 'x;', locations: { '/': { extraConfig: 'y;' } } } }));
    const check = c.system.checks['services.nginx'];
    expect(check.options.slice(0, 2)).toEqual(['services.nginx.virtualHosts."a.b".extraConfig', 'services.nginx.virtualHosts."a.b".locations."/".extraConfig']);
    expect(check.setup[0].slice(0, 3)).toEqual(['usr/bin/openssl', 'req', '-x509']);
    expect(check.files['nginx.conf']).toContain('ssl_certificate @dir@/check-cert.pem;');
    expect(check.files['nginx.conf']).toContain('ssl_certificate_key @dir@/check-key.pem;');
    expect(check.files['nginx.conf']).not.toContain('/var/lib/acme/a.b/');
    expect(c.environment.systemPackages.map(String)).toContain('openssl');
  });
});

describe('nginx -t (from the store) accepts what every option renders', () => {
  let tools: StorePrograms;
  beforeAll(async () => {
    tools = await storePrograms(['nginx', 'openssl'], ['usr/sbin/nginx', 'usr/bin/openssl']);
  }, 600_000);

  it('as the build check runs it: its own copy of nginx.conf and a throwaway certificate', async () => {
    const c = await evalConfig(
      acme,
      nginx(
        {
          'a.example': {
            enableACME: true,
            forceSSL: true,
            serverAliases: ['www.a.example'],
            basicAuthFile: '/var/lib/pw',
            root: '/srv/a b;',
            locations: {
              '/ws/': { proxyPass: 'http://app', proxyWebsockets: true, priority: 10 },
              '/files/': { alias: '/srv/files/', index: 'index.html', tryFiles: '$uri =404', basicAuthFile: '/var/lib/pw2' },
              '= /gone': { return: '410' },
            },
            extraConfig: 'add_header X-A yes;',
          },
          'b.example': { useACMEHost: 'a.example', addSSL: true, globalRedirect: 'a.example', redirectCode: 308, http2: false },
          'c.example': { onlySSL: true, sslCertificate: '/etc/ssl/c.pem', sslCertificateKey: '/var/lib/keys/c.key', listen: [{ addr: '127.0.0.1', port: 8443, ssl: true, extraParameters: ['backlog=511'] }] },
          reject: { default: true, rejectSSL: true },
        },
        {
          recommendedProxySettings: true,
          recommendedTlsSettings: true,
          recommendedGzipSettings: true,
          recommendedOptimisation: true,
          clientMaxBodySize: '1g',
          statusPage: true,
          upstreams: { app: { servers: { '127.0.0.1:9000': {}, '127.0.0.1:9001': { backup: true } }, extraConfig: 'keepalive 4;' } },
          commonHttpConfig: 'charset utf-8;',
          appendHttpConfig: 'server_names_hash_bucket_size 64;',
        },
      ),
      { security: { acme: { certs: { 'a.example': { extraDomainNames: ['b.example'] } } } } },
    );
    const check = c.system.checks['services.nginx'];
    const dir = tempDir('nginx-t');
    const sub = (x: string) => x.split('@dir@').join(dir);
    writeFileSync(join(dir, 'nginx.conf'), sub(check.files['nginx.conf']));
    for (const [program, ...args] of check.setup as string[][]) {
      expect(program).toBe('usr/bin/openssl');
      const r = spawnSync(tools.path('openssl'), args.map(sub), { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    const run = (file: string) => spawnSync(tools.path('nginx'), ['-t', '-q', '-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, file)], { encoding: 'utf8' });
    const ok = run('nginx.conf');
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    // The check is real: a directive nginx does not know fails it.
    writeFileSync(join(dir, 'bad.conf'), sub(check.files['nginx.conf']).replace('add_header X-A yes;', 'add_header X-A;'));
    expect(run('bad.conf').stderr).toContain('invalid number of arguments in "add_header" directive');
  });
});

describe('services.nginx refuses what cannot work', () => {
  it.each([
    [{ s: { addSSL: true } }, '"s": HTTPS (addSSL, onlySSL or forceSSL) needs a certificate'],
    [{ s: { addSSL: true, forceSSL: true, enableACME: true } }, 'only one of addSSL, onlySSL, forceSSL and rejectSSL'],
    [{ s: { enableACME: true, useACMEHost: 'x' } }, 'enableACME and useACMEHost are exclusive'],
    [{ s: { useACMEHost: 'nowhere', forceSSL: true } }, '"s".useACMEHost: the certificate "nowhere" is not for s: declare it in security.acme.certs with these names as its domain or extraDomainNames'],
    [{ s: { quic: true } }, ".quic: Debian's nginx (1.22) is built without QUIC"],
    [{ s: { basicAuth: { alice: 'secret' } } }, '"s".basicAuth: passwords written here would be in the world-readable store'],
    [{ s: { locations: { '/': { basicAuth: { alice: 'secret' } } } } }, '"s".locations."/".basicAuth: passwords'],
  ])('%j', async (hosts, message) => {
    expect(await failure(nginx(hosts))).toContain(message);
  });

  it('a certificate of another group than nginx\'s', async () => {
    const msg = await failure(nginx({ s: { enableACME: true, forceSSL: true } }), { security: { acme: { certs: { s: { group: 'acme' } } } } });
    expect(msg).toContain('the certificate "s" belongs to the group acme, not nginx\'s group www-data');
  });
});

describe('security.acme', () => {
  const cert = (c: object = {}, top: object = {}) => evalConfig({ security: { acme: { acceptTerms: true, defaults: { email: 'a@example.org', ...top }, certs: { 'x.example': { webroot: '/var/lib/acme/acme-challenge', ...c } } } } });

  it('a placeholder unit, an order unit that boot does not wait for, a renewal timer; keys under /var/lib', async () => {
    const c = await cert({ group: 'www-data', reloadServices: ['nginx.service'] });
    const order = etcText(c, 'systemd/system/acme-x.example.service');
    expect(order).toMatch(/^Type=exec$/m);
    expect(order).toMatch(/^User=acme$/m);
    expect(order).toMatch(/^Group=www-data$/m);
    expect(order).toMatch(/^ExecStopPost=\+\/etc\/cairn\/scripts\/acme-x\.example-reload-/m);
    expect(order).toMatch(/^Restart=on-failure$/m);
    expect(c.environment.etc['systemd/system/multi-user.target.wants/acme-x.example.service']).toBeDefined();
    expect(etcText(c, 'systemd/system/acme-selfsigned-x.example.service')).toMatch(/^Type=oneshot$/m);
    const timer = etcText(c, 'systemd/system/acme-x.example.timer');
    expect(timer).toMatch(/^OnCalendar=daily$/m);
    expect(timer).toMatch(/^Persistent=true$/m);
    expect(c.environment.etc['systemd/system/timers.target.wants/acme-x.example.timer']).toBeDefined();
    expect(c.systemd.tmpfiles.rules).toEqual(expect.arrayContaining(['d /var/lib/acme/x.example 0750 acme www-data -', 'd /var/lib/acme/.lego/x.example 0700 acme acme -', 'd /var/lib/acme/acme-challenge 0755 acme www-data -']));
    expect(c.users.users.acme).toMatchObject({ isSystemUser: true, group: 'acme' });
    expect(c.environment.systemPackages.map(String)).toEqual(expect.arrayContaining(['lego', 'openssl']));
    expect(Object.values(c.environment.etc).some((e: any) => /PRIVATE KEY/.test(e.text ?? ''))).toBe(false);
    // No certificates, no units.
    expect((await evalConfig({})).environment.etc['systemd/system/acme-x.example.service']).toBeUndefined();
  });

  it.runIf(hasCommand('systemd-analyze'))('its units pass systemd-analyze verify', async () => {
    const c = await evalConfig(acme, nginx({ 'a.example': { enableACME: true, forceSSL: true } }));
    const { dir, stub } = fakeRoot();
    writeEtc(c, dir);
    for (const p of ['/usr/sbin/nginx', '/sbin/start-stop-daemon']) stub(p);
    const units = ['acme-a.example.service', 'acme-selfsigned-a.example.service', 'acme-a.example.timer', 'nginx.service'].map((u) => `/etc/systemd/system/${u}`);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${dir}`, ...units], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('certificates inherit defaults; DNS-01 takes the provider and the credentials files', async () => {
    const c = await cert({ webroot: null, dnsProvider: 'rfc2136', credentialsFile: '/var/lib/secrets/dns.env', dnsResolver: '192.0.2.53:53', dnsPropagationCheck: false }, { environmentFile: '/var/lib/secrets/ca.env', server: 'https://ca.example/dir', keyType: 'rsa4096', renewInterval: 'weekly' });
    const order = etcText(c, 'systemd/system/acme-x.example.service');
    expect(order.split('\n').filter((l) => l.startsWith('EnvironmentFile='))).toEqual(['EnvironmentFile=/var/lib/secrets/ca.env', 'EnvironmentFile=/var/lib/secrets/dns.env']);
    expect(etcText(c, 'systemd/system/acme-x.example.timer')).toMatch(/^OnCalendar=weekly$/m);
    const script = Object.entries(c.environment.etc as Record<string, { text: string }>).find(([k]) => k.startsWith('cairn/scripts/acme-x.example-order-'))![1].text;
    expect(script).toContain("'--server' 'https://ca.example/dir' '--key-type' 'rsa4096' '--domains' 'x.example' '--dns' 'rfc2136' '--dns.resolvers' '192.0.2.53:53' '--dns.disable-cp'");
    expect(script).not.toContain('--http');
  });

  it.each([
    [{ acceptTerms: false, defaults: { email: 'a@b.c' }, certs: { x: { webroot: '/w' } } }, 'security.acme.acceptTerms: you must accept'],
    [{ acceptTerms: true, certs: { x: { webroot: '/w' } } }, 'security.acme.certs."x".email: an account at the CA needs a contact address'],
    [{ acceptTerms: true, defaults: { email: 'a@b.c' }, certs: { x: {} } }, 'set webroot (HTTP-01, a folder the web server serves) or dnsProvider (DNS-01)'],
    [{ acceptTerms: true, defaults: { email: 'a@b.c' }, certs: { x: { domain: '*.b.c', webroot: '/w' } } }, 'a wildcard domain can only be validated by DNS-01'],
    [{ acceptTerms: true, defaults: { email: 'a@b.c' }, certs: { x: { dnsProvider: 'ovh', environmentFile: '/cairn/store/abc-secrets' } } }, 'environmentFile: /cairn/store/abc-secrets is in the world-readable store'],
  ])('refuses %j', async (acmeCfg, message) => {
    let msg = '';
    try {
      JSON.stringify(await evalConfig({ security: { acme: acmeCfg } }));
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toContain(message);
  });

  /**
   * The order script against a stand-in lego that writes a certificate as lego does (and logs its
   * arguments), with /var/lib/acme moved to a scratch folder.
   */
  it('orders with `run`, renews with `renew`, orders again when the domains change; new files reload the services', async () => {
    const work = tempDir('lego-script');
    const bin = join(work, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'lego'),
      `#!/bin/bash
echo "$@" >> ${work}/calls
[ "\${@: -1}" = run ] || [ "\${@: -4:1}" = renew ] || exit 0
cd certificates 2>/dev/null || { mkdir certificates && cd certificates; }
openssl req -x509 -config /dev/null -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=x.example -keyout x.example.key -out x.example.crt 2>/dev/null
cp x.example.crt x.example.issuer.crt
`,
    );
    chmodSync(join(bin, 'lego'), 0o755);
    const script = async (extra: object) => {
      const c = await cert(extra);
      const etc = c.environment.etc as Record<string, { text: string }>;
      const pick = (kind: string) => Object.entries(etc).find(([k]) => k.startsWith(`cairn/scripts/acme-x.example-${kind}-`))![1].text.replaceAll('/var/lib/acme', `${work}/acme`).replaceAll('/usr/bin/lego', `${bin}/lego`);
      return { order: pick('order'), reload: pick('reload').replace('systemctl --no-block try-reload-or-restart --', `echo reloaded >> ${work}/reloads; true`) };
    };
    mkdirSync(join(work, 'acme/.lego/x.example'), { recursive: true });
    mkdirSync(join(work, 'acme/x.example'), { recursive: true });
    const run = (text: string) => spawnSync('bash', ['-c', text], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    const first = await script({ reloadServices: ['nginx.service'] });
    expect(run(first.order).status).toBe(0);
    expect(run(first.reload).status).toBe(0);
    const calls = () => readFileSync(join(work, 'calls'), 'utf8').trim().split('\n');
    expect(calls().at(-1)).toMatch(/--domains x\.example --http --http\.webroot \S+\/acme\/acme-challenge run$/);
    for (const f of ['cert.pem', 'chain.pem', 'fullchain.pem', 'key.pem', 'full.pem']) expect(existsSync(join(work, 'acme/x.example', f)), f).toBe(true);
    expect(statSync(join(work, 'acme/x.example/key.pem')).mode & 0o777).toBe(0o640);
    expect(readFileSync(join(work, 'acme/x.example/full.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----[\s\S]*-----BEGIN CERTIFICATE-----/);
    expect(readFileSync(join(work, 'reloads'), 'utf8')).toBe('reloaded\n');
    // Same domains: a renewal, with the threshold; lego renewing writes a new certificate → reload.
    expect(run(first.order).status).toBe(0);
    expect(run(first.reload).status).toBe(0);
    expect(calls().at(-1)).toMatch(/ renew --no-random-sleep --days 30$/);
    expect(readFileSync(join(work, 'reloads'), 'utf8')).toBe('reloaded\nreloaded\n');
    // Another domain: a new order.
    const more = await script({ extraDomainNames: ['y.example'], reloadServices: ['nginx.service'] });
    expect(run(more.order).status).toBe(0);
    expect(calls().at(-1)).toMatch(/--domains x\.example --domains y\.example .* run$/);
  });
});

describe('services.caddy', () => {
  const caddy = (extra: object) => evalConfig({ services: { caddy: { enable: true, ...extra } } });

  it('renders the global options and a block per site; Debian\'s unit reloads on change', async () => {
    const c = await caddy({ email: 'admin@example.org', acmeCA: 'https://acme:14000/dir', virtualHosts: { 'example.org': { serverAliases: ['www.example.org'], extraConfig: 'root * /srv/http\nfile_server' } } });
    const text = etcText(c, 'caddy/Caddyfile');
    expect(text).toContain('{\n  email admin@example.org\n  acme_ca https://acme:14000/dir\n}\n');
    expect(text).toContain('example.org, www.example.org {\n  root * /srv/http\n  file_server\n}\n');
    expect(c.environment.systemPackages.map(String)).toContain('caddy');
    expect(c.users.users.caddy).toMatchObject({ isSystemUser: true, home: '/var/lib/caddy' });
    const dropin = etcText(c, 'systemd/system/caddy.service.d/overrides.conf');
    expect(dropin).toMatch(/^X-Reload-Triggers=/m);
    expect(c.environment.etc['systemd/system/multi-user.target.wants/caddy.service'].symlink).toBe('/lib/systemd/system/caddy.service');
    expect(c.system.checks['services.caddy'].options[0]).toBe('services.caddy.virtualHosts."example.org".extraConfig');
  });

  it.each([
    [{ email: 'a@b } evil {' }, 'services.caddy.email'],
    [{ acmeCA: 'https://x\nevil' }, 'services.caddy.acmeCA'],
    [{ virtualHosts: { 'a.org { }': {} } }, 'services.caddy.virtualHosts'],
    [{ virtualHosts: { a: { serverAliases: ['b{'] } } }, 'services.caddy.virtualHosts.a.serverAliases'],
  ])('refuses %j', async (extra, option) => {
    let msg = '';
    try {
      JSON.stringify(await caddy(extra));
    } catch (err) {
      expect(err).toBeInstanceOf(CairnError);
      msg = (err as Error).message;
    }
    expect(msg).toContain(`\`${option}`);
  });
});
