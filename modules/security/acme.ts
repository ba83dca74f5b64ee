import type { Config, ModuleArgs } from '../config.js';

type Cert = Config['security']['acme']['certs'][string];

/** Where a certificate's files are for the services that use it. */
const certDir = (name: string): string => `/var/lib/acme/${name}`;
/** lego's own folder for a certificate: its account, orders and certificates (`--path`). */
const legoDir = (name: string): string => `/var/lib/acme/.lego/${name}`;

/**
 * `security.acme`: certificates from an ACME CA (Let's Encrypt by default), with NixOS's options,
 * ordered and renewed by lego (Debian's package, the client NixOS uses).
 *
 * For each certificate `<name>`:
 * - `acme-selfsigned-<name>.service` makes a self-signed placeholder (openssl) when there is no
 *   key yet, so the services that read the certificate start before the first order;
 * - `acme-<name>.service` runs lego (`run` for a new set of domains, else `renew`) as the `acme`
 *   account, then copies a new certificate into /var/lib/acme/<name> (cert.pem, chain.pem,
 *   fullchain.pem, key.pem, full.pem) and reloads `reloadServices`. It is wanted by
 *   multi-user.target but starts as `Type=exec`, so boot does not wait for the CA;
 * - `acme-<name>.timer` starts it again at `renewInterval`; lego renews when fewer than
 *   `validMinDays` days are left.
 * Keys and accounts are only below /var/lib/acme, never in the store.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkDefault, types } = lib;
  const cfg = config.security.acme;
  // A DNS name a certificate is for, `*.` for a wildcard (DNS-01 only).
  const domain = types.strMatching('(\\*\\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?)*\\.?');
  // A certificate's name: a folder and a unit name.
  const certName = types.strMatching('[A-Za-z0-9_][A-Za-z0-9_.-]*');
  // A path that becomes a tmpfiles path (which unquotes and expands `%`) and a lego argument.
  const folder = types.strMatching('/[^\\s"\'\\\\%\\x00-\\x1f\\x7f]*');
  const line = types.strMatching('[^\\s\\x00-\\x1f\\x7f](?:[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f\\\\])?');
  const word = types.strMatching('[^\\s\\x00-\\x1f\\x7f]+');

  /**
   * The options of a certificate; in `defaults` they have NixOS's defaults, in `certs.<name>` the
   * default is the one of `defaults` (NixOS's `inheritDefaults`).
   */
  const certOptions = (inherit: boolean) => {
    const d = cfg.defaults as unknown as Record<string, unknown>;
    const opt = <T>(key: string, o: { type: unknown; default: T; example?: unknown; description: string }) =>
      mkOption(
        inherit
          ? {
              type: o.type as never,
              get default() {
                return d[key];
              },
              defaultText: `security.acme.defaults.${key}`,
              ...(o.example !== undefined ? { example: o.example } : {}),
              description: o.description,
            }
          : (o as never),
      );
    return {
      server: opt('server', { type: word, default: 'https://acme-v02.api.letsencrypt.org/directory', example: 'https://acme-staging-v02.api.letsencrypt.org/directory', description: "The ACME CA's directory URL." }),
      email: opt('email', { type: types.nullOr(word), default: null, description: 'The contact address of the account at the CA (expiry and policy mail).' }),
      keyType: opt('keyType', { type: types.enum(['ec256', 'ec384', 'rsa2048', 'rsa3072', 'rsa4096', 'rsa8192']), default: 'ec256', description: "The certificate key's type (lego's `--key-type`)." }),
      webroot: opt('webroot', {
        type: types.nullOr(folder),
        default: null,
        example: '/var/lib/acme/acme-challenge',
        description: 'HTTP-01: the folder whose `.well-known/acme-challenge` the web server serves for the domains on port 80 (lego writes the answers there).',
      }),
      group: opt('group', { type: types.accountName, default: 'acme', description: 'The group owning the certificate files (readable by it): the services that read them must be in it.' }),
      reloadServices: opt('reloadServices', {
        type: types.listOf(types.strMatching('[A-Za-z0-9:_.\\\\@-]+')),
        default: [],
        example: ['nginx.service'],
        description: 'Services reloaded (`systemctl try-reload-or-restart`) when the certificate is renewed.',
      }),
      postRun: opt('postRun', { type: types.lines, default: '', description: 'Shell commands run as root in the certificate\'s folder after it was renewed.' }),
      dnsProvider: opt('dnsProvider', {
        type: types.nullOr(types.strMatching('[a-z0-9._-]+')),
        default: null,
        example: 'cloudflare',
        description: "DNS-01: lego's DNS provider (`lego dnshelp`), instead of HTTP-01 through `webroot`. Its credentials come from `environmentFile`.",
      }),
      dnsResolver: opt('dnsResolver', { type: types.nullOr(word), default: null, example: '1.1.1.1:53', description: 'The DNS server lego asks whether the DNS-01 record is there.' }),
      dnsPropagationCheck: opt('dnsPropagationCheck', { type: types.bool, default: true, description: 'Whether lego waits until every authoritative server has the DNS-01 record.' }),
      environmentFile: opt('environmentFile', {
        type: types.nullOr(types.path),
        default: null,
        example: '/var/lib/secrets/acme.env',
        description: "A file of `NAME=value` lines for lego (`EnvironmentFile=`): the DNS provider's credentials, `LEGO_CA_CERTIFICATES`. Keep it outside the store.",
      }),
      credentialsFile: opt('credentialsFile', { type: types.nullOr(types.path), default: null, description: 'Another such file (the older name of `environmentFile`); both are read.' }),
      validMinDays: opt('validMinDays', { type: types.ints.positive, default: 30, description: 'Renew when fewer days than this are left.' }),
      renewInterval: opt('renewInterval', { type: line, default: 'daily', description: 'When the renewal timer fires (`OnCalendar=`, systemd.time(7)).' }),
      extraLegoFlags: opt('extraLegoFlags', { type: types.listOf(types.str), default: [], description: 'More lego arguments (before the command).' }),
      extraLegoRunFlags: opt('extraLegoRunFlags', { type: types.listOf(types.str), default: [], description: 'More arguments of `lego run`.' }),
      extraLegoRenewFlags: opt('extraLegoRenewFlags', { type: types.listOf(types.str), default: [], description: 'More arguments of `lego renew`.' }),
    };
  };

  const cert = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      domain: mkOption({ type: domain, default: name, description: 'The certificate\'s main domain (the attribute name by default).' }),
      extraDomainNames: mkOption({ type: types.listOf(domain), default: [], example: ['www.example.org'], description: 'More domains of the same certificate.' }),
      directory: mkOption({ type: types.str, readOnly: true, default: certDir(name), description: 'Where the certificate\'s files are: cert.pem, chain.pem, fullchain.pem, key.pem, full.pem.' }),
      ...certOptions(true),
    },
  }));

  const q = lib.shellQuote;

  /** The scripts and units of one certificate. */
  const certUnits = (name: string, c: Cert) => {
    const domains = [c.domain, ...c.extraDomainNames];
    // lego names its files after the main domain, a wildcard's `*` as `_`.
    const file = c.domain.replace(/^\*/, '_');
    const challenge = c.dnsProvider !== null
      ? ['--dns', c.dnsProvider, ...(c.dnsResolver !== null ? ['--dns.resolvers', c.dnsResolver] : []), ...(c.dnsPropagationCheck ? [] : ['--dns.disable-cp'])]
      : ['--http', '--http.webroot', c.webroot ?? ''];
    const lego = ['/usr/bin/lego', '--accept-tos', '--path', legoDir(name), ...(c.email !== null ? ['--email', c.email] : []), '--server', c.server, '--key-type', c.keyType, ...domains.flatMap((d) => ['--domains', d]), ...challenge, ...c.extraLegoFlags];
    // What a renewal must order anew rather than renew: another set of domains, key type or CA.
    const order = lib.digest(JSON.stringify([domains, c.keyType, c.server]));
    const order_ = `${legoDir(name)}/order`;
    const dir = certDir(name);
    const ordering = [
      lib.shellComment(`acme-${name}.service: orders or renews the certificate "${name}" with lego (security.acme.certs).`),
      'set -euo pipefail',
      `cd ${q(legoDir(name))}`,
      `lego=(${lego.map(q).join(' ')})`,
      `if [ -e ${q(`certificates/${file}.crt`)} ] && [ "$(cat ${q(order_)} 2>/dev/null)" = ${q(order)} ]; then`,
      `  "\${lego[@]}" renew --no-random-sleep --days ${c.validMinDays} ${c.extraLegoRenewFlags.map(q).join(' ')}`,
      'else',
      `  "\${lego[@]}" run ${c.extraLegoRunFlags.map(q).join(' ')}`,
      'fi',
      `echo ${q(order)} > ${q(order_)}`,
      '# The files services read change only for a new certificate, each by a rename.',
      `if [ "$(cat ${q(`certificates/${file}.crt`)})" != "$(cat ${q(`${dir}/fullchain.pem`)} 2>/dev/null || true)" ]; then`,
      `  new=${q(`${dir}/.new`)}`,
      '  rm -rf "$new" && mkdir "$new"',
      `  cp ${q(`certificates/${file}.key`)} "$new/key.pem"`,
      `  cp ${q(`certificates/${file}.crt`)} "$new/fullchain.pem"`,
      `  cp ${q(`certificates/${file}.issuer.crt`)} "$new/chain.pem"`,
      '  openssl x509 -in "$new/fullchain.pem" -out "$new/cert.pem"',
      '  cat "$new/key.pem" "$new/fullchain.pem" > "$new/full.pem"',
      // lego's key is 0600: the group (the web server's) reads the certificate's files.
      '  chmod 0640 "$new"/*.pem',
      `  for f in key.pem cert.pem chain.pem full.pem fullchain.pem; do mv -f "$new/$f" ${q(dir)}/"$f"; done`,
      '  rmdir "$new"',
      '  touch renewed',
      'fi',
      '',
    ].join('\n');
    const reloading = [
      lib.shellComment(`acme-${name}.service: after lego, as root: postRun and reloads when the certificate "${name}" is new.`),
      'set -euo pipefail',
      `flag=${q(`${legoDir(name)}/renewed`)}`,
      '[ -e "$flag" ] || exit 0',
      'rm -f "$flag"',
      ...(c.postRun.trim() ? [`(cd ${q(dir)} && ${c.postRun.replace(/\n+$/, '')}\n)`] : []),
      ...(c.reloadServices.length > 0 ? [`systemctl --no-block try-reload-or-restart -- ${c.reloadServices.map(q).join(' ')}`] : []),
      '',
    ].join('\n');
    const selfsigned = [
      lib.shellComment(`acme-selfsigned-${name}.service: a placeholder certificate "${name}" until the CA's, so its services can start.`),
      'set -euo pipefail',
      `cd ${q(dir)}`,
      '[ -e key.pem ] && exit 0',
      `openssl req -x509 -config /dev/null -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj /CN=cairn-acme-placeholder -addext ${q(`subjectAltName=${domains.map((d) => `DNS:${d}`).join(',')}`)} -keyout key.pem.new -out cert.pem`,
      'cp cert.pem chain.pem && cp cert.pem fullchain.pem && cat key.pem.new cert.pem > full.pem',
      'mv key.pem.new key.pem',
      '',
    ].join('\n');
    const script = (label: string, text: string) => ({ path: lib.systemd.scriptPath(`acme-${name}`, label, text), text: `#!/bin/bash\n${text}` });
    const scripts = { order: script('order', ordering), reload: script('reload', reloading), selfsigned: script('selfsigned', selfsigned) };
    const envFiles = [c.environmentFile, c.credentialsFile].filter((f): f is string => f !== null);
    return { scripts, envFiles };
  };

  const storeDir = '/cairn/store/';

  return {
    options: {
      security: {
        acme: {
          acceptTerms: mkOption({ type: types.bool, default: false, description: "Whether you accept the CA's terms of service (Let's Encrypt's: https://letsencrypt.org/repository/). Required for any certificate." }),
          preliminarySelfsigned: mkOption({ type: types.bool, default: true, description: 'Whether a self-signed placeholder certificate is made before the first order, so that the services reading it start.' }),
          defaults: mkOption({ type: types.submodule({ options: certOptions(false) }), default: {}, description: 'Defaults of every certificate\'s options.' }),
          certs: mkOption({
            type: types.attrsNamed(certName, cert),
            default: {},
            example: { 'example.org': { webroot: '/var/lib/acme/acme-challenge', email: 'admin@example.org', extraDomainNames: ['www.example.org'] } },
            description: 'Certificates, by name (the main domain by default).',
          }),
        },
      },
    },
    config: mkIf(() => Object.keys(cfg.certs).length > 0, {
      users: {
        users: { acme: { isSystemUser: true, group: 'acme', home: '/var/lib/acme', description: 'ACME certificates' } },
        groups: { acme: {} },
      },
      systemd: {
        tmpfiles: {
          get rules() {
            return [
              'd /var/lib/acme 0755 root root -',
              'd /var/lib/acme/.lego 0700 acme acme -',
              ...Object.entries(cfg.certs).flatMap(([n, c]) => [
                `d ${certDir(n)} 0750 acme ${c.group} -`,
                `d ${legoDir(n)} 0700 acme acme -`,
                ...(c.webroot !== null && c.dnsProvider === null ? [`d ${c.webroot} 0755 acme ${c.group} -`] : []),
              ]),
            ];
          },
        },
        get services() {
          const services: Record<string, unknown> = {};
          for (const [n, c] of Object.entries(cfg.certs)) {
            const { scripts, envFiles } = certUnits(n, c);
            const account = { User: 'acme', Group: c.group, UMask: '0027', ProtectSystem: 'strict', ReadWritePaths: ['/var/lib/acme', ...(c.webroot !== null ? [`-${c.webroot}`] : [])], PrivateTmp: true, NoNewPrivileges: true };
            if (cfg.preliminarySelfsigned) {
              services[`acme-selfsigned-${n}`] = {
                description: `Placeholder certificate for ${n}`,
                after: ['systemd-tmpfiles-setup.service'],
                serviceConfig: { Type: 'oneshot', ExecStart: scripts.selfsigned.path, ...account },
              };
            }
            services[`acme-${n}`] = {
              description: `Order or renew the ACME certificate ${n}`,
              // Started with the system, but `exec`: boot does not wait for the CA.
              wantedBy: ['multi-user.target'],
              wants: ['network-online.target'],
              after: ['network-online.target', 'nss-lookup.target', 'systemd-tmpfiles-setup.service', ...(cfg.preliminarySelfsigned ? [`acme-selfsigned-${n}.service`] : []), ...c.reloadServices.filter((s) => s.includes('.'))],
              restartIfChanged: false,
              serviceConfig: {
                Type: 'exec',
                ExecStart: scripts.order.path,
                // `+`: as root, after lego has ended, whether it renewed or not.
                ExecStopPost: `+${scripts.reload.path}`,
                EnvironmentFile: envFiles,
                // A CA that cannot be reached yet (the web server still starting) is asked again.
                Restart: 'on-failure',
                RestartSec: 30,
                ...account,
              },
              unitConfig: { StartLimitIntervalSec: 0 },
            };
          }
          return services;
        },
        get timers() {
          const timers: Record<string, unknown> = {};
          for (const [n, c] of Object.entries(cfg.certs)) {
            timers[`acme-${n}`] = {
              description: `Renew the ACME certificate ${n}`,
              wantedBy: ['timers.target'],
              timerConfig: { OnCalendar: c.renewInterval, Persistent: true, RandomizedDelaySec: mkDefault('24h'), FixedRandomDelay: mkDefault(true), AccuracySec: mkDefault('1min') },
            };
          }
          return timers;
        },
      },
      environment: {
        systemPackages: ['lego', 'openssl'],
        get etc() {
          const etc: Record<string, unknown> = {};
          for (const [n, c] of Object.entries(cfg.certs)) {
            for (const s of Object.values(certUnits(n, c).scripts)) etc[s.path.slice('/etc/'.length)] = { text: s.text, mode: '0755' };
          }
          return etc;
        },
      },
      get assertions() {
        return [
          {
            assertion: cfg.acceptTerms,
            message: "security.acme.acceptTerms: you must accept the CA's terms of service before certificates are ordered (security.acme.acceptTerms = true).",
          },
          ...Object.entries(cfg.certs).flatMap(([n, c]) => {
            const at = `security.acme.certs.${JSON.stringify(n)}`;
            return [
              { assertion: c.email !== null, message: `${at}.email: an account at the CA needs a contact address: set it or security.acme.defaults.email.` },
              { assertion: c.webroot !== null || c.dnsProvider !== null, message: `${at}: set webroot (HTTP-01, a folder the web server serves) or dnsProvider (DNS-01).` },
              { assertion: c.dnsProvider !== null || ![c.domain, ...c.extraDomainNames].some((d) => d.startsWith('*.')), message: `${at}: a wildcard domain can only be validated by DNS-01 (dnsProvider).` },
              ...(['environmentFile', 'credentialsFile'] as const).map((k) => ({
                assertion: c[k] === null || !c[k]!.startsWith(storeDir),
                message: `${at}.${k}: ${c[k]} is in the world-readable store; credentials belong in a file outside it (e.g. below /var/lib/secrets).`,
              })),
            ];
          }),
        ];
      },
    }),
  };
};
