import type { Config, ModuleArgs } from '../config.js';

type User = Config['users']['users'][string];

/** `users.users` and `users.groups`: accounts, declared; activation creates them with stable ids. */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const user = types.submodule(({ name, config: u }: ModuleArgs<User>) => ({
    options: {
      name: mkOption({ type: types.accountName, default: name, description: 'The login name (the attribute name by default).' }),
      uid: mkOption({ type: types.nullOr(types.ints.between(0, 4294967294)), default: null, description: 'The user id; allocated and kept stable across generations when null.' }),
      isNormalUser: mkOption({ type: types.bool, default: false, description: 'A person: uid from 1000, a home in /home, a login shell.' }),
      isSystemUser: mkOption({ type: types.bool, default: false, description: 'A service account: uid below 1000, no login.' }),
      description: mkOption({ type: types.strMatching('[^:\\x00-\\x1f\\x7f]*'), default: '', description: 'The GECOS field (full name); no colon, which /etc/passwd cannot hold.' }),
      group: mkOption({ type: types.either(types.accountName, types.enum([''])), default: '', description: 'The primary group; for normal users `users` when empty.' }),
      extraGroups: mkOption({ type: types.listOf(types.accountName), default: [], description: 'Supplementary groups.' }),
      home: mkOption({
        type: types.path,
        get default() {
          return name === 'root' ? '/root' : u.isNormalUser ? `/home/${name}` : '/var/empty';
        },
        defaultText: '/home/<name> for normal users, /root for root, /var/empty otherwise',
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
          return u.isNormalUser || name === 'root' ? config.users.defaultUserShell : '/usr/sbin/nologin';
        },
        defaultText: '`users.defaultUserShell` for normal users and root, /usr/sbin/nologin otherwise',
        example: '/bin/zsh',
        description: 'The login shell: a path on the system (`/bin/zsh` with `programs.zsh.enable`).',
      }),
      hashedPassword: mkOption({
        type: types.nullOr(types.strMatching('[^:\\x00-\\x1f\\x7f]*')),
        default: null,
        description:
          'A crypt(3) hash of the password (`mkpasswd -m yescrypt`), set at every activation; `!` locks the password. It ends up in the ' +
          'world-readable store: prefer `hashedPasswordFile`.',
      }),
      hashedPasswordFile: mkOption({
        type: types.nullOr(types.path),
        default: null,
        description: 'A file outside the store holding the password hash, read when the system is activated (it never enters the store).',
      }),
      password: mkOption({
        type: types.nullOr(types.singleLineStr),
        default: null,
        description:
          'The password in plain text, set at every activation. It is hashed (SHA-512 crypt) when the system is built, but the plain ' +
          'text stays in the configuration and the hash is in the world-readable store: prefer `hashedPasswordFile`.',
      }),
      initialHashedPassword: mkOption({
        type: types.nullOr(types.strMatching('[^:\\x00-\\x1f\\x7f]*')),
        default: null,
        description:
          'A crypt(3) hash of the password the account gets when it is made. With `users.mutableUsers`, it is used only then (the user ' +
          'may change it later); without, whenever none of the other password options is set.',
      }),
      initialPassword: mkOption({
        type: types.nullOr(types.singleLineStr),
        default: null,
        description:
          'As `initialHashedPassword`, in plain text (hashed when the system is built; the plain text stays in the configuration). ' +
          'Meant for a first login, after which the user changes it with `passwd`.',
      }),
    },
  }));
  const group = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      name: mkOption({ type: types.accountName, default: name, description: 'The group name (the attribute name by default).' }),
      gid: mkOption({ type: types.nullOr(types.ints.between(0, 4294967294)), default: null, description: 'The group id; allocated and kept stable when null.' }),
      members: mkOption({ type: types.listOf(types.accountName), default: [], description: 'Users in the group besides those naming it in extraGroups.' }),
    },
  }));
  return {
    options: {
      users: {
        users: mkOption({ type: types.attrsNamed(types.accountName, user), default: {}, example: { alice: { isNormalUser: true, extraGroups: ['wheel'] } }, description: 'User accounts.' }),
        groups: mkOption({ type: types.attrsNamed(types.accountName, group), default: {}, description: 'Groups.' }),
        defaultUserShell: mkOption({
          type: types.path,
          default: '/bin/bash',
          example: '/bin/zsh',
          description: 'The login shell of normal users and root unless `users.users.<name>.shell` says otherwise.',
        }),
        mutableUsers: mkOption({
          type: types.bool,
          default: true,
          description:
            'Whether accounts not declared here may exist (made with useradd, passwd). When false, activation removes users and groups ' +
            'that are neither declared, nor in base-passwd, nor in a package\'s sysusers.d, and resets passwords to the declared ones.',
        }),
      },
    },
    config: {
      get assertions() {
        return Object.entries(config.users.users).flatMap(([name, u]) => [
          {
            // root comes from base-passwd; declaring it only sets its password.
            assertion: name === 'root' || u.isNormalUser !== u.isSystemUser,
            message: `users.users.${name}: exactly one of isNormalUser and isSystemUser must be true.`,
          },
        ]);
      },
      get warnings() {
        return Object.entries(config.users.users).flatMap(([name, u]) => {
          const set = (['hashedPassword', 'hashedPasswordFile', 'password', 'initialHashedPassword', 'initialPassword'] as const).filter((o) => u[o] !== null);
          return [
            ...(set.length > 1
              ? [
                  `users.users.${name} has more than one of ${set.join(', ')} set: hashedPasswordFile wins over hashedPassword, over password, ` +
                    'over initialHashedPassword, over initialPassword.',
                ]
              : []),
            ...(['password', 'initialPassword'] as const)
              .filter((o) => u[o] !== null)
              .map((o) => `users.users.${name}.${o} is a plain-text password: it is readable in the configuration, and its hash in the world-readable store. Prefer users.users.${name}.hashedPasswordFile.`),
          ];
        });
      },
    },
  };
};
