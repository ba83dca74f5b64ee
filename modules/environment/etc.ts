import type { ModuleArgs } from '../config.js';

/** `environment.etc.<name>`: files generated into /etc. */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  // A name or `+ID`: a field of activation's tab-separated list of copies.
  const owner = types.either(types.accountName, types.strMatching('\\+[0-9]+'));
  const file = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      enable: mkOption({ type: types.bool, default: true, description: 'Whether this file is generated.' }),
      target: mkOption({ type: types.etcPath, default: name, description: 'Path of the file below /etc (the attribute name by default).' }),
      text: mkOption({ type: types.nullOr(types.lines), default: null, description: 'The contents of the file.' }),
      source: mkOption({ type: types.nullOr(types.path), default: null, description: 'A file whose contents are used instead of `text`.' }),
      symlink: mkOption({
        type: types.nullOr(types.path),
        default: null,
        example: '/etc/systemd/system/sshd.service',
        description: 'Make /etc/<target> a symbolic link to this absolute path (on the running system) instead of a file: `.wants` links of systemd units, /etc/localtime, /etc/resolv.conf. `mode`, `user` and `group` do not apply.',
      }),
      mode: mkOption({
        type: types.strMatching('symlink|direct-symlink|0?[0-7]{3,4}'),
        default: 'symlink',
        description: '`symlink` links the file from the store; an octal mode (e.g. `0640`) makes a copy with that mode, owned by `user` and `group`.',
      }),
      user: mkOption({ type: owner, default: '+0', description: 'Owner of a copied file (a name, or `+UID`).' }),
      group: mkOption({ type: owner, default: '+0', description: 'Group of a copied file (a name, or `+GID`).' }),
    },
  }));
  return {
    options: {
      environment: {
        etc: mkOption({
          type: types.attrsNamed(types.etcPath, file),
          default: {},
          example: { 'issue': { text: 'Welcome\n' } },
          description: 'Files in /etc, by path below /etc.',
        }),
      },
    },
    config: {
      get assertions() {
        return Object.entries(config.environment.etc)
          .filter(([, f]) => f.enable)
          .map(([name, f]) => ({
            assertion: [f.text, f.source, f.symlink].filter((x) => x !== null).length === 1,
            message: `environment.etc."${name}" needs exactly one of \`text', \`source' and \`symlink'.`,
          }));
      },
    },
  };
};
