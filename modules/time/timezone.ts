import type { ModuleArgs } from '../config.js';

/** `time.timeZone`: /etc/localtime, a link into tzdata's zone files (tzdata's postinst would make it). */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const cfg = config.time;
  return {
    options: {
      time: {
        timeZone: mkOption({
          // Zone names are paths below /usr/share/zoneinfo: no `..`, no leading slash.
          type: types.strMatching('[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*'),
          default: 'UTC',
          example: 'Europe/Paris',
          description: 'The time zone, as a tz database name.',
        }),
        hardwareClockInLocalTime: mkOption({
          type: types.bool,
          default: false,
          description: 'Whether the hardware (RTC) clock keeps local time rather than UTC, as Windows does on a machine it shares (/etc/adjtime says `LOCAL`).',
        }),
      },
    },
    config: {
      environment: {
        systemPackages: ['tzdata'],
        etc: {
          localtime: { symlink: `/usr/share/zoneinfo/${cfg.timeZone}` },
          timezone: { text: `${cfg.timeZone}\n` },
          // hwclock(8)'s and systemd-timedated's record of what the RTC keeps.
          adjtime: lib.mkIf(cfg.hardwareClockInLocalTime, { text: '0.0 0 0.0\n0\nLOCAL\n' }),
        },
      },
    },
  };
};
