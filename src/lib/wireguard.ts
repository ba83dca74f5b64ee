/**
 * What `networking.wireguard` and `networking.wg-quick` share: the checked types of WireGuard's
 * values and the peer options (NixOS declares them in each module alike). Every value here reaches
 * a shell script or wg-quick's config file, whose parser cuts lines at `#`: the types refuse
 * anything that could end a word or a line there, and scripts quote each value once more.
 */
import { mkOption } from './options.js';
import { mkOptionType, types, type OptionType } from './types.js';
import { mergeEqualOption } from './merge.js';

// The store as machines see it (index.ts's LOGICAL_STORE; not imported: index.ts imports this file).
const LOGICAL_STORE = '/cairn/store';

// Types are made on first use: types.ts and the evaluator import each other (see lib.ts).

/** A WireGuard key as `wg genkey`/`wg pubkey` print it: 32 bytes in base64. */
export const key = (): OptionType => types.strMatching('[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=');

/** An address with an optional prefix length (`10.100.0.1/24`, `fd00::1/64`, `0.0.0.0/0`). */
export const cidr = (): OptionType => types.strMatching('[0-9A-Fa-f.:]+(/[0-9]{1,3})?');

/** `host:port`, the host a name, an IPv4 address or an IPv6 address in brackets. */
export const endpoint = (): OptionType => types.strMatching('(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?):[0-9]{1,5}');

/** A routing table: a number, or a name of /etc/iproute2/rt_tables (`main`; wg-quick: `off`, `auto`). */
export const table = (): OptionType => types.strMatching('[A-Za-z0-9_.-]+');

/** A firewall mark (`0x6e6978`, `51820`, `off`). */
export const fwMark = (): OptionType => types.strMatching('0x[0-9A-Fa-f]{1,8}|[0-9]{1,10}|off');

/**
 * A file holding a secret (a private or preshared key), read on the machine: an absolute path
 * outside the world-readable store. The refusal names the option and the definition's file:line.
 */
export function secretFile(what: string): OptionType {
  const re = /^\/[^\s#%"'\\\x00-\x1f\x7f]*$/u;
  return mkOptionType({
    name: 'secretFile',
    description:
      `absolute path of a file holding ${what}, outside the store (${LOGICAL_STORE}, world-readable), ` +
      'e.g. an age.secrets file below /run/secrets; no whitespace, quotes, backslashes, # or %',
    descriptionClass: 'noun',
    check: (v) => typeof v === 'string' && re.test(v) && !(v === LOGICAL_STORE || v.startsWith(`${LOGICAL_STORE}/`)),
    merge: mergeEqualOption,
    jsonSchema: () => ({ type: 'string', pattern: re.source }),
  });
}

/**
 * NixOS's inline secret options (`privateKey`, `presharedKey`): only null passes, so a key written
 * into the configuration (and so into the world-readable store) is refused where it is defined,
 * with the option to use instead.
 */
export function refusedSecret(fileOption: string): OptionType {
  return mkOptionType({
    name: 'refusedSecret',
    description: `null: a key written here would be in the world-readable store; put it in a file outside the store and set ${fileOption} (e.g. an age.secrets file below /run/secrets)`,
    descriptionClass: 'noun',
    check: (v) => v === null,
    secret: true,
    merge: mergeEqualOption,
    jsonSchema: () => ({ type: 'null' }),
  });
}

/** An interface's `privateKey` (refused) and `privateKeyFile`; `read` says when the key file is read. */
export function privateKeyOptions(read: string) {
  return {
    privateKey: mkOption({
      type: refusedSecret('privateKeyFile'),
      default: null,
      description: "NixOS's inline private key. Refused: it would be in the world-readable store; use `privateKeyFile` (e.g. an `age.secrets` file).",
    }),
    privateKeyFile: mkOption({
      type: types.nullOr(secretFile('the private key (`wg genkey`)')),
      default: null,
      example: '/run/secrets/wg0-key',
      description: `The file holding the private key, as \`wg genkey\` writes it; ${read}. It must be outside the store.`,
    }),
  };
}

/** The options of a peer, as both NixOS modules declare them (`networking.wireguard`'s has a few more). */
export function peerOptions(o: { wireguard: boolean }) {
  return {
    ...(o.wireguard
      ? {
          name: mkOption({
            type: types.nullOr(types.singleLineStr),
            default: null,
            description: "A name for the peer: its endpoint refresh unit is named by it (the public key when null), and the interface's script says which peer each step is for.",
          }),
          dynamicEndpointRefreshSeconds: mkOption({
            type: types.ints.unsigned,
            default: 0,
            example: 5,
            description:
              'Every this many seconds, set the endpoint again (`wg set … endpoint`), so a new address behind its host name is noticed, in ' +
              '`wireguard-<interface>-peer-<name>-refresh.service`; 0: only when the interface is set up.',
          }),
          dynamicEndpointRefreshRestartSeconds: mkOption({
            type: types.nullOr(types.ints.positive),
            default: null,
            description: 'Seconds before the refresh unit starts again after the name could not be resolved (systemd\'s default when null).',
          }),
        }
      : {}),
    publicKey: mkOption({ type: key(), example: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=', description: 'The base64 public key of the peer (`wg pubkey`).' }),
    presharedKey: mkOption({
      type: refusedSecret('presharedKeyFile'),
      default: null,
      description: "NixOS's inline preshared key. Refused: it would be in the world-readable store; use `presharedKeyFile`.",
    }),
    presharedKeyFile: mkOption({
      type: types.nullOr(secretFile('a preshared key (`wg genpsk`)')),
      default: null,
      example: '/run/secrets/wg0-psk',
      description: 'A file holding a preshared key generated by `wg genpsk` (optional; a symmetric key mixed into the handshake). It must be outside the store.',
    }),
    allowedIPs: mkOption({
      type: types.listOf(cidr()),
      example: ['10.192.122.3/32', '10.192.124.1/24'],
      description: 'Addresses with prefix lengths this peer may send from and traffic to which goes to it; `0.0.0.0/0` and `::/0` match everything.',
    }),
    endpoint: mkOption({
      type: types.nullOr(endpoint()),
      default: null,
      example: 'demo.wireguard.io:12913',
      description: 'Where the peer is: a host name or address, a colon and a port (an IPv6 address in brackets). A name is resolved once, when the interface is set up.',
    }),
    persistentKeepalive: mkOption({
      type: types.nullOr(types.ints.between(1, 65535)),
      default: null,
      example: 25,
      description: 'Seconds between keepalive packets to the peer, to keep a NAT or stateful firewall mapping open; off when null.',
    }),
  };
}
