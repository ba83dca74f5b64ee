import type { ModuleArgs } from '../config.js';

/**
 * Generators systemd ships that a cairn system has no use for, masked by default: units are
 * declared, never converted from SysV init scripts or /etc/rc.local. NixOS's systemd is built
 * without them; Debian's has them, and systemd runs every generator at each boot and each
 * `daemon-reload` (each a process, costly on small and emulated machines).
 */
const MASKED = ['systemd-sysv-generator', 'systemd-rc-local-generator'];

/** `systemd.generators`: generators by name, linked into /etc/systemd/system-generators. */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkDefault, types } = lib;
  return {
    options: {
      systemd: {
        generators: mkOption({
          type: types.attrsNamed(types.fileName, types.path),
          default: {},
          example: { 'systemd-gpt-auto-generator': '/dev/null' },
          description:
            'systemd generators (systemd.generator(7)): each NAME = PATH links /etc/systemd/system-generators/NAME to PATH; a link to /dev/null masks the generator of that name systemd ships. ' +
            `Unlike NixOS, whose systemd is built without them, ${MASKED.map((g) => `\`${g}\``).join(' and ')} are masked here by default (Debian's systemd ships them): ` +
            'set one to its path under /usr/lib/systemd/system-generators to run it.',
        }),
      },
    },
    config: {
      systemd: { generators: Object.fromEntries(MASKED.map((g) => [g, mkDefault('/dev/null')])) },
      environment: {
        get etc() {
          return Object.fromEntries(Object.entries(config.systemd.generators).map(([name, path]) => [`systemd/system-generators/${name}`, { symlink: path }]));
        },
      },
    },
  };
};
