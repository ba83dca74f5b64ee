import type { ModuleArgs } from '../config.js';

/**
 * What every cairn system has, whatever else it declares: the base packages a systemd system
 * needs to boot and log in, its identity in /etc (os-release, hostname), and the activation
 * snippets the build generates (`etc`, `users`) so that others can order their own after them.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkDefault, types } = lib;
  return {
    options: {
      system: {
        basePackages: mkOption({
          type: types.listOf(types.package),
          internal: true,
          // The debootstrap minbase set that boots with systemd, without apt/dpkg (see README).
          get default() {
            return [
              'base-files', 'base-passwd', 'bash', 'coreutils', 'dash', 'debianutils', 'diffutils', 'findutils', 'grep', 'gzip',
              'hostname', 'init-system-helpers', 'libc-bin', 'login', 'mawk', 'mount', 'ncurses-base', 'ncurses-bin', 'passwd',
              'sed', 'sysvinit-utils', 'tar', 'util-linux', 'libpam-runtime', 'libpam-modules', 'libpam-modules-bin', 'procps',
              'iproute2', 'kmod', 'udev', 'systemd', 'systemd-sysv',
              // bash's loadable builtins (mkdir, ln, rm, stat): activation runs them in its shell, not as processes.
              'bash-builtins',
              // Satisfies Debian 12's init-system-helpers (`usrmerge | usr-is-merged`) as debootstrap does: a
              // cairn root is merged from the start, and usrmerge (the converter) would bring perl, ~50 MB.
              // Debian 13 is merged by base-files itself.
              ...(config.system.debian.release === 'bookworm' ? ['usr-is-merged'] : []),
            ];
          },
          defaultText: 'the debootstrap minbase set with systemd (and usr-is-merged on bookworm)',
          description: 'Packages every system gets: the minimal set that boots systemd and lets a user log in.',
        }),
        label: mkOption({
          type: types.strMatching('[A-Za-z0-9._+-]+'),
          get default() {
            return `${config.system.stateVersion}`;
          },
          defaultText: 'config.system.stateVersion',
          description: 'The label of builds of this system: part of the toplevel name and of boot entries.',
        }),
      },
    },
    config: {
      environment: {
        etc: {
          'os-release': mkDefault({
            get text() {
              const name = config.system.name;
              const label = config.system.label;
              return [
                'NAME=cairn',
                'ID=cairn',
                'ID_LIKE=debian',
                `VERSION_ID="${label}"`,
                `PRETTY_NAME="cairn ${label} (${name})"`,
                '',
              ].join('\n');
            },
          }),
          hostname: mkDefault({ get text() { return `${config.networking.hostName}\n`; } }),
          // Programs still read mounts here; it must follow the live table, never be a copy.
          mtab: mkDefault({ symlink: '/proc/self/mounts' }),
        },
      },
      system: {
        activationScripts: {
          // Bodies are shell functions of the generated `activate` (src/build/activate.ts).
          layout: { text: 'cairn_setup_layout', deps: [] },
          users: { text: 'cairn_setup_users', deps: ['layout'] },
          etc: { text: 'cairn_setup_etc', deps: ['users'] },
          var: { text: 'cairn_setup_var', deps: ['users'] },
        },
      },
    },
  };
};
