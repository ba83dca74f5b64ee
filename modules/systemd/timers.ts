import { unitKindModule } from './unit.js';

/** `systemd.timers.<name>`: timer units, with NixOS's shape (`systemd.services.<name>.startAt` defines them too). */
export default unitKindModule(
  'timer',
  { name: 'Timer', option: 'timerConfig', description: 'Entries of the `[Timer]` section (`OnCalendar`, `OnBootSec`, `Persistent`…, see systemd.timer(5)).' },
  () => ({}),
  () => ({}),
);
