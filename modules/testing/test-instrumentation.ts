import type { ModuleArgs } from '../config.js';
import { BACKDOOR_READY, BOOTED_FLAG, SHELL_PORT } from '../../src/testing/constants.js';

/**
 * `testing.enable`: what a machine under `cairn test` needs. A root shell on a virtio port (the
 * driver's side is a unix socket, see src/vm/shell.ts), started early and kept out of the way of
 * shutdown, and boot failures that end the VM instead of waiting at a console.
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
          description: `Instrument the machine for \`cairn test\`: a root shell on the virtio port ${SHELL_PORT} for the test driver. For test VMs only.`,
        }),
      },
    },
    config: mkIf(config.testing.enable, {
      systemd: {
        services: {
          backdoor: {
            description: `Root shell for the cairn test driver on the virtio port ${SHELL_PORT}`,
            wantedBy: ['multi-user.target'],
            unitConfig: { DefaultDependencies: false },
            conflicts: ['shutdown.target'],
            before: ['shutdown.target'],
            serviceConfig: { KillSignal: 'SIGHUP' },
            script: [
              'export USER=root HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
              'cd /root 2>/dev/null || cd /',
              // The port's device, by its name in sysfs: early in boot, before udev has linked
              // /dev/virtio-ports/<name> (or loaded virtio_console); for a minute at most.
              'port=',
              'for _ in $(seq 600); do',
              '  for p in /sys/class/virtio-ports/*; do',
              `    [ "$(cat "$p/name" 2>/dev/null)" = ${SHELL_PORT} ] && [ -c "/dev/\${p##*/}" ] && port=/dev/\${p##*/}`,
              '  done',
              '  [ -n "$port" ] && break',
              '  sleep 0.1',
              'done',
              `[ -n "$port" ] || { echo 'no virtio port ${SHELL_PORT}' >&2; exit 1; }`,
              // One open (a port has one user at a time), for reading and writing.
              'exec 0<>"$port" 1>&0 2>&0',
              `echo '${BACKDOOR_READY}'`,
              // Not a terminal: bash reads commands without line editing or echo, a byte at a time,
              // so that a command's own reader (src/vm/shell.ts's \`head -c\`) gets what follows it.
              'exec bash --norc --noprofile',
              '',
            ].join('\n'),
          },
          // The driver's waitForUnit waits for this flag while the machine boots instead of asking
          // systemd every second (each `systemctl` costs the booting guest a quarter of a second).
          'cairn-test-booted': {
            description: 'Tell the cairn test driver that the boot reached multi-user.target',
            wantedBy: ['multi-user.target'],
            after: ['multi-user.target'],
            serviceConfig: { Type: 'oneshot', RemainAfterExit: true, ExecStart: `/usr/bin/touch ${BOOTED_FLAG}` },
          },
          // The serial console carries the boot log the driver reads; nobody logs in there.
          'serial-getty@ttyS0': { enable: false },
        },
      },
      // A stage-1 failure or kernel panic ends the VM at once (QEMU runs with -no-reboot).
      boot: { kernelParams: ['panic=1'] },
    }),
  };
};
