/**
 * Nothing a configuration says can inject: option text that reaches a generated file or script
 * either is refused (a CairnError naming the option and the definition's file:line) or ends up
 * inert (quoted or escaped by the target format's rules).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CairnError } from '../../src/errors.js';
import { evalConfigFile, toPlain } from '../../src/eval/index.js';
import { activateScript } from '../../src/build/activate.js';
import { lib, type SectionEntries } from '../../src/lib/index.js';
import { shellComment, shellQuote } from '../../src/shell.js';
import { etcText, tempDir } from './helpers.js';

const dir = tempDir('injection');
let serial = 0;

/** Evaluates a YAML configuration and reads every option (so every generator runs); the config. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function evalYaml(yaml: string): Promise<{ file: string; config: any }> {
  const file = join(dir, `cfg${++serial}.yaml`);
  writeFileSync(file, yaml);
  const { config } = await evalConfigFile(file);
  // As cairn reads a whole configuration (configuration.json): an option with no value is left out.
  toPlain(config);
  return { file, config };
}

/** The error of evaluating `yaml`, which must be a CairnError. */
async function refusal(yaml: string): Promise<{ file: string; message: string }> {
  const file = join(dir, `cfg${serial + 1}.yaml`);
  try {
    await evalYaml(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(CairnError);
    return { file, message: (err as Error).message };
  }
  throw new Error(`not refused:\n${yaml}`);
}

/** Runs bash on `script` in `cwd`; its status and output. */
function bash(script: string, cwd: string, args: string[] = []): { status: number | null; out: string } {
  const r = spawnSync('bash', [...args, '-c', script], { cwd, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * Options whose text reaches a file or script, each with a payload that tries to add a line, a
 * directive, a component or a command: refused with the option path and the line marked `# here`.
 */
const refused: { what: string; option: string; yaml: string }[] = [
  { what: 'a newline in an /etc name', option: 'environment.etc', yaml: 'environment:\n  etc:\n    "x\\nshadow": { text: hi }  # here\n' },
  { what: '.. in an /etc name', option: 'environment.etc', yaml: 'environment:\n  etc:\n    "x/../../root/.profile": { text: hi }  # here\n' },
  { what: 'a newline in an /etc target', option: 'environment.etc.motd.target', yaml: 'environment:\n  etc:\n    motd:\n      target: "x\\nshadow"  # here\n      text: hi\n' },
  { what: 'a tab in the owner of an /etc copy', option: 'environment.etc.motd.user', yaml: 'environment:\n  etc:\n    motd:\n      text: hi\n      mode: "0644"\n      user: "root\\tx"  # here\n' },
  { what: 'a newline in a service name', option: 'systemd.services', yaml: 'systemd:\n  services:\n    "x\\ntouch /tmp/pwned":  # here\n      script: "true"\n' },
  { what: 'a slash in a service name', option: 'systemd.services', yaml: 'systemd:\n  services:\n    "../../shadow":  # here\n      script: "true"\n' },
  { what: 'a newline in an after entry', option: 'systemd.services.x.after', yaml: 'systemd:\n  services:\n    x:\n      script: "true"\n      after: ["network.target\\nExecStartPre=/bin/evil"]  # here\n' },
  { what: 'a newline in a wantedBy entry', option: 'systemd.services.x.wantedBy', yaml: 'systemd:\n  services:\n    x:\n      script: "true"\n      wantedBy: ["../../x\\ny"]  # here\n' },
  { what: 'a newline in an environment variable name', option: 'systemd.services.x.environment', yaml: 'systemd:\n  services:\n    x:\n      script: "true"\n      environment:\n        "A\\nExecStart=/bin/evil": b  # here\n' },
  { what: 'a newline in a serviceConfig key', option: 'systemd.services.x.serviceConfig', yaml: 'systemd:\n  services:\n    x:\n      script: "true"\n      serviceConfig:\n        "User=root\\nExecStart": /bin/evil  # here\n' },
  { what: 'a carriage return in a serviceConfig value', option: 'systemd.services.x.serviceConfig', yaml: 'systemd:\n  services:\n    x:\n      serviceConfig:\n        ExecStart: "/bin/true\\rExecStartPre=/bin/evil"  # here\n' },
  { what: 'a trailing backslash in a unitConfig value', option: 'systemd.services.x.unitConfig', yaml: 'systemd:\n  services:\n    x:\n      script: "true"\n      unitConfig:\n        Description: "joins the next line\\\\"  # here\n' },
  { what: 'a newline in a description', option: 'systemd.services.x.description', yaml: 'systemd:\n  services:\n    x:\n      script: "true"\n      description: "x\\nExecStartPre=/bin/evil"  # here\n' },
  { what: 'a newline in a network file name', option: 'systemd.network.networks', yaml: 'systemd:\n  network:\n    enable: true\n    networks:\n      "../x": {}  # here\n' },
  { what: 'a newline in a manager variable', option: 'systemd.managerEnvironment', yaml: 'systemd:\n  managerEnvironment:\n    "A\\nB": x  # here\n' },
  { what: 'a newline in a tmpfiles rule', option: 'systemd.tmpfiles.rules', yaml: 'systemd:\n  tmpfiles:\n    rules: ["d /x 0755 root root -\\nL+ /etc/shadow - - - - /tmp/x"]  # here\n' },
  { what: 'a newline in an sshd listen address', option: 'services.openssh.listenAddresses', yaml: 'services:\n  openssh:\n    enable: true\n    listenAddresses: ["0.0.0.0\\nPermitRootLogin yes"]  # here\n' },
  { what: 'a space in an sshd listen address', option: 'services.openssh.listenAddresses', yaml: 'services:\n  openssh:\n    enable: true\n    listenAddresses: ["0.0.0.0 PermitRootLogin"]  # here\n' },
  { what: 'a newline in an sshd setting name', option: 'services.openssh.settings', yaml: 'services:\n  openssh:\n    enable: true\n    settings:\n      "PermitRootLogin yes\\nX": "no"  # here\n' },
  { what: 'a newline in an sshd list setting', option: 'services.openssh.settings.Ciphers', yaml: 'services:\n  openssh:\n    enable: true\n    settings:\n      Ciphers: ["aes256-ctr\\nPermitRootLogin yes"]  # here\n' },
  { what: 'a newline in authorized keys files', option: 'services.openssh.authorizedKeysFiles', yaml: 'services:\n  openssh:\n    enable: true\n    authorizedKeysFiles: ["/x\\nPermitRootLogin yes"]  # here\n' },
  { what: 'a newline in a host key path', option: 'services.openssh.hostKeys', yaml: 'services:\n  openssh:\n    enable: true\n    hostKeys:\n      - { type: ed25519, path: "/etc/ssh/k\\ntouch /tmp/pwned" }  # here\n' },
  { what: 'a block in an nginx location', option: 'services.nginx.virtualHosts.site.locations', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        locations:\n          "/ { } } server { listen 81; location /x": { root: /srv }  # here\n' },
  { what: 'a ; in an nginx listen address', option: 'services.nginx.virtualHosts.site.listen', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        listen: [{ addr: "0.0.0.0:80; include /etc/shadow; listen 1.2.3.4" }]  # here\n' },
  { what: 'a trailing backslash in nginx index', option: 'services.nginx.virtualHosts.site.locations."/".index', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        locations:\n          /: { index: "index.html\\\\" }  # here\n' },
  { what: 'a newline in an nginx user', option: 'services.nginx.user', yaml: 'services:\n  nginx:\n    enable: true\n    user: "www-data\\nroot"  # here\n' },
  { what: 'a newline in a hosts address', option: 'networking.hosts', yaml: 'networking:\n  hosts:\n    "192.0.2.1\\n192.0.2.2": [evil]  # here\n' },
  { what: 'a newline in a kernel parameter', option: 'boot.kernelParams', yaml: 'boot:\n  kernelParams: ["quiet\\ninitrd /evil"]  # here\n' },
  { what: 'a newline in a kernel module', option: 'boot.kernelModules', yaml: 'boot:\n  kernelModules: ["loop\\nevil"]  # here\n' },
  { what: 'a command in a shell alias name', option: 'environment.shellAliases', yaml: 'environment:\n  shellAliases:\n    "ll=x; touch /tmp/pwned; alias y": ls  # here\n' },
  { what: 'a command in a variable name', option: 'environment.variables', yaml: 'environment:\n  variables:\n    "A=$(touch /tmp/pwned)": x  # here\n' },
  { what: 'a newline in a locale variable', option: 'i18n.extraLocaleSettings', yaml: 'i18n:\n  extraLocaleSettings:\n    "LC_TIME=C\\nLD_PRELOAD": C.UTF-8  # here\n' },
  { what: 'a quote in a trusted interface', option: 'networking.firewall.trustedInterfaces', yaml: 'networking:\n  firewall:\n    trustedInterfaces: [\'eth0" accept\\n  tcp dport 1 accept #\']  # here\n' },
  { what: 'a slash in an interface name', option: 'networking.interfaces', yaml: 'networking:\n  interfaces:\n    "../x":  # here\n      useDHCP: true\n' },
  { what: 'a newline in an activation snippet name', option: 'system.activationScripts', yaml: 'system:\n  activationScripts:\n    "x\\ntouch /tmp/pwned": "true"  # here\n' },
  { what: 'a colon in a GECOS field', option: 'users.users.alice.description', yaml: 'users:\n  users:\n    alice:\n      isNormalUser: true\n      description: "Alice:0:0::/root:/bin/sh"  # here\n' },
  { what: 'a newline in a group name', option: 'users.users.alice.extraGroups', yaml: 'users:\n  users:\n    alice:\n      isNormalUser: true\n      extraGroups: ["wheel\\nroot"]  # here\n' },
  { what: 'arguments in an autologin user', option: 'services.getty.autologinUser', yaml: 'services:\n  getty:\n    autologinUser: "root --login-program /bin/sh"  # here\n' },
  { what: 'a newline in a user name', option: 'users.users', yaml: 'users:\n  users:\n    "alice\\nroot":  # here\n      isNormalUser: true\n' },
  { what: 'a ; in an nginx server alias', option: 'services.nginx.virtualHosts.site.serverAliases', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        serverAliases: ["b; include /etc/shadow"]  # here\n' },
  { what: 'a brace in an nginx globalRedirect', option: 'services.nginx.virtualHosts.site.globalRedirect', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        globalRedirect: "x} server {"  # here\n' },
  { what: 'a ; in an nginx location return', option: 'services.nginx.virtualHosts.site.locations."/".return', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        locations:\n          /: { return: "301 https://x; include /etc/shadow" }  # here\n' },
  { what: 'a newline in an nginx location tryFiles', option: 'services.nginx.virtualHosts.site.locations."/".tryFiles', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        locations:\n          /: { tryFiles: "$uri =404\\n}" }  # here\n' },
  { what: 'a ; in an nginx proxyPass', option: 'services.nginx.virtualHosts.site.locations."/".proxyPass', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        locations:\n          /: { proxyPass: "http://x; include /etc/shadow" }  # here\n' },
  { what: 'a brace in an nginx listen parameter', option: 'services.nginx.virtualHosts.site.listen', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        listen: [{ addr: 0.0.0.0, extraParameters: ["deferred;}"] }]  # here\n' },
  { what: 'a ; in nginx useACMEHost', option: 'services.nginx.virtualHosts.site.useACMEHost', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        useACMEHost: "x; ssl_certificate /etc/shadow"  # here\n' },
  { what: 'a ; in nginx clientMaxBodySize', option: 'services.nginx.clientMaxBodySize', yaml: 'services:\n  nginx:\n    enable: true\n    clientMaxBodySize: "10m; include /etc/shadow"  # here\n' },
  { what: 'a newline in nginx sslProtocols', option: 'services.nginx.sslProtocols', yaml: 'services:\n  nginx:\n    enable: true\n    sslProtocols: "TLSv1.3\\n}"  # here\n' },
  { what: 'a ; in nginx sslCiphers', option: 'services.nginx.sslCiphers', yaml: 'services:\n  nginx:\n    enable: true\n    sslCiphers: "HIGH; include /etc/shadow"  # here\n' },
  { what: 'a brace in an nginx upstream name', option: 'services.nginx.upstreams', yaml: 'services:\n  nginx:\n    enable: true\n    upstreams:\n      "b { server x; }":  # here\n        servers: {}\n' },
  { what: 'a ; in an nginx upstream server', option: 'services.nginx.upstreams.b.servers', yaml: 'services:\n  nginx:\n    enable: true\n    upstreams:\n      b:\n        servers:\n          "127.0.0.1:80; include /etc/shadow": {}  # here\n' },
  { what: 'a newline in an nginx package name', option: 'services.nginx.package', yaml: 'services:\n  nginx:\n    enable: true\n    package: "nginx\\nx"  # here\n' },
  { what: 'a newline in an ACME domain', option: 'security.acme.certs.c.extraDomainNames', yaml: 'security:\n  acme:\n    certs:\n      c:\n        extraDomainNames: ["a.example\\n--server=http://evil"]  # here\n' },
  { what: 'a slash in an ACME certificate name', option: 'security.acme.certs', yaml: 'security:\n  acme:\n    certs:\n      "../../etc":  # here\n        webroot: /srv\n' },
  { what: 'a space in an ACME webroot', option: 'security.acme.certs.c.webroot', yaml: 'security:\n  acme:\n    certs:\n      c:\n        webroot: "/srv x 0777 root root"  # here\n' },
  { what: 'a newline in an ACME renewInterval', option: 'security.acme.defaults.renewInterval', yaml: 'security:\n  acme:\n    defaults:\n      renewInterval: "daily\\nOnBootSec=1"  # here\n' },
  { what: 'a space in an ACME email', option: 'security.acme.defaults.email', yaml: 'security:\n  acme:\n    defaults:\n      email: "a@b --server http://evil"  # here\n' },
  { what: 'a newline in an ACME reload service', option: 'security.acme.certs.c.reloadServices', yaml: 'security:\n  acme:\n    certs:\n      c:\n        reloadServices: ["nginx\\nrm -rf /"]  # here\n' },
  { what: 'a space in an nginx site name', option: 'services.nginx.virtualHosts', yaml: 'services:\n  nginx:\n    enable: true\n    virtualHosts:\n      "a; include /etc/shadow":  # here\n        root: /srv\n' },
  { what: 'a newline in a mount point', option: 'fileSystems', yaml: 'fileSystems:\n  "/mnt/x\\n/ / ext4": { device: /dev/vdb }  # here\n' },
  { what: 'a newline in a file system type', option: 'fileSystems."/mnt".fsType', yaml: 'fileSystems:\n  /mnt:\n    device: /dev/vdb\n    fsType: "ext4\\n/dev/vdc /etc ext4 defaults 0 0"  # here\n' },
  { what: 'a newline in a socket address', option: 'systemd.sockets.x.listenStreams', yaml: 'systemd:\n  sockets:\n    x:\n      listenStreams: ["80\\nExecStartPre=/bin/evil"]  # here\n' },
];

describe('option text that would inject is refused with its option path and file:line', () => {
  it.each(refused)('$what', async ({ option, yaml }) => {
    const line = yaml.split('\n').findIndex((l) => l.includes('# here')) + 1;
    const { file, message } = await refusal(yaml);
    expect(message).toContain(`\`${option}`);
    expect(message).toContain(`${file.split('/').pop()}:${line}:`);
  });
});

describe('names refused in TypeScript modules', () => {
  it('an attribute name is refused at merge with the line of its definition', async () => {
    const file = join(dir, 'names.ts');
    writeFileSync(file, "export default {\n  environment: {\n    etc: {\n      '../../root/.profile': { text: 'x' },\n    },\n  },\n};\n");
    const err = await evalConfigFile(file).then(({ config }) => JSON.stringify(config)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect((err as Error).message).toContain('`environment.etc');
    expect((err as Error).message).toContain('names.ts:4:');
  });
});

describe('option text that is allowed stays inert', () => {
  it('a host key path with quotes and $(…) is one word of the key generation script', async () => {
    const work = tempDir('hostkey');
    const mark = join(work, 'pwned');
    const path = `${work}/keys/k'; touch ${mark}; ' $(touch ${mark}) \`touch ${mark}\``;
    const yaml = `services:\n  openssh:\n    enable: true\n    hostKeys:\n      - { type: ed25519, path: ${JSON.stringify(path)} }\n`;
    const { config } = await evalYaml(yaml);
    const snippet = config.systemd.services['sshd-keygen'].script as string;
    expect(bash(snippet, work, ['-n']).status).toBe(0);
    // ssh-keygen may be missing here; the key is not the point, the payload running is.
    bash(snippet, work);
    expect(existsSync(mark)).toBe(false);
  });

  it('activation snippet names with $(…), backticks and quotes do not run', () => {
    const work = tempDir('snippets');
    const mark = join(work, 'pwned');
    const names = [`a $(touch ${mark})`, `b \`touch ${mark}\``, `c '; touch ${mark}; '`, `d "; touch ${mark}; "`, `e\ntouch ${mark}`];
    const script = activateScript(
      { bash: '/bin/bash', sw: join(work, 'sw'), etc: join(work, 'etc'), users: join(work, 'users'), mutableUsers: true },
      Object.fromEntries(names.map((n) => [n, 'true'])),
    );
    expect(bash(script, work, ['-n']).status).toBe(0);
    // Under CAIRN_ROOT the snippets are skipped, each saying so with its name.
    const r = spawnSync('bash', ['-c', script], { cwd: work, encoding: 'utf8', env: { ...process.env, CAIRN_ROOT: join(work, 'root') } });
    for (const n of names) expect(r.stderr).toContain(`skipping snippet ${n} under CAIRN_ROOT`);
    expect(existsSync(mark)).toBe(false);
  });

  it('a service variable with quotes, % and backslashes stays one Environment= entry', async () => {
    const value = 'a" B="c %n \\\\ d';
    const { config } = await evalYaml(`systemd:\n  services:\n    x:\n      script: "true"\n      environment:\n        A: ${JSON.stringify(value)}\n`);
    const unit = etcText(config, 'systemd/system/x.service');
    const env = unit.split('\n').filter((l) => l.startsWith('Environment='));
    expect(env).toEqual([`Environment=${lib.systemd.environmentEntry('A', value)}`]);
    expect(unquoteSystemd(env[0]!.slice('Environment='.length))).toBe(`A=${value}`);
  });

  it('an nginx root with ; and braces is one quoted string', async () => {
    const root = '/srv/a; } server { listen 81; } "x\\';
    const { config } = await evalYaml(`services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        root: ${JSON.stringify(root)}\n`);
    const conf = etcText(config, 'nginx/nginx.conf');
    const lines = conf.split('\n').filter((l) => /^\s*root /.test(l));
    expect(lines).toHaveLength(1);
    const m = /^\s*root "((?:[^"\\]|\\.)*)";$/.exec(lines[0]!);
    expect(m?.[1]!.replace(/\\(.)/g, '$1')).toBe(root);
    expect(conf.split('\n').filter((l) => /^\s*server \{$/.test(l))).toHaveLength(1);
  });

  it('nginx paths with ;, braces and quotes (alias, basicAuthFile, certificates, acmeRoot) are quoted words', async () => {
    const bad = '/srv/a; } server { listen 81; } "x\\';
    const q = JSON.stringify(bad);
    const { config } = await evalYaml(
      `services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        addSSL: true\n        sslCertificate: ${q}\n        sslCertificateKey: ${q}\n        basicAuthFile: ${q}\n        locations:\n          /x/: { alias: ${q}, basicAuthFile: ${q} }\n`,
    );
    const conf = etcText(config, 'nginx/nginx.conf');
    const words = conf.split('\n').filter((l) => /^\s*(alias|auth_basic_user_file|ssl_certificate|ssl_certificate_key) /.test(l));
    expect(words).toHaveLength(5);
    for (const l of words) {
      const m = /^\s*\S+ "((?:[^"\\]|\\.)*)";$/.exec(l);
      expect(m?.[1]!.replace(/\\(.)/g, '$1'), l).toBe(bad);
    }
    expect(conf.split('\n').filter((l) => /^\s*server \{$/.test(l))).toHaveLength(1);
    // acmeRoot is lego's webroot too, a tmpfiles path: whitespace and quotes are refused there, the rest quoted.
    const tight = '/srv/a;}server{listen;';
    const acme = await evalYaml(`security:\n  acme: { acceptTerms: true, defaults: { email: a@b.example } }\nservices:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        enableACME: true\n        acmeRoot: ${JSON.stringify(tight)}\n`);
    const root = etcText(acme.config, 'nginx/nginx.conf').split('\n').filter((l) => /^\s*root /.test(l));
    expect(root).toEqual([`      root "${tight.replace(/[\\"]/g, '\\$&')}";`]);
    await refusal(`services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        enableACME: true\n        acmeRoot: "/srv/a b"\n`);
    await refusal(`services:\n  nginx:\n    enable: true\n    virtualHosts:\n      site:\n        enableACME: true\n        acmeRoot: "/srv/a\\"b"\n`);
  });

  it('ACME values reach the lego script as single words', async () => {
    const work = tempDir('lego');
    const mark = join(work, 'pwned');
    const { config } = await evalYaml(
      `security:\n  acme:\n    acceptTerms: true\n    defaults: { email: "a@b;touch${'${IFS}'}${mark}" }\n    certs:\n      c:\n        webroot: "/srv/$(touch${'${IFS}'}${mark})"\n        extraLegoFlags: ["--x=';touch ${mark};'"]\n`,
    );
    const script = Object.entries(config.environment.etc as Record<string, { text: string }>).find(([k]) => /^cairn\/scripts\/acme-c-order-/.test(k))![1].text;
    const lego = /^lego=\((.*)\)$/m.exec(script)![1]!;
    const words = bash(`lego=(${lego}); printf '%s\\n' "\${lego[@]}"`, work).out.trimEnd().split('\n');
    expect(words).toContain(`a@b;touch\${IFS}${mark}`);
    expect(words).toContain(`/srv/$(touch\${IFS}${mark})`);
    expect(words).toContain(`--x=';touch ${mark};'`);
    expect(existsSync(mark)).toBe(false);
  });
});

/** Reads a `"…"` word as systemd does for Environment= (C escapes), `%%` as `%`. */
function unquoteSystemd(word: string): string {
  expect(word.startsWith('"') && word.endsWith('"')).toBe(true);
  return word
    .slice(1, -1)
    .replace(/\\x([0-9a-f]{2})|\\(.)/g, (_m, hex: string | undefined, c: string | undefined) => (hex ? String.fromCharCode(parseInt(hex, 16)) : c!))
    .replace(/%%/g, '%');
}

/**
 * A unit file as systemd reads it: lines end at LF, CR or NUL; a line ending in an unescaped
 * backslash continues on the next; `#`/`;` lines are comments. The entries, by section.
 */
function parseUnit(text: string): [string, string, string][] {
  const out: [string, string, string][] = [];
  let section = '';
  let pending = '';
  for (const raw of text.split(/\r\n|[\n\r\0]/)) {
    let line = pending + raw;
    pending = '';
    const trimmed = line.trim();
    if (!trimmed || /^[#;]/.test(trimmed)) continue;
    let escaped = false;
    for (const c of line) escaped = !escaped && c === '\\';
    if (escaped) {
      pending = `${line.slice(0, -1)} `;
      continue;
    }
    line = trimmed;
    const s = /^\[(.*)\]$/.exec(line);
    if (s) section = s[1]!;
    else {
      const eq = line.indexOf('=');
      out.push([section, line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
    }
  }
  return out;
}

describe('properties: arbitrary text never adds a line, key or command', () => {
  const text = fc.string({ unit: 'binary', maxLength: 24 });

  it('renderSystemdIni writes exactly the declared entries or refuses with a CairnError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 8 }), text, text, (section, key, value) => {
        const sections: [string, SectionEntries][] = [['Unit', { Description: 'd' }], [section, { [key]: value, After: 'x.target' }]];
        let out: string;
        try {
          out = lib.systemd.renderSystemdIni('test', sections);
        } catch (err) {
          expect(err).toBeInstanceOf(CairnError);
          return;
        }
        expect(parseUnit(out)).toEqual([['Unit', 'Description', 'd'], ...(key === 'After' ? [[section, 'After', 'x.target']] : [[section, key, value.trim()], [section, 'After', 'x.target']])]);
      }),
      { numRuns: 400, seed: 13 },
    );
  });

  it('environmentEntry keeps any value on its line and reads back as written', () => {
    fc.assert(
      fc.property(text, (value) => {
        const unit = lib.systemd.renderSystemdIni('test', [['Service', { Environment: lib.systemd.environmentEntry('V', value) }]]);
        const entries = parseUnit(unit);
        expect(entries).toHaveLength(1);
        expect(unquoteSystemd(entries[0]![2])).toBe(`V=${value}`);
      }),
      { numRuns: 300, seed: 13 },
    );
  });

  it('shellQuote and shellComment: a script prints the value and runs nothing else', () => {
    const work = tempDir('quote');
    // bash cannot hold NUL in a word: values that reach shell never carry one (types refuse controls in names and paths).
    const noNul = fc.string({ unit: 'binary', maxLength: 24 }).filter((s) => !s.includes('\0'));
    const values = fc.sample(noNul, { numRuns: 60, seed: 13 });
    values.push("'; touch pwned; '", '$(touch pwned)', '`touch pwned`', 'a\ntouch pwned', '\\', "'");
    const script = values.map((v) => `${shellComment(v)}\nprintf '%s\\0' ${shellQuote(v)}`).join('\n');
    const r = spawnSync('bash', ['-c', script], { cwd: work, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(values);
    expect(existsSync(join(work, 'pwned'))).toBe(false);
  });

  it('a service option holding arbitrary text is refused with a CairnError or stays one entry of its unit', async () => {
    const slots = ['description', 'environment.V', 'serviceConfig.User', 'after'] as const;
    await fc.assert(
      // Payloads that break a line (LF, CR, a final backslash) among arbitrary text.
      fc.asyncProperty(fc.constantFrom(...slots), fc.oneof(text, fc.constantFrom('x\nExecStartPre=/bin/evil', 'x\rUser=root', 'x.target\\')), async (slot, value) => {
        const v = JSON.stringify(value);
        const def = slot === 'after' ? `after: [${v}]` : slot.includes('.') ? `${slot.split('.')[0]}: { ${slot.split('.')[1]}: ${v} }` : `${slot}: ${v}`;
        let config;
        try {
          ({ config } = await evalYaml(`systemd:\n  services:\n    x:\n      serviceConfig: { ExecStart: /bin/true }\n      ${def}\n`));
        } catch (err) {
          expect(err).toBeInstanceOf(CairnError);
          return;
        }
        const keys = parseUnit(etcText(config, 'systemd/system/x.service')).map(([s, k]) => `${s}.${k}`);
        const expected = { description: 'Unit.Description', 'environment.V': 'Service.Environment', 'serviceConfig.User': 'Service.User', after: 'Unit.After' }[slot];
        // An empty description leaves Description= out.
        const declared = slot === 'description' && value === '' ? [] : [expected];
        expect(keys.filter((k) => k === expected)).toHaveLength(declared.length);
        expect(new Set(keys)).toEqual(new Set(['Service.ExecStart', ...declared]));
      }),
      { numRuns: 10, seed: 13 },
    );
  });
});
