import type { ModuleArgs } from '../config.js';

/** `systemd.timers.<name>`: timer units, with NixOS's shape (`systemd.services.<name>.startAt` defines them too). */
export default (args: ModuleArgs) => {
  const { lib } = args;
  const timers = lib.systemd.unitKind(
    args,
    'timer',
    { name: 'Timer', option: 'timerConfig', description: 'Entries of the `[Timer]` section (`OnCalendar`, `OnBootSec`, `Persistent`…, see systemd.timer(5)).' },
    () => ({}),
    () => ({}),
  );
  return {
    options: { systemd: { timers: lib.mkOption({ type: timers.type, default: {}, description: 'systemd timer units, by unit name without `.timer`.' }) } },
    config: timers.config,
  };
};
