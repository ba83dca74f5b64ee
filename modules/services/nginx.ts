import type { Config, ModuleArgs } from '../config.js';

type Nginx = Config['services']['nginx'];
type VirtualHost = Nginx['virtualHosts'][string];
type Location = VirtualHost['locations'][string];
type Listen = { addr: string; port: number | null; ssl: boolean; proxyProtocol: boolean; extraParameters: string[] };

/** `s` as one nginx word: as it is when plain, else double-quoted with `"` and `\\` escaped (a path may hold spaces or `;`). */
const nginxString = (s: string): string => (/^[\w/.@%+,:=~-]+$/.test(s) ? s : `"${s.replace(/[\\"]/g, '\\$&')}"`);

/** Lines of a block without their trailing newline, indented for the config file. */
const indent = (text: string, by: string): string =>
  text
    .replace(/\n+$/, '')
    .split('\n')
    .map((l) => (l ? by + l : l))
    .join('\n');

/** Where lego's files for a certificate are linked for the web server (security.acme's layout). */
const acmeDir = (cert: string): string => `/var/lib/acme/${cert}`;

/** The Debian packages of nginx: `nginx` is the server alone; the flavours add dynamic modules. */
const FLAVOURS = ['nginx', 'nginx-light', 'nginx-core', 'nginx-full', 'nginx-extras'] as const;

/** The headers `recommendedProxySettings` sets (NixOS's `recommendedProxyConfig`). */
const PROXY_HEADERS = [
  'proxy_set_header Host $host;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header X-Forwarded-Host $host;',
  'proxy_set_header X-Forwarded-Server $host;',
];

/** MIME types compressed by `recommendedGzipSettings` (NixOS's list, less what nginx compresses anyway). */
const GZIP_TYPES =
  'application/atom+xml application/geo+json application/javascript application/json application/ld+json application/manifest+json application/rdf+xml application/vnd.ms-fontobject application/wasm application/x-rss+xml application/x-web-app-manifest+json application/xhtml+xml application/xliff+xml application/xml font/collection font/otf font/ttf image/bmp image/svg+xml image/vnd.microsoft.icon text/cache-manifest text/calendar text/css text/csv text/javascript text/markdown text/plain text/vcard text/vnd.rim.location.xloc text/vtt text/x-component text/xml';

/**
 * nginx.conf as `nginx -t` checks it on the building machine, unprivileged, line for line the
 * same: nginx's folders are the scratch folder, each listen address a socket there (ports below
 * 1024 are root's), the `user` line, which only root may use, a comment, and certificates (which
 * only the running system has) a throwaway one the check's setup makes. The flavours' module
 * list names files of the running system: the check reads none of it.
 */
