import type { ModuleArgs } from '../config.js';

/**
 * Generators systemd ships that serve what a cairn system does not have, masked by default.
 * systemd runs every generator at each boot and each `daemon-reload`, each a process start (on
 * an emulated machine ~0.1 s of CPU apiece, before the first unit can start). Why each goes:
 */
const MASKED: Record<string, string> = {
  // Units are declared, never converted from SysV init scripts or /etc/rc.local (NixOS's systemd is built without these two).
  'systemd-sysv-generator': 'SysV init scripts',
  'systemd-rc-local-generator': '/etc/rc.local',
  // No offline updates: a new generation is switched to or booted, never applied in a special boot.
  'systemd-system-update-generator': 'offline updates (system-update.target)',
  // No hibernation: nothing declares a resume device.
  'systemd-hibernate-resume-generator': 'resuming from hibernation (resume=)',
  // No TPM2 features: nothing orders itself after tpm2.target.
  'systemd-tpm2-generator': 'tpm2.target',
  // sshd is what services.openssh declares: no undeclared listener on AF_VSOCK or AF_UNIX in VMs and containers.
  'systemd-ssh-generator': 'sshd sockets on AF_VSOCK/AF_UNIX (systemd.ssh_auto)',
};

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
            'Unlike NixOS, which runs whatever generators its systemd was built with, the generators Debian\'s systemd ships for what a cairn system does not have are masked here by default: ' +
            `${Object.entries(MASKED).map(([g, what]) => `\`${g}\` (${what})`).join(', ')}; ` +
            'set one to its path under /usr/lib/systemd/system-generators to run it.',
        }),
      },
    },
    config: {
      systemd: { generators: Object.fromEntries(Object.keys(MASKED).map((g) => [g, mkDefault('/dev/null')])) },
      environment: {
        get etc() {
          return Object.fromEntries(Object.entries(config.systemd.generators).map(([name, path]) => [`systemd/system-generators/${name}`, { symlink: path }]));
        },
      },
    },
  };
};
