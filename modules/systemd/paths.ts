import { unitKindModule } from './unit.js';

/** `systemd.paths.<name>`: path units, which start their service when a file appears or changes. */
export default unitKindModule(
  'path',
  { name: 'Path', option: 'pathConfig', description: 'Entries of the `[Path]` section (`PathExists`, `PathChanged`, `Unit`…, see systemd.path(5)).' },
  () => ({}),
  () => ({}),
);
