import type { ModuleArgs } from '../config.js';

/** `networking.hostName`: the machine's host name (RFC 1123 label). */
export default ({ lib, config }: ModuleArgs) => ({
  config: {
    // systemd sets the host name from /etc/hostname early at boot.
    environment: { etc: { hostname: { text: `${config.networking.hostName}\n` } } },
  },
  options: {
    networking: {
      hostName: lib.mkOption({
        type: lib.types.strMatching('[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'),
        default: 'cairn',
        example: 'web1',
        description: 'The host name of the machine: one label of letters, digits and hyphens, not starting or ending with a hyphen.',
      }),
    },
  },
});
