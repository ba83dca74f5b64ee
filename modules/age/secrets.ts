import type { Config, ModuleArgs } from '../config.js';

type Secret = Config['age']['secrets'][string];

/**
 * `age.secrets.<name>` (agenix's options; `secrets.<name>` is another name of it): files encrypted
 * with age in the user's repository, decrypted at activation (boot and every switch) with the
 * machine's identities into a fresh generation folder on an in-memory file system, which then
 * replaces the previous one by one link swap. Only the ciphertext enters the store.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.age;
  const storeDir = '/cairn/store/';
  const q = lib.shellQuote;

  const account = types.strMatching('[a-z_][a-z0-9_-]*\\$?|[0-9]+');
  const serviceUnit = types.strMatching('[A-Za-z0-9:_.\\\\-]+(@[A-Za-z0-9:_.\\\\-]*)?\\.service');

  const secret = types.submodule(({ name, config: s }: ModuleArgs<Secret>) => ({
    options: {
      name: mkOption({ type: types.fileName, default: name, description: 'The file name in `age.secretsDir` (the attribute name by default).' }),
      file: mkOption({
        type: types.sourcePath,
        example: './secrets/db-password.age',
        description:
          'The age-encrypted file, relative to the file that defines it. The ciphertext is copied into the store (as agenix does); the plaintext never is. ' +
          '`cairn secrets edit FILE` writes one for the recipients of `secrets.yaml`.',
      }),
      path: mkOption({
        type: types.path,
        get default() {
          return `${cfg.secretsDir}/${s.name}`;
        },
        defaultText: '${age.secretsDir}/${name}',
        description: 'Where the decrypted secret is found: with `symlink`, a link to the file in `age.secretsDir`; otherwise the file itself, written there.',
      }),
      mode: mkOption({
        type: types.strMatching('[0-7]{3,4}|([ugoa]*[-+=][rwxXst]*)(,[ugoa]*[-+=][rwxXst]*)*'),
        default: '0400',
        description: 'Permissions of the decrypted file, as chmod takes them.',
      }),
      owner: mkOption({ type: account, default: '0', description: 'The user owning the decrypted file (a name or a number).' }),
      group: mkOption({
        type: account,
        get default() {
          const u = config.users.users[s.owner];
          return u ? u.group || (u.isNormalUser ? 'users' : 'nogroup') : '0';
        },
        defaultText: "the owner's primary group (as users.users gives it), else 0",
        description: 'The group owning the decrypted file.',
      }),
      symlink: mkOption({ type: types.bool, default: true, description: 'Whether `path` (when not in `age.secretsDir`) is a link to the file there, rather than a decrypted copy of its own.' }),
      restartUnits: mkOption({
        type: types.listOf(serviceUnit),
        default: [],
        example: ['postgresql.service'],
        description:
          'Services (declared in `systemd.services`) restarted by a switch that changes this secret (its encrypted file): its digest becomes a restart trigger of each (sops-nix\'s name). ' +
          "agenix has no such option; NixOS's `restartTriggers = [ config.age.secrets.x.file ]` relies on the file being a store path, which cairn's evaluation cannot make.",
      }),
    },
  }));

  const secrets = (): [string, Secret][] => Object.entries(cfg.secrets).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const cipherEtc = (attr: string): string => `cairn/age/${attr}.age`;

  return {
    imports: [lib.mkAliasOptionModule(['secrets'], ['age', 'secrets'])],
    options: {
      age: {
        secrets: mkOption({
          type: types.attrsNamed(types.fileName, secret),
          default: {},
          example: { 'db-password': { file: './secrets/db-password.age', owner: 'postgres' } },
          description: 'Secrets, by name: decrypted at activation into `age.secretsDir`, never into the store.',
        }),
        identityPaths: mkOption({
          type: types.listOf(types.path),
          get default() {
            const ssh = config.services.openssh;
            return ssh.enable ? ssh.hostKeys.filter((k) => k.type === 'ed25519' || k.type === 'rsa').map((k) => k.path) : [];
          },
          defaultText: "the ed25519 and rsa keys of `services.openssh.hostKeys` when sshd is enabled, else none",
          description:
            'Private keys that decrypt the secrets (`age -d -i`): ssh-ed25519, ssh-rsa or age identity files on the machine, outside the store. ' +
            'A key must already be there when the secrets encrypted to it are activated: sshd makes a missing host key at activation, which nothing was encrypted to yet.',
        }),
        secretsDir: mkOption({
          type: types.path,
          default: '/run/secrets',
          description: "The folder of the decrypted secrets: a link to the current generation in `secretsMountPoint`. agenix's default is /run/agenix; cairn's is /run/secrets.",
        }),
        secretsMountPoint: mkOption({
          type: types.strMatching('/[^\\x00-\\x1f\\x7f]*[^/\\x00-\\x1f\\x7f]'),
          default: '/run/secrets.d',
          description: "Where the generations of decrypted secrets are made (a ramfs mounted there, mode 0751: in memory, never swapped out, gone at power-off), each in a numbered folder.",
        }),
      },
    },
    config: mkIf(() => Object.keys(cfg.secrets).length > 0, {
      environment: {
        // Debian's age decrypts (it reads ssh-ed25519 and ssh-rsa identities as they are).
        systemPackages: ['age'],
        get etc() {
          const files: Record<string, { source: string; mode: string }> = {};
          // The ciphertext is in the store, as agenix's `file`; activation reads it from the generation.
          for (const [attr, s] of secrets()) files[cipherEtc(attr)] = { source: s.file, mode: 'symlink' };
          return files;
        },
      },
      systemd: {
        get services() {
          const units: Record<string, { restartTriggers: string[] }> = {};
          for (const [attr, s] of secrets()) {
            for (const u of s.restartUnits) {
              const base = u.replace(/\.service$/, '');
              (units[base] ??= { restartTriggers: [] }).restartTriggers.push(`age:${attr}:${lib.hashFile(s.file, `age.secrets.${attr}.file`)}`);
            }
          }
          return units;
        },
      },
      system: {
        activationScripts: {
          // Before the accounts (a secret may be a hashedPasswordFile); owners are set after them.
          users: { deps: ['agenix'] },
          agenix: {
            deps: ['layout'],
            get text() {
              const calls = secrets().map(([attr, s]) => {
                const cipher = `$(phys "$etcStore")/etc/${cipherEtc(attr)}`;
                return `cairn_age_decrypt ${q(`age.secrets.${attr}`)} ${q(s.name)} "${cipher}" ${q(s.mode)} ${q(s.path)} ${s.symlink ? 1 : 0}`;
              });
              return lib.renderTemplate('age/secrets.install.sh', {
                mountPoint: q(cfg.secretsMountPoint),
                secretsDir: q(cfg.secretsDir),
                identities: cfg.identityPaths.map(q).join(' '),
                calls: calls.join('\n'),
              });
            },
          },
          'agenix-chown': {
            deps: ['users'],
            get text() {
              const lines = secrets().map(([attr, s]) => {
                const where = s.symlink || s.path === `${cfg.secretsDir}/${s.name}` ? `in ${q(s.name)}` : `at ${q(s.path)}`;
                return `cairn_age_chown ${q(`age.secrets.${attr}`)} ${q(s.owner)} ${q(s.group)} ${where} || cairn_age_rc=1`;
              });
              return lib.renderTemplate('age/secrets.chown.sh', { secretsDir: q(cfg.secretsDir), lines: lines.join('\n') });
            },
          },
        },
      },
      get assertions() {
        const out: { assertion: boolean; message: string }[] = [
          { assertion: cfg.identityPaths.length > 0, message: 'age.identityPaths must name the keys that decrypt age.secrets (by default the ssh host keys, with services.openssh.enable).' },
        ];
        for (const p of cfg.identityPaths) {
          out.push({ assertion: !p.startsWith(storeDir), message: `age.identityPaths: ${p} is in the world-readable store; a private key belongs in a file outside it.` });
        }
        const byName = new Map<string, string>();
        for (const [attr, s] of secrets()) {
          // The build copies the ciphertext: a missing file is named here, by its option.
          lib.hashFile(s.file, `age.secrets.${attr}.file`);
          const other = byName.get(s.name);
          out.push({ assertion: other === undefined, message: `age.secrets.${attr}.name: ${s.name} is also the name of age.secrets.${other}; each secret needs a file of its own.` });
          byName.set(s.name, attr);
          out.push({ assertion: !s.path.startsWith(storeDir), message: `age.secrets.${attr}.path: ${s.path} is in the store; a decrypted secret never goes there.` });
          for (const u of s.restartUnits) {
            const svc = config.systemd.services[u.replace(/\.service$/, '')];
            out.push({
              assertion: svc !== undefined && (svc.overrideStrategy === 'asDropin' || svc.script.trim() !== '' || (svc.serviceConfig.ExecStart ?? null) !== null),
              message: `age.secrets.${attr}.restartUnits: ${u} is not a service declared in systemd.services.`,
            });
          }
        }
        return out;
      },
    }),
  };
};
