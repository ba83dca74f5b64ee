import type { ModuleArgs } from '../config.js';

/**
 * `security.sudo`: sudo, and /etc/sudoers generated whole (mode 0440, as sudo insists). Members
 * of `wheel` may run anything, with their password unless `wheelNeedsPassword` is off.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.security.sudo;
  return {
    options: {
      security: {
        sudo: {
          enable: mkOption({ type: types.bool, default: true, description: 'Whether to install sudo and let the `wheel` group use it.' }),
          wheelNeedsPassword: mkOption({ type: types.bool, default: true, description: 'Whether members of `wheel` must type their password.' }),
          extraRules: mkOption({ type: types.lines, default: '', example: 'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx.service', description: 'sudoers(5) lines added after the generated rules (later rules win).' }),
          sudoersText: mkOption({
            type: types.str,
            readOnly: true,
            get default() {
              return lib.renderTemplate('security/sudo.sudoers', { nopasswd: !cfg.wheelNeedsPassword, extra: cfg.extraRules.replace(/\n+$/, '') });
            },
            defaultText: 'rendered from the options above',
            description: 'The generated /etc/sudoers (read-only).',
          }),
        },
      },
    },
    config: mkIf(cfg.enable, {
      environment: {
        systemPackages: ['sudo'],
        etc: { sudoers: { get text() { return cfg.sudoersText; }, mode: '0440' } },
      },
      users: { groups: { wheel: {} } },
      system: {
        checks: {
          'security.sudo': {
            package: 'sudo',
            program: 'usr/sbin/visudo',
            args: ['-c', '-f', '@dir@/sudoers'],
            files: { get sudoers() { return cfg.sudoersText; } },
            options: ['security.sudo.extraRules'],
          },
        },
      },
    }),
  };
};
