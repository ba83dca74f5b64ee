import type { ModuleArgs } from '../config.js';

/** `systemd.paths.<name>`: path units, which start their service when a file appears or changes. */
export default (args: ModuleArgs) => {
  const { lib } = args;
  const paths = lib.systemd.unitKind(
    args,
    'path',
    { name: 'Path', option: 'pathConfig', description: 'Entries of the `[Path]` section (`PathExists`, `PathChanged`, `Unit`…, see systemd.path(5)).' },
    () => ({}),
    () => ({}),
  );
  return {
    options: { systemd: { paths: lib.mkOption({ type: paths.type, default: {}, description: 'systemd path units, by unit name without `.path`.' }) } },
    config: paths.config,
  };
};
