/**
 * `cairn secrets edit` and `rekey` with the real age: files encrypted to the rules file's
 * recipients, the plaintext only in a private temporary file while the editor runs.
 */
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTree } from '../../src/store/index.js';

const CLI = resolve(import.meta.dirname, '../../bin/cairn.js');
const work = mkdtempSync(join(tmpdir(), 'cairn-secrets-cli-'));
afterAll(() => removeTree(work));
const hasAge = spawnSync('sh', ['-c', 'command -v age && command -v ssh-keygen'], { stdio: 'ignore' }).status === 0;

const repo = join(work, 'repo');
const home = join(work, 'home');

/** The CLI run in the repository as a user whose ~/.ssh/id_ed25519 is `admin`'s key. */
const cairn = (args: string[], env: Record<string, string> = {}, input?: string) =>
  execa('node', [CLI, 'secrets', ...args], { reject: false, cwd: repo, input: input ?? '', env: { HOME: home, EDITOR: '', ...env } });

function keyPair(name: string, file = join(work, name)): { key: string; pub: string } {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return { key: file, pub: readFileSync(`${file}.pub`, 'utf8').trim() };
}

/** The plaintext as the holder of `key` reads it, or null when it cannot. */
function decryptWith(key: string, file: string): string | null {
  const r = spawnSync('age', ['-d', '-i', key, file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

/** An editor that records what it was given (path, modes, contents), then writes `text`. */
function editor(name: string, text: string, exit = 0): string {
  const script = join(work, name);
  writeFileSync(
    script,
    `#!/bin/sh\nset -e\nprintf '%s\\n' "$1" "$(stat -c %a "$1")" "$(stat -c %a "$(dirname "$1")")" > ${join(work, `${name}.log`)}\ncat "$1" >> ${join(work, `${name}.log`)}\nprintf '%s' '${text}' > "$1"\nexit ${exit}\n`,
  );
  chmodSync(script, 0o755);
  return script;
}

describe.runIf(hasAge)('cairn secrets', () => {
  mkdirSync(join(repo, 'secrets'), { recursive: true });
  mkdirSync(join(home, '.ssh'), { recursive: true });
  const admin = keyPair('admin', join(home, '.ssh/id_ed25519'));
  const web1 = keyPair('web1');
  const web2 = keyPair('web2');
  const rules = (hosts: string[]) =>
    writeFileSync(join(repo, 'secrets.yaml'), `secrets/db.age: &admins\n  publicKeys: ["${admin.pub}"${hosts.map((h) => `, "${h}"`).join('')}]\nsecrets/api.age: *admins\n`);

  it('edit: a new file, written by $EDITOR, encrypted to every recipient of the rules file; the plaintext file is gone', async () => {
    writeFileSync(join(repo, 'secrets.yaml'), `secrets/db.age: { publicKeys: ["${admin.pub}", "${web1.pub}"] }\nsecrets/api.age: { publicKeys: ["${admin.pub}", "${web1.pub}"] }\n`);
    const r = await cairn(['edit', 'secrets/db.age'], { EDITOR: editor('ed1', 'first password') });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('encrypted secrets/db.age');
    const file = join(repo, 'secrets/db.age');
    expect(readFileSync(file, 'utf8')).not.toContain('first password');
    expect(decryptWith(admin.key, file)).toBe('first password');
    expect(decryptWith(web1.key, file)).toBe('first password');
    expect(decryptWith(web2.key, file)).toBe(null);
    const [path, mode, dirMode] = readFileSync(join(work, 'ed1.log'), 'utf8').split('\n');
    expect([mode, dirMode]).toEqual(['600', '700']);
    expect(existsSync(path!)).toBe(false);
  });

  it('edit: the editor gets the plaintext; an unchanged one is not encrypted again; a failed editor changes nothing', async () => {
    const file = join(repo, 'secrets/db.age');
    const before = readFileSync(file);
    const same = await cairn(['edit', 'secrets/db.age'], { EDITOR: editor('ed2', 'first password') });
    expect(same.exitCode, same.stderr).toBe(0);
    expect(same.stderr).toContain('is unchanged');
    expect(readFileSync(join(work, 'ed2.log'), 'utf8').split('\n').slice(3).join('\n')).toBe('first password');
    expect(readFileSync(file).equals(before)).toBe(true);

    const failed = await cairn(['edit', 'secrets/db.age'], { EDITOR: editor('ed3', 'half typed', 1) });
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toMatch(/the editor \(.*ed3\) exited with 1; .*db\.age was not changed/);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(existsSync(readFileSync(join(work, 'ed3.log'), 'utf8').split('\n')[0]!)).toBe(false);

    // Without $EDITOR and with stdin not a terminal, the plaintext comes from stdin (as agenix).
    const piped = await cairn(['edit', 'secrets/api.age'], {}, 'api token from a pipe');
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(decryptWith(web1.key, join(repo, 'secrets/api.age'))).toBe('api token from a pipe');
  });

  it('rekey: after a recipient is added (and one removed) every file is encrypted to the new set; --identity decrypts', async () => {
    rules([web2.pub]);
    const r = await cairn(['rekey']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`rekeyed ${join(repo, 'secrets/db.age')}`);
    expect(r.stderr).toContain(`rekeyed ${join(repo, 'secrets/api.age')}`);
    for (const f of ['secrets/db.age', 'secrets/api.age']) {
      expect(decryptWith(web2.key, join(repo, f))).not.toBe(null);
      expect(decryptWith(web1.key, join(repo, f))).toBe(null);
    }
    expect(decryptWith(web2.key, join(repo, 'secrets/db.age'))).toBe('first password');

    // One file, decrypted with a key given on the command line (not the user's own).
    rules([web1.pub]);
    const one = await cairn(['rekey', 'secrets/db.age', '-i', web2.key], { HOME: join(work, 'nobody') });
    expect(one.exitCode, one.stderr).toBe(0);
    expect(decryptWith(web1.key, join(repo, 'secrets/db.age'))).toBe('first password');
    expect(decryptWith(web1.key, join(repo, 'secrets/api.age'))).toBe(null);
  });

  it('refuses a file the rules do not name, an identity that cannot decrypt, and a broken rules file', async () => {
    const stray = await cairn(['edit', 'secrets/other.age'], { EDITOR: editor('ed4', 'x') });
    expect(stray.exitCode).toBe(1);
    expect(stray.stderr).toBe(`error: secrets/other.age is not in ${join(repo, 'secrets.yaml')}: add \`secrets/other.age: { publicKeys: [...] }\` with the keys that may decrypt it`);
    expect(existsSync(join(repo, 'secrets/other.age'))).toBe(false);

    const wrong = await cairn(['rekey', '-i', web2.key], { HOME: join(work, 'nobody') });
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stderr).toContain(`${join(repo, 'secrets/db.age')}: cannot decrypt with ${web2.key}: `);
    expect(decryptWith(web1.key, join(repo, 'secrets/db.age'))).toBe('first password');

    writeFileSync(join(repo, 'secrets.yaml'), 'secrets/db.age: { publicKeys: [] }\n');
    const bad = await cairn(['rekey']);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain(`${join(repo, 'secrets.yaml')}: "secrets/db.age": publicKeys must be a non-empty list`);
  });
});
