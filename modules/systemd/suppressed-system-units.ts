import type { ModuleArgs } from '../config.js';

/**
 * Units Debian's systemd ships that a cairn system does not run, with why. They would each be a
 * process on the way to the first services (under emulation ~0.5 s apiece).
 */
const SUPPRESSED: Record<string, string> = {
  // The graceful first pass of the two tmpfiles runs over /dev exists for the users and groups
  // systemd-sysusers has yet to create. A cairn system's are all made by activation, before
  // systemd starts, so the strict pass (systemd-tmpfiles-setup-dev.service) does it all alone.
  'systemd-tmpfiles-setup-dev-early.service': 'users and groups exist before systemd starts: systemd-tmpfiles-setup-dev.service creates the static device nodes alone',
  // Loads udev rules passed in as system credentials (udev.rules.*): a cairn system's are declared.
  'systemd-udev-load-credentials.service': 'udev rules are declared (services.udev.extraRules), not passed in as system credentials',
};

/**
 * systemd-remount-fs remounts /, /usr and the kernel's file systems with the options fstab gives
 * them. Stage 1 mounts / with its own (the initrd's copy of the generation's fstab) and stage 2
 * makes it writable; /usr is a link. It is left out unless fstab names /usr or a kernel file
 * system (/proc, /sys, /dev, /run and below) that stage 1 or 2 mounted before systemd.
 */
const REMOUNT = 'systemd-remount-fs.service';
const API_PLACE = /^\/(usr|proc|sys|dev|run)(\/|$)/;

/** `systemd.suppressedSystemUnits`: upstream units left out of the system (masked in /etc/systemd/system). */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  return {
    options: {
      systemd: {
        suppressedSystemUnits: mkOption({
          type: types.listOf(types.unitName),
          default: [],
          example: ['systemd-backlight@.service'],
          description:
            'Units the packages ship that the system leaves out. NixOS builds its unit folder without them; ' +
            'Debian\'s packages put their units in /usr/lib/systemd/system, so cairn masks each here (a link to /dev/null in /etc/systemd/system): ' +
            'it never starts, and units that want it go on without it. Takes precedence over units declared under systemd.*. ' +
            `cairn itself suppresses ${Object.entries(SUPPRESSED).map(([u, why]) => `\`${u}\` (${why})`).join('; ')}; ` +
            `and \`${REMOUNT}\` unless fileSystems names /usr or a kernel file system (/proc, /sys, /dev, /run or below): stage 1 mounts / with its options and stage 2 makes it writable; ` +
            'to keep one, set the list with lib.mkForce.',
        }),
      },
    },
    config: {
      systemd: {
        get suppressedSystemUnits() {
          const remount = Object.values(config.fileSystems).some((fs) => API_PLACE.test(fs.mountPoint));
          return [...Object.keys(SUPPRESSED), ...(remount ? [] : [REMOUNT])];
        },
      },
      environment: {
        get etc() {
          return Object.fromEntries(config.systemd.suppressedSystemUnits.map((u) => [`systemd/system/${u}`, lib.mkForce({ symlink: '/dev/null' })]));
        },
      },
    },
  };
};
