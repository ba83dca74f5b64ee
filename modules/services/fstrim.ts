import type { ModuleArgs } from '../config.js';

/**
 * `services.fstrim`: a periodic `fstrim` of the mounted filesystems (NixOS's module of that name).
 * util-linux ships fstrim.service and fstrim.timer; this enables the packaged timer with a
 * `timers.target.wants/` link and sets its schedule in a drop-in.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.services.fstrim;
  // One line, not empty, no trailing backslash: it becomes one `OnCalendar=` entry of a unit file.
  const line = types.strMatching('[^\\s\\x00-\\x1f\\x7f](?:[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f\\\\])?');
  const calendarEvent = lib.mkOptionType({
    name: 'calendarEvent',
    description: 'systemd calendar event (one line, see systemd.time(7))',
    check: line.check,
    merge: line.merge,
    jsonSchema: line.jsonSchema,
  });
  return {
    options: {
      services: {
        fstrim: {
          enable: mkOption({
            type: types.bool,
            // As in NixOS since 24.11, and as Debian's util-linux enables the timer on installation.
            default: true,
            example: false,
            description:
              'Whether to enable periodic SSD TRIM of mounted partitions in background. On by default: fstrim skips filesystems that cannot discard, and the packaged units do nothing in a container.',
          }),
          interval: mkOption({
            type: calendarEvent,
            default: 'weekly',
            example: 'Mon *-*-* 03:00:00',
            description:
              "How often we run fstrim. For most desktop and server systems a sufficient trimming frequency is once a week. The format is described in systemd.time(7) (`OnCalendar=`). Debian's timer, which this one changes, also delays each run by up to 100 minutes at random (`RandomizedDelaySec=6000`) and catches up on a run missed while the machine was off (`Persistent=true`).",
          }),
        },
      },
    },
    config: mkIf(cfg.enable, {
      environment: { systemPackages: ['util-linux'] },
      systemd: {
        timers: {
          fstrim: {
            overrideStrategy: 'asDropin',
            wantedBy: ['timers.target'],
            timerConfig: {
              // A drop-in adds to the packaged `OnCalendar=weekly`: the empty entry clears it first.
              OnCalendar: ['', cfg.interval],
            },
          },
        },
      },
    }),
  };
};
