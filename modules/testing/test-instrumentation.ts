import type { ModuleArgs } from '../config.js';
import { BACKDOOR_READY } from '../../src/testing/constants.js';

/**
 * `testing.enable`: what a machine under `cairn test` needs. A root shell on the virtio console
 * /dev/hvc0 (the driver's side is a unix socket, see src/vm/shell.ts), started early and kept out
 * of the way of shutdown, and boot failures that end the VM instead of waiting at a console.
 * Never enable it on a real machine: it is a root shell for whoever holds the console.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  return {
    options: {
      testing: {
        enable: mkOption({
          type: types.bool,
          default: false,
          description: 'Instrument the machine for `cairn test`: a root shell on /dev/hvc0 for the test driver. For test VMs only.',
        }),
      },
    },
    config: mkIf(config.testing.enable, {
      systemd: {
        services: {
          backdoor: {
            description: 'Root shell for the cairn test driver on /dev/hvc0',
            wantedBy: ['multi-user.target'],
            requires: ['dev-hvc0.device'],
            after: ['dev-hvc0.device'],
            unitConfig: { DefaultDependencies: false },
            conflicts: ['shutdown.target'],
            before: ['shutdown.target'],
            serviceConfig: { KillSignal: 'SIGHUP' },
            script: [
              'export USER=root HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
              'cd /root 2>/dev/null || cd /',
              'exec < /dev/hvc0 > /dev/hvc0 2>&1',
              'stty raw -echo 2>/dev/null || true',
              `echo '${BACKDOOR_READY}'`,
              'PS1= exec bash --norc --noprofile',
              '',
            ].join('\n'),
          },
          // systemd's getty generator starts a login prompt on every virtualizer console it finds at
          // boot, /dev/hvc0 among them once the kernel has virtio_console early: two readers of one
          // console, and the driver's commands go to login instead of the shell. The serial console
          // carries the boot log the driver reads; nobody logs in there. Both masked, as NixOS does.
          'serial-getty@hvc0': { enable: false },
          'serial-getty@ttyS0': { enable: false },
        },
      },
      // A stage-1 failure or kernel panic ends the VM at once (QEMU runs with -no-reboot).
      boot: { kernelParams: ['panic=1'] },
    }),
  };
};
