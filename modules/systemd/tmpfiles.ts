import type { ModuleArgs } from '../config.js';

/**
 * `systemd.tmpfiles.rules`: folders, files and links systemd-tmpfiles creates at boot and on switch
 * (tmpfiles.d(5) lines). Modules use it for what a package's postinst would create: /run/sshd,
 * nginx's log and cache folders.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.systemd.tmpfiles;
  return {
    options: {
      systemd: {
        tmpfiles: {
          rules: mkOption({
            type: types.listOf(types.singleLineStr),
            default: [],
            example: ['d /var/lib/report 0750 deploy deploy -'],
            description: 'tmpfiles.d(5) lines, written in order to /etc/tmpfiles.d/00-cairn.conf.',
          }),
        },
      },
    },
    config: mkIf(() => cfg.rules.length > 0, {
      environment: {
        etc: {
          'tmpfiles.d/00-cairn.conf': {
            get text() {
              return lib.renderTemplate('systemd/tmpfiles.tmpfiles', { rules: cfg.rules });
            },
          },
        },
      },
    }),
  };
};
