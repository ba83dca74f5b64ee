import type { ModuleArgs } from '../../src/lib/index.js';

/** `systemd.services.<name>`: service units, with NixOS's shape. */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const unitValue = types.oneOf([types.bool, types.int, types.str, types.listOf(types.oneOf([types.bool, types.int, types.str]))]);
  const service = types.submodule({
    options: {
      description: mkOption({ type: types.str, default: '', description: 'The unit description (`Description=`).' }),
      wantedBy: mkOption({ type: types.listOf(types.str), default: [], example: ['multi-user.target'], description: 'Units that want this one (enabled through `.wants` links).' }),
      after: mkOption({ type: types.listOf(types.str), default: [], description: 'Units this one starts after (`After=`).' }),
      requires: mkOption({ type: types.listOf(types.str), default: [], description: 'Units this one needs (`Requires=`).' }),
      environment: mkOption({ type: types.attrsOf(types.nullOr(types.str)), default: {}, description: 'Environment variables of the service; null removes one.' }),
      serviceConfig: mkOption({ type: types.attrsOf(unitValue), default: {}, example: { Type: 'simple', Restart: 'always' }, description: 'Entries of the `[Service]` section.' }),
      script: mkOption({ type: types.lines, default: '', description: 'Shell commands the service runs (becomes `ExecStart=`).' }),
    },
  });
  return {
    options: {
      systemd: {
        services: mkOption({ type: types.attrsOf(service), default: {}, description: 'systemd services, by unit name without `.service`.' }),
      },
    },
  };
};
