import type { ModuleArgs } from '../config.js';

/** `systemd.targets.<name>`: target units (groups of units to reach together). */
export default (args: ModuleArgs) => {
  const { lib } = args;
  const targets = lib.systemd.unitKind(args, 'target', null, () => ({}), () => ({}));
  return {
    options: { systemd: { targets: lib.mkOption({ type: targets.type, default: {}, description: 'systemd target units, by unit name without `.target`.' }) } },
    config: targets.config,
  };
};
