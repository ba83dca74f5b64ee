import type { ModuleArgs } from '../../src/lib/index.js';

/** `users.users` and `users.groups`: accounts, declared; activation creates them with stable ids. */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const user = types.submodule(({ name, config: u }: ModuleArgs) => ({
    options: {
      name: mkOption({ type: types.strMatching('[a-z_][a-z0-9_-]*\\$?'), default: name, description: 'The login name (the attribute name by default).' }),
      uid: mkOption({ type: types.nullOr(types.ints.between(0, 4294967294)), default: null, description: 'The user id; allocated and kept stable across generations when null.' }),
      isNormalUser: mkOption({ type: types.bool, default: false, description: 'A person: uid from 1000, a home in /home, a login shell.' }),
      isSystemUser: mkOption({ type: types.bool, default: false, description: 'A service account: uid below 1000, no login.' }),
      description: mkOption({ type: types.str, default: '', description: 'The GECOS field (full name).' }),
      group: mkOption({ type: types.str, default: '', description: 'The primary group; for normal users `users` when empty.' }),
      extraGroups: mkOption({ type: types.listOf(types.str), default: [], description: 'Supplementary groups.' }),
      home: mkOption({
        type: types.path,
        get default() {
          return u.isNormalUser ? `/home/${name}` : '/var/empty';
        },
        defaultText: '/home/<name> for normal users, /var/empty otherwise',
        description: 'The home directory.',
      }),
      createHome: mkOption({
        type: types.bool,
        get default() {
          return u.isNormalUser;
        },
        description: 'Whether activation creates the home directory.',
      }),
      shell: mkOption({
        type: types.path,
        get default() {
          return u.isNormalUser ? '/bin/bash' : '/usr/sbin/nologin';
        },
        description: 'The login shell.',
      }),
      hashedPassword: mkOption({
        type: types.nullOr(types.strMatching('[^:\\n]*')),
        default: null,
        description: 'A crypt(3) hash of the password (`mkpasswd -m yescrypt`). It ends up in the world-readable store: prefer `hashedPasswordFile`.',
      }),
      hashedPasswordFile: mkOption({
        type: types.nullOr(types.path),
        default: null,
        description: 'A file outside the store holding the password hash, read when the system is activated.',
      }),
    },
  }));
  const group = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      name: mkOption({ type: types.strMatching('[a-z_][a-z0-9_-]*'), default: name, description: 'The group name (the attribute name by default).' }),
      gid: mkOption({ type: types.nullOr(types.ints.between(0, 4294967294)), default: null, description: 'The group id; allocated and kept stable when null.' }),
      members: mkOption({ type: types.listOf(types.str), default: [], description: 'Users in the group besides those naming it in extraGroups.' }),
    },
  }));
  return {
    options: {
      users: {
        users: mkOption({ type: types.attrsOf(user), default: {}, example: { alice: { isNormalUser: true, extraGroups: ['wheel'] } }, description: 'User accounts.' }),
        groups: mkOption({ type: types.attrsOf(group), default: {}, description: 'Groups.' }),
      },
    },
    config: {
      get assertions() {
        const users = config.users.users as Record<string, { isNormalUser: boolean; isSystemUser: boolean }>;
        return Object.entries(users).map(([name, u]) => ({
          assertion: u.isNormalUser !== u.isSystemUser,
          message: `users.users.${name}: exactly one of isNormalUser and isSystemUser must be true.`,
        }));
      },
    },
  };
};
