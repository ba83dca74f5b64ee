import type { ModuleArgs } from '../config.js';

/** `s` as one nginx word: as it is when plain, else double-quoted with `"` and `\\` escaped (a path may hold spaces or `;`). */
const nginxString = (s: string): string => (/^[\w/.@%+,:=~-]+$/.test(s) ? s : `"${s.replace(/[\\"]/g, '\\$&')}"`);

/** Lines of a block without their trailing newline, indented for the config file. */
const indent = (text: string, by: string): string =>
  text
    .replace(/\n+$/, '')
    .split('\n')
    .map((l) => (l ? by + l : l))
    .join('\n');

/**
 * nginx.conf as `nginx -t` checks it on the building machine, unprivileged, line for line the
 * same: nginx's folders are the scratch folder, each listen address a socket there (ports below
 * 1024 are root's), and the `user` line, which only root may use, a comment.
 */
function checkCopy(text: string): string {
  const sockets = new Map<string, string>();
  return text
    .replace(/\/var\/(log|lib|cache)\/nginx\//g, '@dir@/')
    .replaceAll('/run/nginx.pid', '@dir@/nginx.pid')
    .replace(/^user [^\n]*/m, '# $&')
    .replace(/^(\s*listen\s+)([^\s;]+)/gm, (_, lead: string, addr: string) => {
      if (!sockets.has(addr)) sockets.set(addr, `unix:@dir@/listen-${sockets.size}`);
      return lead + sockets.get(addr)!;
    });
}

/**
 * `services.nginx`: the nginx web server and its virtual hosts. /etc/nginx/nginx.conf is complete
 * in itself (mime types included): nothing is read from the package's /etc. What nginx's postinst
 * would do is here: its log and cache folders (tmpfiles), run as `www-data` (from base-passwd).
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.services.nginx;
  // An nginx token: whitespace, `;`, braces, quotes and `#` would end it, open a block or a comment.
  const token = types.strMatching('[^\\s;{}"\'#\\\\\\x00-\\x1f\\x7f]+');
  // Arguments of one directive (several words): no `;`, braces, quotes, `#` or line breaks, and no
  // final backslash, which would escape the `;` or ` {` after it.
  const args = types.strMatching('[^;{}"\'#\\x00-\\x1f\\x7f]*[^;{}"\'#\\\\\\x00-\\x1f\\x7f]');
  const location = types.submodule({
    options: {
      root: mkOption({ type: types.nullOr(types.path), default: null, description: 'Serve files from this folder (`root`).' }),
      proxyPass: mkOption({ type: types.nullOr(types.strMatching('(https?|unix|grpc)://[^\\s;{}"\'#\\x00-\\x1f\\x7f]+|http://unix:[^\\s;{}"\'#\\x00-\\x1f\\x7f]+')), default: null, example: 'http://127.0.0.1:8080', description: 'Forward requests to this URL (`proxy_pass`), with the usual proxy headers.' }),
      index: mkOption({ type: types.nullOr(args), default: null, example: 'index.html', description: 'Index files (`index`).' }),
      tryFiles: mkOption({ type: types.nullOr(args), default: null, example: '$uri $uri/ =404', description: '`try_files` arguments.' }),
      extraConfig: mkOption({ type: types.lines, default: '', description: 'Directives added to the location block as written.' }),
    },
  });
  const listen = types.submodule({
    options: {
      addr: mkOption({ type: token, description: 'The address (`0.0.0.0`, `[::]`, `192.0.2.10`).' }),
      port: mkOption({ type: types.port, default: 80, description: 'The port.' }),
    },
  });
  const vhost = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      serverName: mkOption({ type: token, default: name, description: 'The host name (the attribute name by default); `_` matches any.' }),
      serverAliases: mkOption({ type: types.listOf(token), default: [], description: 'More names of the same site.' }),
      listen: mkOption({
        type: types.listOf(listen),
        default: [
          { addr: '0.0.0.0', port: 80 },
          { addr: '[::]', port: 80 },
        ],
        description: 'Where the site is served.',
      }),
      default: mkOption({ type: types.bool, default: false, description: 'Whether this site answers requests for names no site has (`default_server`).' }),
      root: mkOption({ type: types.nullOr(types.path), default: null, example: '/var/www/site', description: 'The document root of the site.' }),
      locations: mkOption({ type: types.attrsNamed(args, location), default: {}, example: { '/api/': { proxyPass: 'http://127.0.0.1:8080' } }, description: 'Location blocks, by nginx location (`/`, `= /x`, `~ \\.php$`).' }),
      extraConfig: mkOption({ type: types.lines, default: '', description: 'Directives added to the server block as written.' }),
    },
  }));

  /** The text of /etc/nginx/nginx.conf. */
  const nginxConf = (): string => {
    const hosts = Object.values(cfg.virtualHosts).map((h) => ({
      listen: h.listen.map((l) => `${l.addr}:${l.port}${h.default ? ' default_server' : ''}`),
      names: [h.serverName, ...h.serverAliases].join(' '),
      root: h.root === null ? null : nginxString(h.root),
      locations: Object.entries(h.locations).map(([path, l]) => ({ path, ...l, root: l.root === null ? null : nginxString(l.root), extra: indent(l.extraConfig, '      ') })),
      extra: indent(h.extraConfig, '    '),
    }));
    return lib.renderTemplate('services/nginx.nginx.conf', {
      user: cfg.user,
      group: cfg.group,
      workerProcesses: cfg.workerProcesses,
      hosts,
      http: indent(cfg.appendHttpConfig, '  '),
    });
  };

  return {
    options: {
      services: {
        nginx: {
          enable: lib.mkEnableOption('the nginx web server'),
          user: mkOption({ type: types.accountName, default: 'www-data', description: 'The account worker processes run as (www-data comes with base-passwd).' }),
          group: mkOption({ type: types.accountName, default: 'www-data', description: 'The group worker processes run as.' }),
          workerProcesses: mkOption({ type: types.either(types.enum(['auto']), types.ints.positive), default: 'auto', description: 'Number of worker processes.' }),
          virtualHosts: mkOption({ type: types.attrsNamed(token, vhost), default: {}, description: 'Sites, by name.' }),
          appendHttpConfig: mkOption({ type: types.lines, default: '', description: 'Directives added to the `http` block as written.' }),
          configText: mkOption({ type: types.str, readOnly: true, get default() { return nginxConf(); }, defaultText: 'rendered from the options above', description: 'The generated /etc/nginx/nginx.conf (read-only).' }),
        },
      },
    },
    config: mkIf(cfg.enable, mkMerge([
      // A changed configuration is checked, then applied by a reload: no dropped connections.
      lib.systemd.configuredService('nginx', {
        packages: ['nginx'],
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
        system: {
          checks: {
            'services.nginx': {
              package: 'nginx',
              program: 'usr/sbin/nginx',
              args: ['-t', '-q', '-p', '@dir@/', '-e', '@dir@/error.log', '-c', '@dir@/nginx.conf'],
              files: {
                get 'nginx.conf'() {
                  return checkCopy(cfg.configText);
                },
              },
              options: ['services.nginx.appendHttpConfig', 'services.nginx.virtualHosts', 'services.nginx.workerProcesses'],
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
      },
    ])),
  };
};
