import { unitKindModule } from './unit.js';

/** `systemd.targets.<name>`: target units (groups of units to reach together). */
export default unitKindModule('target', null, () => ({}), () => ({}));
