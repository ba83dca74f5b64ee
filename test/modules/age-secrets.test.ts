/**
 * `age.secrets` (and `secrets`): the options as agenix users write them, what the build gets
 * (only ciphertext, restart triggers), and the activation snippets run against a folder with the
 * real `age`: decryption into a new generation, owners and modes, and failures that change nothing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evalConfigFile, evalSystem } from '../../src/eval/index.js';
import { scriptText } from '../../src/build/activate.js';
import { removeTree } from '../../src/store/index.js';
import { etcText, hasCommand, tempDir } from './helpers.js';

const work = tempDir('age-secrets');
afterAll(() => removeTree(work));
const hasAge = hasCommand('age') && hasCommand('ssh-keygen');

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** An ssh ed25519 key pair in DIR/NAME (the machine's host key, as age reads it). */
function keyPair(name: string): { key: string; pub: string } {
  const key = join(work, name);
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key]);
  return { key, pub: readFileSync(`${key}.pub`, 'utf8').trim() };
}

function encrypt(file: string, plaintext: string, ...recipients: string[]): void {
  run('age', ['-e', ...recipients.flatMap((r) => ['-r', r]), '-o', file], plaintext);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function evalYaml(name: string, text: string): Promise<any> {
  const file = join(work, name);
  writeFileSync(file, text);
  return (await evalConfigFile(file)).config;
}

async function failure(...modules: unknown[]): Promise<string> {
  try {
    await evalSystem(modules as never[]);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the configuration was accepted');
}

const CONFIG = `
networking: { hostName: vault }
services: { openssh: { enable: true } }
users: { users: { alice: { isNormalUser: true } } }
systemd:
  services:
    reader: { script: "exec sleep infinity", wantedBy: [multi-user.target] }
    bystander: { script: "exec sleep infinity", wantedBy: [multi-user.target] }
secrets:
  db:
    file: ./secrets/db.age
    owner: alice
    restartUnits: [reader.service]
age:
  secrets:
    api: { file: ./secrets/api.age, path: /var/lib/api/token, symlink: false, mode: "0440", group: users }
`;

describe.runIf(hasAge)('age.secrets', () => {
  const machine = keyPair('host-key');
  mkdirSync(join(work, 'secrets'));
  encrypt(join(work, 'secrets/db.age'), 'db-password-1\n', machine.pub);
  encrypt(join(work, 'secrets/api.age'), 'api-token\n', machine.pub);

  it("takes agenix's declarations (secrets.<name> too): files relative to the configuration, agenix's defaults", async () => {
    const c = await evalYaml('vault.yaml', CONFIG);
    expect(c.age.secrets.db).toEqual({
      name: 'db',
      file: join(work, 'secrets/db.age'),
      path: '/run/secrets/db',
      mode: '0400',
      owner: 'alice',
      group: 'users',
      symlink: true,
      restartUnits: ['reader.service'],
    });
    expect(c.age.secrets.api).toMatchObject({ path: '/var/lib/api/token', owner: '0', group: 'users', mode: '0440', symlink: false });
    // The ssh host keys sshd has, as agenix's default.
    expect(c.age.identityPaths).toEqual(['/etc/ssh/ssh_host_ed25519_key', '/etc/ssh/ssh_host_rsa_key']);
    expect(c.age.secretsDir).toBe('/run/secrets');
    expect(c.environment.systemPackages.map(String)).toContain('age');
    // Only the ciphertext goes to the store (through the generation's /etc).
    expect(c.environment.etc['cairn/age/db.age']).toMatchObject({ source: join(work, 'secrets/db.age') });
    expect(JSON.stringify(c.environment.etc)).not.toContain('db-password-1');
  });

  it('a changed encrypted file changes the units that use it (a switch restarts them), and only those', async () => {
    const unit = (c: unknown) => etcText(c, 'systemd/system/reader.service');
    const other = (c: unknown) => etcText(c, 'systemd/system/bystander.service');
    const before = await evalYaml('vault.yaml', CONFIG);
    expect(unit(before)).toMatch(/^X-Restart-Triggers=[0-9a-f]{16}$/m);
    const again = await evalYaml('vault.yaml', CONFIG);
    expect(unit(again)).toBe(unit(before));
    encrypt(join(work, 'secrets/db.age'), 'db-password-2\n', machine.pub);
    const after = await evalYaml('vault.yaml', CONFIG);
    expect(unit(after)).not.toBe(unit(before));
    expect(other(after)).toBe(other(before));
    encrypt(join(work, 'secrets/db.age'), 'db-password-1\n', machine.pub);
  });

  it.each([
    [{ age: { identityPaths: ['/cairn/store/abc-key'], secrets: { x: { file: join(work, 'secrets/db.age') } } } }, 'age.identityPaths: /cairn/store/abc-key is in the world-readable store'],
    [{ age: { identityPaths: ['/k'], secrets: { x: { file: join(work, 'secrets/db.age'), path: '/cairn/store/x' } } } }, 'age.secrets.x.path: /cairn/store/x is in the store'],
    [{ age: { secrets: { x: { file: join(work, 'secrets/db.age') } } } }, 'age.identityPaths must name the keys'],
    [{ age: { identityPaths: ['/k'], secrets: { x: { file: join(work, 'secrets/db.age') }, y: { file: join(work, 'secrets/api.age'), name: 'x' } } } }, 'age.secrets.y.name: x is also the name of age.secrets.x'],
    [{ age: { identityPaths: ['/k'], secrets: { x: { file: join(work, 'secrets/db.age'), restartUnits: ['nothing.service'] } } } }, 'age.secrets.x.restartUnits: nothing.service is not a service declared in systemd.services'],
    [{ age: { identityPaths: ['/k'], secrets: { 'a/b': { file: '/x.age' } } } }, 'a/b'],
  ])('refuses %j', async (config, message) => {
    expect(await failure(config)).toContain(message);
  });

  it('a missing encrypted file is named by its option', async () => {
    const yaml = CONFIG.replace('./secrets/db.age', './secrets/nowhere.age');
    await expect(evalYaml('missing.yaml', yaml)).rejects.toThrow(`age.secrets.db.file: cannot read ${join(work, 'secrets/nowhere.age')}: ENOENT`);
  });

  it('a relative file in a definition without a file is refused, naming the option', async () => {
    expect(await failure({ age: { identityPaths: ['/k'], secrets: { x: { file: 'x.age' } } } })).toContain("age.secrets.x.file' is a relative path");
  });

  describe('activation', () => {
    const root = join(work, 'root');
    const store = join(work, 'store');
    const etcStore = '/cairn/store/aaaa-etc';
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let config: any;

    /** Runs the generation's age snippets (lib.sh's helpers, as `activate` has them) on `root`. */
    const activate = (): { status: number; stderr: string } => {
      const snippets = config.system.activationScripts;
      const script = [
        'set -uo pipefail',
        `R=${root}`,
        `S=${store}`,
        `etcStore=${etcStore}`,
        scriptText('activate/lib.sh'),
        `snippet_install() {\n${snippets.agenix.text}\n}`,
        `snippet_chown() {\n${snippets['agenix-chown'].text}\n}`,
        'cairn_run_snippet agenix snippet_install',
        'cairn_run_snippet agenix-chown snippet_chown',
        'exit "${#cairn_failed[@]}"',
      ].join('\n');
      const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
      return { status: r.status ?? -1, stderr: r.stderr };
    };
    /** The ciphertext in the generation's /etc (as the etc builder puts it there). */
    const install = (plaintext: string, recipient = machine.pub) => {
      mkdirSync(join(store, 'aaaa-etc/etc/cairn/age'), { recursive: true });
      encrypt(join(store, 'aaaa-etc/etc/cairn/age/db.age'), plaintext, recipient);
      encrypt(join(store, 'aaaa-etc/etc/cairn/age/api.age'), 'api-token\n', recipient);
    };
    const secretsLink = join(root, 'run/secrets');
    const generations = () => readdirSync(join(root, 'run/secrets.d')).sort();

    it('decrypts every secret into a new generation, owned and moded as declared; the previous one goes', async () => {
      config = await evalYaml('activate.yaml', CONFIG.replace('age:\n  secrets:', 'age:\n  identityPaths: [/keys/host]\n  secrets:'));
      mkdirSync(join(root, 'keys'), { recursive: true });
      mkdirSync(join(root, 'etc'), { recursive: true });
      run('cp', [machine.key, join(root, 'keys/host')]);
      writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nalice:x:4242:100::/home/alice:/bin/bash\n');
      writeFileSync(join(root, 'etc/group'), 'root:x:0:\nusers:x:100:\n');
      install('db-password-1\n');
      const first = activate();
      expect(first, first.stderr).toMatchObject({ status: 0 });
      expect(readlinkSync(secretsLink)).toBe('/run/secrets.d/1');
      const db = join(root, 'run/secrets.d/1/db');
      expect(readFileSync(db, 'utf8')).toBe('db-password-1\n');
      expect(statSync(db)).toMatchObject({ mode: 0o100400, uid: 4242, gid: 100 });
      // symlink = false: a copy of its own at its path.
      const api = join(root, 'var/lib/api/token');
      expect(lstatSync(api).isSymbolicLink()).toBe(false);
      expect(readFileSync(api, 'utf8')).toBe('api-token\n');
      expect(statSync(api)).toMatchObject({ mode: 0o100440, uid: 0, gid: 100 });
      expect(statSync(join(root, 'run/secrets.d/1')).mode & 0o777).toBe(0o751);

      install('db-password-2\n');
      expect(activate().status).toBe(0);
      expect(readlinkSync(secretsLink)).toBe('/run/secrets.d/2');
      expect(generations()).toEqual(['2']);
      expect(readFileSync(join(root, 'run/secrets.d/2/db'), 'utf8')).toBe('db-password-2\n');
    });

    it('a missing identity is an error in the activation log, and the previous secrets stay', () => {
      run('mv', [join(root, 'keys/host'), join(root, 'keys/away')]);
      const r = activate();
      run('mv', [join(root, 'keys/away'), join(root, 'keys/host')]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('warning: age.identityPaths: /keys/host does not exist');
      expect(r.stderr).toContain("error: age.identityPaths: none of the keys exists ('/keys/host'); no secret was decrypted");
      expect(r.stderr).toContain("activation script snippet 'agenix' failed");
      expect(readlinkSync(secretsLink)).toBe('/run/secrets.d/2');
      expect(generations()).toEqual(['2']);
      expect(readFileSync(join(root, 'run/secrets.d/2/db'), 'utf8')).toBe('db-password-2\n');
    });

    it('a secret the identity cannot decrypt changes nothing: no new generation, no half-written file', () => {
      const stranger = keyPair('stranger');
      mkdirSync(join(store, 'aaaa-etc/etc/cairn/age'), { recursive: true });
      encrypt(join(store, 'aaaa-etc/etc/cairn/age/db.age'), 'db-password-3\n', machine.pub);
      encrypt(join(store, 'aaaa-etc/etc/cairn/age/api.age'), 'api-token-3\n', stranger.pub);
      const r = activate();
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/error: age\.secrets\.api: cannot decrypt age\.secrets\.api\.file with \/keys\/host: .*no identity matched/);
      expect(r.stderr).toContain('the secrets were not changed');
      expect(readlinkSync(secretsLink)).toBe('/run/secrets.d/2');
      expect(generations()).toEqual(['2']);
      expect(readFileSync(join(root, 'run/secrets.d/2/db'), 'utf8')).toBe('db-password-2\n');
      expect(readFileSync(join(root, 'var/lib/api/token'), 'utf8')).toBe('api-token\n');
      expect(readdirSync(join(root, 'var/lib/api'))).toEqual(['token']);
      expect(existsSync(join(root, 'run/secrets.d/3'))).toBe(false);
    });
  });
});
