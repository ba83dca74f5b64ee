import type { ModuleArgs } from '../config.js';

/**
 * `networking.domain`, `networking.hosts`, `networking.extraHosts`: /etc/hosts. The host's own name
 * resolves to 127.0.1.1, Debian's convention for machines without a fixed address in DNS.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const net = config.networking;
  // A field of /etc/hosts: whitespace separates fields, `#` starts a comment.
  const hostsWord = types.strMatching('[^\\s#\\x00-\\x1f\\x7f]+');
  return {
    options: {
      networking: {
        domain: mkOption({
          type: types.nullOr(types.strMatching('[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*')),
          default: null,
          example: 'example.org',
          description: 'The DNS domain of the machine; with `hostName` it makes the fully qualified name in /etc/hosts.',
        }),
        fqdn: mkOption({
          type: types.str,
          readOnly: true,
          get default() {
            return net.domain === null ? net.hostName : `${net.hostName}.${net.domain}`;
          },
          defaultText: '<hostName>.<domain>, or <hostName> without a domain',
          description: 'The fully qualified domain name (read-only).',
        }),
        hosts: mkOption({
          type: types.attrsNamed(hostsWord, types.listOf(hostsWord)),
          default: {},
          example: { '192.0.2.20': ['db', 'db.example.org'] },
          description: 'Entries of /etc/hosts: names by address.',
        }),
        extraHosts: mkOption({ type: types.lines, default: '', description: 'Lines appended to /etc/hosts as written.' }),
      },
    },
    config: {
      environment: {
        etc: {
          hosts: {
            get text() {
              const own = net.domain === null ? [net.hostName] : [net.fqdn, net.hostName];
              const hosts = Object.entries(net.hosts).map(([address, names]) => ({ address, names: names.join(' ') }));
              return lib.renderTemplate('networking/hosts.hosts', { own: own.join(' '), hosts, extra: net.extraHosts.replace(/\n+$/, '') });
            },
          },
        },
      },
    },
  };
};