function checkCopy(text: string, certificates: boolean): string {
  const sockets = new Map<string, string>();
  const certs = (t: string): string =>
    certificates
      ? t.replace(/^(\s*(?:ssl_certificate|ssl_trusted_certificate))\s[^;\n]*;$/gm, '$1 @dir@/check-cert.pem;').replace(/^(\s*ssl_certificate_key)\s[^;\n]*;$/gm, '$1 @dir@/check-key.pem;')
      : t;
  return certs(text)
    .replace(/\/var\/(log|lib|cache)\/nginx\//g, '@dir@/')
    .replaceAll('/run/nginx.pid', '@dir@/nginx.pid')
    .replace(/^user [^\n]*/m, '# $&')
    .replace(/^include \/usr\/share\/nginx\/modules-available\/[^\n]*/m, '# $&')
    .replace(/^(\s*listen\s+)([^\s;]+)/gm, (_, lead: string, addr: string) => {
      if (!sockets.has(addr)) sockets.set(addr, `unix:@dir@/listen-${sockets.size}`);
      return lead + sockets.get(addr)!;
    });
}

/**
 * `services.nginx`: the nginx web server and its virtual hosts, with NixOS's options. /etc/nginx/nginx.conf
 * is complete in itself (mime types included): nothing is read from the package's /etc. What
 * nginx's postinst would do is here: its log and cache folders (tmpfiles), run as `www-data` (from
 * base-passwd). Virtual hosts with `enableACME` get their certificates from `security.acme`.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, mkDefault, types } = lib;
  const cfg = config.services.nginx;
  // An nginx token: whitespace, `;`, braces, quotes and `#` would end it, open a block or a comment.
  const token = types.strMatching('[^\\s;{}"\'#\\\\\\x00-\\x1f\\x7f]+');
  // Arguments of one directive (several words): no `;`, braces, quotes, `#` or line breaks, and no
  // final backslash, which would escape the `;` or ` {` after it.
  const args = types.strMatching('[^;{}"\'#\\x00-\\x1f\\x7f]*[^;{}"\'#\\\\\\x00-\\x1f\\x7f]');
  // A URL nginx proxies to: one token of a known scheme.
  const proxyUrl = types.strMatching('(https?|unix|grpc)://[^\\s;{}"\'#\\x00-\\x1f\\x7f]+|http://unix:[^\\s;{}"\'#\\x00-\\x1f\\x7f]+');
  // A size as nginx writes them (`10m`, `512k`, `0` for no limit).
  const size = types.strMatching('[0-9]+[kKmMgG]?');
  const basicAuthOptions = (what: string) => ({
    basicAuth: mkOption({
      type: types.attrsNamed(types.strMatching('[^:\\s\\x00-\\x1f\\x7f]+'), types.str),
      default: {},
      example: { user: 'password' },
      description: `Basic authentication for ${what}, passwords by user. Refused: the passwords would be in the world-readable store (NixOS writes them there); use \`basicAuthFile\`.`,
    }),
    basicAuthFile: mkOption({
      type: types.nullOr(types.path),
      default: null,
      example: '/var/lib/secrets/htpasswd',
      description: `An htpasswd file (\`htpasswd -B -c FILE USER\`, from apache2-utils) that protects ${what} (\`auth_basic_user_file\`); keep it outside the store.`,
    }),
  });
  const location = types.submodule({
    options: {
      proxyPass: mkOption({ type: types.nullOr(proxyUrl), default: null, example: 'http://127.0.0.1:8080', description: 'Forward requests to this URL (`proxy_pass`), with the usual proxy headers when `recommendedProxySettings` is on.' }),
      proxyWebsockets: mkOption({ type: types.bool, default: false, example: true, description: 'Whether to proxy WebSocket connections (HTTP/1.1 with the `Upgrade` and `Connection` headers passed on).' }),
      recommendedProxySettings: mkOption({
        type: types.bool,
        get default() {
          return cfg.recommendedProxySettings;
        },
        defaultText: 'services.nginx.recommendedProxySettings',
        description: 'Whether this location sends the recommended proxy headers (`Host`, `X-Forwarded-*`) with `proxyPass`.',
      }),
      index: mkOption({ type: types.nullOr(args), default: null, example: 'index.php index.html', description: 'Index files (`index`).' }),
      tryFiles: mkOption({ type: types.nullOr(args), default: null, example: '$uri =404', description: '`try_files` arguments.' }),
      root: mkOption({ type: types.nullOr(types.path), default: null, example: '/your/root/directory', description: 'Root directory for requests (`root`).' }),
      alias: mkOption({ type: types.nullOr(types.path), default: null, example: '/your/alias/directory', description: 'Alias directory for requests (`alias`).' }),
      return: mkOption({ type: types.nullOr(types.either(types.int, args)), default: null, example: '301 http://example.com$request_uri', description: 'A `return` directive, e.g. for redirections (without the `;`).' }),
      ...basicAuthOptions('this location'),
      extraConfig: mkOption({ type: types.lines, default: '', description: 'Directives added to the end of the location block as written.' }),
      priority: mkOption({ type: types.int, default: 1000, description: 'Order of this location block among the others of the host, as with `mkOrder`: smaller values come first (then by path).' }),
    },
  });
  const listen = types.submodule({
    options: {
      addr: mkOption({ type: token, description: 'The address (`0.0.0.0`, `[::]`, `192.0.2.10`, `unix:/run/nginx.sock`).' }),
      port: mkOption({ type: types.nullOr(types.port), default: null, description: "The port; without one, nginx's default (80) unless the address is a socket." }),
      ssl: mkOption({ type: types.bool, default: false, description: 'Whether this address serves HTTPS.' }),
      proxyProtocol: mkOption({ type: types.bool, default: false, description: 'Whether connections here speak the PROXY protocol.' }),
      extraParameters: mkOption({ type: types.listOf(token), default: [], example: ['backlog=1024', 'deferred'], description: 'More parameters of this `listen` directive.' }),
    },
  });
  const vhost = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      serverName: mkOption({ type: types.nullOr(token), default: null, example: 'example.org', description: 'The host name; the attribute name when null. `_` matches any.' }),
      serverAliases: mkOption({ type: types.listOf(token), default: [], example: ['www.example.org'], description: 'More names of the same site.' }),
      listen: mkOption({
        type: types.listOf(listen),
        default: [],
        example: [{ addr: '195.154.1.1', port: 443, ssl: true }, { addr: '192.154.1.1', port: 80 }],
        description: 'Where the site is served. Empty: every address of `listenAddresses` (or `services.nginx.defaultListenAddresses`) on port 80 and, with `addSSL`, `onlySSL` or `forceSSL`, 443. When set, it overrides `addSSL` and `onlySSL`.',
      }),
      listenAddresses: mkOption({ type: types.listOf(token), default: [], example: ['127.0.0.1', '[::1]'], description: 'The addresses the site is served on when `listen` is empty (ports chosen as there).' }),
      default: mkOption({ type: types.bool, default: false, description: 'Whether this site answers requests for names no site has (`default_server`).' }),
      enableACME: mkOption({ type: types.bool, default: false, description: 'Whether to get a certificate for this site (its `serverName` and `serverAliases`) from an ACME CA through `security.acme` (HTTP-01 through `acmeRoot`).' }),
      useACMEHost: mkOption({
        type: types.nullOr(token),
        default: null,
        description: 'The name of a certificate of `security.acme.certs` to serve (declared there, with this site\'s names among its domains). Nothing is requested for this site itself.',
      }),
      acmeRoot: mkOption({
        // It is also lego's webroot and a tmpfiles path: no whitespace, quotes, backslashes or `%`.
        type: types.nullOr(types.strMatching('/[^\\s"\'\\\\%\\x00-\\x1f\\x7f]*')),
        default: '/var/lib/acme/acme-challenge',
        description: 'The folder the ACME challenges are served from (public: no certificates or keys here); null takes the certificate\'s own `webroot`.',
      }),
      addSSL: mkOption({ type: types.bool, default: false, description: 'Whether to serve HTTPS besides plain HTTP (default listens on ports 80 and 443).' }),
      onlySSL: mkOption({ type: types.bool, default: false, description: 'Whether to serve HTTPS only (default listens on port 443).' }),
      forceSSL: mkOption({
        type: types.bool,
        default: false,
        description: 'Whether to serve HTTPS and redirect plain HTTP to it (with `redirectCode`) from a server block of its own, which also answers ACME challenges.',
      }),
      rejectSSL: mkOption({ type: types.bool, default: false, description: 'Whether to listen for and refuse HTTPS handshakes (`ssl_reject_handshake`), e.g. in a default server.' }),
      sslCertificate: mkOption({ type: types.nullOr(types.path), default: null, example: '/var/host.cert', description: 'The certificate (chain) served with HTTPS; with `enableACME` or `useACMEHost`, the certificate\'s `fullchain.pem`.' }),
      sslCertificateKey: mkOption({ type: types.nullOr(types.path), default: null, example: '/var/host.key', description: 'Its private key; keep it outside the store.' }),
      sslTrustedCertificate: mkOption({ type: types.nullOr(types.path), default: null, description: 'CA certificates for OCSP stapling and client certificates (`ssl_trusted_certificate`).' }),
      http2: mkOption({ type: types.bool, default: true, description: "Whether to offer HTTP/2 on the site's HTTPS addresses. nginx enables it for every site on an address where one site has it." }),
      http3: mkOption({ type: types.bool, default: true, description: 'Whether to offer HTTP/3 when `quic` is on.' }),
      quic: mkOption({ type: types.bool, default: false, description: "Whether to serve QUIC (HTTP/3). Debian's nginx 1.22 has no QUIC: refused." }),
      globalRedirect: mkOption({ type: types.nullOr(token), default: null, example: 'newserver.example.org', description: 'Redirect every request for this site to this host (with `redirectCode`), keeping the path.' }),
      redirectCode: mkOption({ type: types.ints.between(300, 399), default: 301, example: 308, description: 'The HTTP status of the redirects `globalRedirect` and `forceSSL` answer with.' }),
      ...basicAuthOptions('the site'),
      root: mkOption({ type: types.nullOr(types.path), default: null, example: '/var/www/site', description: 'The document root of the site.' }),
      locations: mkOption({ type: types.attrsNamed(args, location), default: {}, example: { '/api/': { proxyPass: 'http://127.0.0.1:8080' } }, description: 'Location blocks, by nginx location (`/`, `= /x`, `~ \\.php$`).' }),
      extraConfig: mkOption({ type: types.lines, default: '', description: 'Directives added to the end of the server block as written.' }),
      // The name the site answers to, for the other modules (certificates) and the checks.
      _name: mkOption({ type: types.str, internal: true, default: name, description: 'The attribute name.' }),
    },
  }));
  const upstream = types.submodule({
    options: {
      servers: mkOption({
        type: types.attrsNamed(
          token,
          types.submodule({
            options: {
              backup: mkOption({ type: types.bool, default: false, description: 'Whether this is a backup server (`backup`).' }),
              parameters: mkOption({ type: types.listOf(token), default: [], example: ['weight=5', 'max_fails=3'], description: 'More parameters of its `server` line.' }),
            },
          }),
        ),
        default: {},
        example: { '127.0.0.1:8000': {}, 'unix:/run/app.sock': { backup: true } },
        description: 'The servers of the group, by address.',
      }),
      extraConfig: mkOption({ type: types.lines, default: '', description: 'Directives added to the `upstream` block as written.' }),
    },
  });

  const serverName = (h: VirtualHost): string => h.serverName ?? h._name;
  const hasSSL = (h: VirtualHost): boolean => h.onlySSL || h.addSSL || h.forceSSL;
  /** The certificate a site serves from security.acme, if any. */
  const acmeCert = (h: VirtualHost): string | null => (h.useACMEHost !== null ? h.useACMEHost : h.enableACME ? serverName(h) : null);

  /** Every address a site listens on, as NixOS derives them from the SSL options. */
  const listens = (h: VirtualHost): Listen[] => {
    if (h.listen.length > 0) return h.listen;
    const addrs = h.listenAddresses.length > 0 ? h.listenAddresses : cfg.defaultListenAddresses;
    const at = (port: number, ssl: boolean) => addrs.map((addr) => ({ addr, port, ssl, proxyProtocol: false, extraParameters: [] }));
    return [...(hasSSL(h) || h.rejectSSL ? at(cfg.defaultSSLListenPort, true) : []), ...(h.onlySSL ? [] : at(cfg.defaultHTTPListenPort, false))];
  };
  // nginx 1.25.1 turned HTTP/2 from a listen parameter into a server directive (and warns of the
  // old form); Debian 12 has 1.22, 13 has 1.26. NixOS decides the same by the package's version.
  const oldHTTP2 = (): boolean => config.system.debian.release === 'bookworm';
  const listenLine = (h: VirtualHost, l: Listen): string =>
    `listen ${[`${l.addr}${l.port === null ? '' : `:${l.port}`}`, ...(l.ssl ? ['ssl'] : []), ...(l.ssl && h.http2 && oldHTTP2() ? ['http2'] : []), ...(h.default ? ['default_server'] : []), ...(l.proxyProtocol ? ['proxy_protocol'] : []), ...l.extraParameters].join(' ')};`;
  const basicAuth = (a: { basicAuthFile: string | null }): string[] => (a.basicAuthFile === null ? [] : ['auth_basic secured;', `auth_basic_user_file ${nginxString(a.basicAuthFile)};`]);
  const acmeLocation = (h: VirtualHost): string[] => {
    if (acmeCert(h) === null) return [];
    const root = h.acmeRoot ?? config.security.acme.certs[acmeCert(h)!]?.webroot ?? null;
    if (root === null) return [];
    // `^~`: no regular expression location of the site takes the challenges; no password for them.
    return ['location ^~ /.well-known/acme-challenge/ {', `  root ${nginxString(root)};`, '  auth_basic off;', '}'];
  };
  const locationBlock = (path: string, l: Location): string[] => {
    const body = [
      ...(l.proxyPass !== null ? [`proxy_pass ${l.proxyPass};`] : []),
      ...(l.proxyWebsockets ? ['proxy_http_version 1.1;', 'proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Connection $connection_upgrade;'] : []),
      ...(l.index !== null ? [`index ${l.index};`] : []),
      ...(l.tryFiles !== null ? [`try_files ${l.tryFiles};`] : []),
      ...(l.root !== null ? [`root ${nginxString(l.root)};`] : []),
      ...(l.alias !== null ? [`alias ${nginxString(l.alias)};`] : []),
      ...(l.return !== null ? [`return ${l.return};`] : []),
      ...(l.extraConfig.trim() ? [l.extraConfig.replace(/\n+$/, '')] : []),
      // A location's own proxy_set_header lines hide the http block's: the recommended ones again.
      ...(l.proxyPass !== null && l.recommendedProxySettings ? PROXY_HEADERS : []),
      ...basicAuth(l),
    ];
    return [`location ${path} {`, ...body.map((b) => indent(b, '  ')), '}'];
  };
  const serverBlocks = (h: VirtualHost): string[] => {
    const all = listens(h);
    const names = `server_name ${[serverName(h), ...h.serverAliases].join(' ')};`;
    const blocks: string[][] = [];
    if (h.forceSSL) {
      blocks.push([...all.filter((l) => !l.ssl).map((l) => listenLine(h, l)), names, ...acmeLocation(h), 'location / {', `  return ${h.redirectCode} https://$host$request_uri;`, '}']);
    }
    const cert = acmeCert(h);
    const certFile = cert !== null ? `${acmeDir(cert)}/fullchain.pem` : h.sslCertificate;
    const keyFile = cert !== null ? `${acmeDir(cert)}/key.pem` : h.sslCertificateKey;
    const trusted = cert !== null ? `${acmeDir(cert)}/chain.pem` : h.sslTrustedCertificate;
    const locations = Object.entries(h.locations).sort(([a, x], [b, y]) => x.priority - y.priority || (a < b ? -1 : a > b ? 1 : 0));
    blocks.push([
      ...(h.forceSSL ? all.filter((l) => l.ssl) : all).map((l) => listenLine(h, l)),
      names,
      ...(hasSSL(h) && h.http2 && !oldHTTP2() ? ['http2 on;'] : []),
      ...(h.forceSSL ? [] : acmeLocation(h)),
      ...(h.root !== null ? [`root ${nginxString(h.root)};`] : []),
      ...(h.globalRedirect !== null ? ['location / {', `  return ${h.redirectCode} http${hasSSL(h) ? 's' : ''}://${h.globalRedirect}$request_uri;`, '}'] : []),
      ...(hasSSL(h) && certFile !== null && keyFile !== null ? [`ssl_certificate ${nginxString(certFile)};`, `ssl_certificate_key ${nginxString(keyFile)};`] : []),
      ...(hasSSL(h) && trusted !== null ? [`ssl_trusted_certificate ${nginxString(trusted)};`] : []),
      ...(h.rejectSSL ? ['ssl_reject_handshake on;'] : []),
      ...basicAuth(h),
      ...locations.flatMap(([path, l]) => ['', ...locationBlock(path, l)]),
      ...(h.extraConfig.trim() ? [h.extraConfig.replace(/\n+$/, '')] : []),
    ]);
    return blocks.map((b) => ['server {', ...b.map((l) => indent(l, '  ')), '}'].join('\n'));
  };

  /** The text of /etc/nginx/nginx.conf. */
  const nginxConf = (): string => {
    const hosts = Object.values(cfg.virtualHosts);
    const websockets = hosts.some((h) => Object.values(h.locations).some((l) => l.proxyWebsockets));
    const upstreams = Object.entries(cfg.upstreams).map(([name, u]) =>
      [
        `upstream ${name} {`,
        ...Object.entries(u.servers).map(([addr, s]) => `  server ${[addr, ...(s.backup ? ['backup'] : []), ...s.parameters].join(' ')};`),
        ...(u.extraConfig.trim() ? [indent(u.extraConfig, '  ')] : []),
        '}',
      ].join('\n'),
    );
    const status = cfg.statusPage
      ? [
          [
            'server {',
            ...cfg.defaultListenAddresses.map((a) => `  listen ${a}:${cfg.defaultHTTPListenPort};`),
            '  server_name localhost;',
            '  location /nginx_status {',
            '    stub_status on;',
            '    access_log off;',
            '    allow 127.0.0.1;',
            '    allow ::1;',
            '    deny all;',
            '  }',
            '}',
          ].join('\n'),
        ]
      : [];
    return lib.renderTemplate('services/nginx.nginx.conf', {
      user: cfg.user,
      group: cfg.group,
      workerProcesses: cfg.workerProcesses,
      modules: cfg.package !== 'nginx',
      common: indent(cfg.commonHttpConfig, '  '),
      clientMaxBodySize: cfg.clientMaxBodySize,
      sslProtocols: cfg.sslProtocols,
      sslCiphers: cfg.sslCiphers,
      tls: cfg.recommendedTlsSettings,
      optimisation: cfg.recommendedOptimisation,
      gzip: cfg.recommendedGzipSettings,
      gzipTypes: GZIP_TYPES,
      proxy: cfg.recommendedProxySettings,
      proxyHeaders: PROXY_HEADERS.map((h) => `  ${h}`).join('\n'),
      websockets,
      blocks: [...upstreams, ...status, ...hosts.flatMap(serverBlocks)].map((b) => indent(b, '  ')),
      http: indent(cfg.appendHttpConfig, '  '),
    });
  };

  /** The options a refused nginx.conf can come from, most specific first (free text is the usual culprit). */
  const checkedOptions = (): string[] => {
    const q = (s: string): string => (/^[A-Za-z0-9_-]+$/.test(s) ? s : JSON.stringify(s));
    const free = Object.entries(cfg.virtualHosts).flatMap(([n, h]) => [
      ...(h.extraConfig.trim() ? [`services.nginx.virtualHosts.${q(n)}.extraConfig`] : []),
      ...Object.entries(h.locations)
        .filter(([, l]) => l.extraConfig.trim())
        .map(([p]) => `services.nginx.virtualHosts.${q(n)}.locations.${q(p)}.extraConfig`),
    ]);
    const upstreams = Object.entries(cfg.upstreams).filter(([, u]) => u.extraConfig.trim()).map(([n]) => `services.nginx.upstreams.${q(n)}.extraConfig`);
    const global = ['commonHttpConfig', 'appendHttpConfig'].filter((o) => (cfg as unknown as Record<string, string>)[o]!.trim()).map((o) => `services.nginx.${o}`);
    return [...free, ...upstreams, ...global, 'services.nginx.virtualHosts', 'services.nginx.workerProcesses'];
  };

  /** Whether a site serves HTTPS: the check then needs a certificate of its own (made by openssl). */
  const anySSL = (): boolean => Object.values(cfg.virtualHosts).some((h) => hasSSL(h) || h.rejectSSL);
  const acmeCerts = (): string[] => [...new Set(Object.values(cfg.virtualHosts).map(acmeCert).filter((c): c is string => c !== null))];

  return {
    options: {
      services: {
        nginx: {
          enable: lib.mkEnableOption('the nginx web server'),
          package: mkOption({
            type: types.enum([...FLAVOURS]),
            default: 'nginx',
            description: "Debian's nginx package: `nginx` alone, or a flavour with dynamic modules (`nginx-light`, `nginx-core`, `nginx-full`, `nginx-extras`), loaded from its `modules-available` list.",
          }),
          user: mkOption({ type: types.accountName, default: 'www-data', description: 'The account worker processes run as (www-data comes with base-passwd).' }),
          group: mkOption({ type: types.accountName, default: 'www-data', description: 'The group worker processes run as; certificates of `enableACME` sites belong to it.' }),
          workerProcesses: mkOption({ type: types.either(types.enum(['auto']), types.ints.positive), default: 'auto', description: 'Number of worker processes.' }),
          defaultListenAddresses: mkOption({ type: types.listOf(token), default: ['0.0.0.0', '[::]'], description: 'The addresses of sites that name none.' }),
          defaultHTTPListenPort: mkOption({ type: types.port, default: 80, description: 'The plain HTTP port of sites that name none.' }),
          defaultSSLListenPort: mkOption({ type: types.port, default: 443, description: 'The HTTPS port of sites that name none.' }),
          recommendedProxySettings: mkOption({ type: types.bool, default: false, description: 'Whether to set the recommended proxy settings: timeouts, HTTP/1.1 to upstreams, `Host` and `X-Forwarded-*` headers.' }),
          recommendedTlsSettings: mkOption({ type: types.bool, default: false, description: 'Whether to set the recommended TLS settings: a shared session cache, no session tickets, modern curves.' }),
          recommendedGzipSettings: mkOption({ type: types.bool, default: false, description: 'Whether to compress text responses with gzip (and serve precompressed `.gz` files).' }),
          recommendedOptimisation: mkOption({ type: types.bool, default: false, description: 'Whether to set the recommended optimisations: `tcp_nodelay`, a keep-alive timeout, an open file cache.' }),
          clientMaxBodySize: mkOption({ type: size, default: '10m', example: '1g', description: 'The largest request body accepted (`client_max_body_size`; `0` for no limit).' }),
          sslProtocols: mkOption({ type: args, default: 'TLSv1.2 TLSv1.3', description: 'The TLS versions offered (`ssl_protocols`).' }),
          sslCiphers: mkOption({ type: types.nullOr(token), default: null, example: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256', description: "The ciphers of TLS 1.2 (`ssl_ciphers`); null keeps OpenSSL's." }),
          statusPage: mkOption({ type: types.bool, default: false, description: 'Whether to answer `/nginx_status` (`stub_status`) on localhost, port 80, to local clients only.' }),
          upstreams: mkOption({ type: types.attrsNamed(token, upstream), default: {}, example: { backend: { servers: { '127.0.0.1:8000': {} } } }, description: 'Groups of servers (`upstream`), by name, for `proxyPass = "http://NAME"`.' }),
          virtualHosts: mkOption({ type: types.attrsNamed(token, vhost), default: {}, description: 'Sites, by name.' }),
          commonHttpConfig: mkOption({ type: types.lines, default: '', example: 'resolver 127.0.0.1;', description: 'Directives added to the start of the `http` block as written (before the generated ones).' }),
          appendHttpConfig: mkOption({ type: types.lines, default: '', description: 'Directives added to the end of the `http` block as written.' }),
          configText: mkOption({ type: types.str, readOnly: true, get default() { return nginxConf(); }, defaultText: 'rendered from the options above', description: 'The generated /etc/nginx/nginx.conf (read-only).' }),
        },
      },
    },
    config: mkIf(cfg.enable, mkMerge([
      // A changed configuration is checked, then applied by a reload: no dropped connections.
      lib.systemd.configuredService('nginx', {
        configFile: 'nginx/nginx.conf',
        text: () => cfg.configText,
        onChange: 'reload',
        unit: {
          description: 'nginx web server',
          wantedBy: ['multi-user.target'],
          after: ['network.target'],
          reloadIfChanged: true,
          serviceConfig: {
            Type: 'forking',
            PIDFile: '/run/nginx.pid',
            ExecStartPre: '/usr/sbin/nginx -t -q -c /etc/nginx/nginx.conf',
            ExecStart: '/usr/sbin/nginx -c /etc/nginx/nginx.conf',
            ExecReload: ['/usr/sbin/nginx -t -q -c /etc/nginx/nginx.conf', '/usr/sbin/nginx -s reload -c /etc/nginx/nginx.conf'],
            ExecStop: '-/sbin/start-stop-daemon --quiet --stop --retry QUIT/5 --pidfile /run/nginx.pid',
            TimeoutStopSec: 10,
            KillMode: 'mixed',
            Restart: 'on-failure',
          },
        },
      }),
      {
        environment: {
          get systemPackages() {
            // openssl makes the check's throwaway certificate for HTTPS sites.
            return [cfg.package, ...(anySSL() ? ['openssl'] : [])];
          },
        },
        systemd: {
          services: {
            nginx: {
              // A site's certificate exists (the placeholder) before nginx reads it.
              get after() {
                return acmeCerts().map((c) => `acme-selfsigned-${c}.service`);
              },
              get wants() {
                return acmeCerts().map((c) => `acme-selfsigned-${c}.service`);
              },
            },
          },
        },
        security: {
          acme: {
            get certs() {
              const certs: Record<string, unknown> = {};
              for (const h of Object.values(cfg.virtualHosts)) {
                const cert = acmeCert(h);
                if (cert === null) continue;
                // The web server reloads (keeping its connections) when a certificate it serves is renewed.
                const own = h.useACMEHost === null ? { extraDomainNames: h.serverAliases, group: mkDefault(cfg.group), ...(h.acmeRoot !== null ? { webroot: mkDefault(h.acmeRoot) } : {}) } : {};
                certs[cert] = { ...(certs[cert] as object | undefined), reloadServices: ['nginx.service'], ...own };
              }
              return certs;
            },
          },
        },
      },
      {
        system: {
          checks: {
            'services.nginx': {
              package: 'nginx',
              program: 'usr/sbin/nginx',
              get setup() {
                if (!anySSL()) return [];
                return [['usr/bin/openssl', 'req', '-x509', '-config', '/dev/null', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=check', '-keyout', '@dir@/check-key.pem', '-out', '@dir@/check-cert.pem']];
              },
              args: ['-t', '-q', '-p', '@dir@/', '-e', '@dir@/error.log', '-c', '@dir@/nginx.conf'],
              files: {
                get 'nginx.conf'() {
                  return checkCopy(cfg.configText, anySSL());
                },
              },
              get options() {
                return checkedOptions();
              },
            },
          },
        },
        systemd: {
          tmpfiles: {
            get rules() {
              const owner = `${cfg.user} ${cfg.group}`;
              return ['d /var/log/nginx 0750 root adm -', `d /var/cache/nginx 0750 ${owner} -`, 'd /var/lib/nginx 0755 root root -', `d /var/lib/nginx/body 0700 ${owner} -`, `d /var/lib/nginx/proxy 0700 ${owner} -`];
            },
          },
        },
        get assertions() {
          return Object.entries(cfg.virtualHosts).flatMap(([n, h]) => {
            const at = `services.nginx.virtualHosts.${JSON.stringify(n)}`;
            const cert = acmeCert(h);
            return [
              {
                assertion: [h.addSSL, h.onlySSL, h.forceSSL, h.rejectSSL].filter(Boolean).length <= 1,
                message: `${at}: only one of addSSL, onlySSL, forceSSL and rejectSSL may be set.`,
              },
              { assertion: !(h.enableACME && h.useACMEHost !== null), message: `${at}: enableACME and useACMEHost are exclusive: a site is served one certificate.` },
              {
                assertion: !hasSSL(h) || cert !== null || (h.sslCertificate !== null && h.sslCertificateKey !== null),
                message: `${at}: HTTPS (addSSL, onlySSL or forceSSL) needs a certificate: set enableACME, useACMEHost, or sslCertificate and sslCertificateKey.`,
              },
              // The site's names must be the certificate's: useACMEHost orders nothing.
              ...(h.useACMEHost !== null ? [((c) => {
                const domains = c ? [c.domain, ...c.extraDomainNames] : [];
                const covered = (n: string) => domains.some((d) => d === n || (d.startsWith('*.') && n.endsWith(d.slice(1)) && !n.slice(0, -d.length + 1).includes('.')));
                const missing = [serverName(h), ...h.serverAliases].filter((n) => !covered(n));
                return { assertion: missing.length === 0, message: `${at}.useACMEHost: the certificate "${h.useACMEHost}" is not for ${missing.join(', ')}: declare it in security.acme.certs with these names as its domain or extraDomainNames.` };
              })(config.security.acme.certs[h.useACMEHost])] : []),
              { assertion: !h.quic, message: `${at}.quic: Debian's nginx (1.22) is built without QUIC, so HTTP/3 cannot be served.` },
              ...[['', h] as const, ...Object.entries(h.locations).map(([p, l]) => [`.locations.${JSON.stringify(p)}`, l] as const)].map(([where, a]) => ({
                assertion: Object.keys(a.basicAuth).length === 0,
                message: `${at}${where}.basicAuth: passwords written here would be in the world-readable store; write an htpasswd file outside it and name it in basicAuthFile.`,
              })),
              ...(cert !== null && cert in config.security.acme.certs
                ? [
                    {
                      assertion: config.security.acme.certs[cert]!.group === cfg.group,
                      message: `${at}: the certificate "${cert}" belongs to the group ${config.security.acme.certs[cert]!.group}, not nginx's group ${cfg.group}: set security.acme.certs."${cert}".group = "${cfg.group}".`,
                    },
                  ]
                : []),
            ];
          });
        },
      },
    ])),
  };
};
