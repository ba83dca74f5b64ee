/**
 * `cairn secrets`: age-encrypted files of a configuration's repository (agenix's CLI). Which keys
 * a file is encrypted to comes from a rules file beside the configuration, agenix's secrets.nix
 * as YAML or JSON: `{ "db-password.age": { publicKeys: ["ssh-ed25519 AAAA…", "age1…"] } }`, file
 * names relative to the rules file. The plaintext exists only in a private temporary file while
 * $EDITOR runs (in /dev/shm when there is one), or in memory.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parse as parseYamlText } from 'yaml';
import { CairnError } from '../errors.js';

export const RULES_FILES = ['secrets.yaml', 'secrets.yml', 'secrets.json'];

export interface Rule {
  /** The encrypted file, absolute. */
  file: string;
  /** As the rules file names it. */
  name: string;
  publicKeys: string[];
  /** ASCII armor (`age -a`), as agenix's `armor`. */
  armor: boolean;
}

export interface Rules {
  path: string;
  rules: Rule[];
}

/** The rules file: the one given, else the first of RULES_FILES in each of `dirs`. */
export function findRules(explicit: string | undefined, dirs: string[]): string {
  if (explicit) {
    if (!existsSync(explicit)) throw new CairnError(`--rules ${explicit}: no such file`);
    return resolve(explicit);
  }
  for (const d of dirs) {
    for (const f of RULES_FILES) if (existsSync(join(d, f))) return resolve(d, f);
  }
  throw new CairnError(
    `no rules file (${RULES_FILES.join(', ')}) in ${[...new Set(dirs)].join(' or ')}: write one that names each secret's recipients, e.g. ` +
      '`db-password.age: { publicKeys: ["ssh-ed25519 AAAA… root@web1"] }`, or give --rules FILE',
  );
}

/** Reads and checks a rules file. */
export function loadRules(path: string): Rules {
  let data: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    data = path.endsWith('.json') ? JSON.parse(text) : parseYamlText(text, { uniqueKeys: true });
  } catch (err) {
    throw new CairnError(`${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new CairnError(`${path}: expected a mapping of encrypted files to { publicKeys: [...] }`);
  const rules = Object.entries(data as Record<string, unknown>).map(([name, v]): Rule => {
    const where = `${path}: "${name}"`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CairnError(`${where}: expected { publicKeys: [...] }`);
    const { publicKeys, armor = false, ...rest } = v as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length) throw new CairnError(`${where}: unknown key ${unknown.map((k) => JSON.stringify(k)).join(', ')} (publicKeys and armor are known)`);
    if (!Array.isArray(publicKeys) || publicKeys.length === 0 || !publicKeys.every((k) => typeof k === 'string' && /^\S+( \S+)*$/.test(k.trim()))) {
      throw new CairnError(`${where}: publicKeys must be a non-empty list of public keys (age1…, ssh-ed25519 …, ssh-rsa …)`);
    }
    if (typeof armor !== 'boolean') throw new CairnError(`${where}: armor must be true or false`);
    return { file: resolve(dirname(path), name), name, publicKeys: publicKeys.map((k: string) => k.trim()), armor };
  });
  return { path, rules };
}

/** The rule of an encrypted file. */
export function ruleFor(rules: Rules, file: string): Rule {
  const abs = resolve(file);
  const rule = rules.rules.find((r) => r.file === abs);
  if (!rule) {
    throw new CairnError(`${file} is not in ${rules.path}: add \`${relative(dirname(rules.path), abs)}: { publicKeys: [...] }\` with the keys that may decrypt it`);
  }
  return rule;
}

/** The identities that decrypt: those given, else the user's ssh keys (as agenix). */
export function defaultIdentities(given: string[] | undefined): string[] {
  if (given && given.length) {
    for (const i of given) if (!existsSync(i)) throw new CairnError(`--identity ${i}: no such file`);
    return given;
  }
  return ['id_ed25519', 'id_rsa'].map((f) => join(homedir(), '.ssh', f)).filter((f) => existsSync(f));
}

function age(args: string[], input?: Buffer): Buffer {
  const r = spawnSync('age', args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw new CairnError(`cannot run age (install Debian's age package): ${r.error.message}`);
  if (r.status !== 0) throw new CairnError(r.stderr.toString().trim().replace(/^age: /, '') || `age exited with ${r.status}`);
  return r.stdout;
}

/** The plaintext of an encrypted file (in memory). */
export function decrypt(file: string, identities: string[]): Buffer {
  if (identities.length === 0) throw new CairnError(`${file}: no identity to decrypt it with (~/.ssh/id_ed25519 and ~/.ssh/id_rsa do not exist): give --identity KEY`);
  try {
    return age(['-d', ...identities.flatMap((i) => ['-i', i]), file]);
  } catch (err) {
    throw new CairnError(`${file}: cannot decrypt with ${identities.join(', ')}: ${(err as Error).message}`);
  }
}

/** Encrypts to the rule's recipients, replacing the file in one rename (never half-written). */
export function encrypt(rule: Rule, plaintext: Buffer): void {
  const tmp = join(dirname(rule.file), `.${rule.name.replace(/.*\//, '')}.cairn-tmp-${process.pid}`);
  try {
    let out: Buffer;
    try {
      out = age(['-e', ...(rule.armor ? ['-a'] : []), ...rule.publicKeys.flatMap((k) => ['-r', k])], plaintext);
    } catch (err) {
      throw new CairnError(`${rule.file}: cannot encrypt to the publicKeys of "${rule.name}" in its rules file: ${(err as Error).message}`);
    }
    writeFileSync(tmp, out, { mode: 0o644 });
    renameSync(tmp, rule.file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** A folder only this user reads, in memory where possible, for a plaintext while it is edited. */
function privateDir(): string {
  const base = existsSync('/dev/shm') && statSync('/dev/shm').isDirectory() ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'cairn-secret-'));
  chmodSync(dir, 0o700);
  return dir;
}

export interface EditOptions {
  rules: Rules;
  identities: string[];
  /** The editor command ($EDITOR), run by sh with the file as its argument; null reads stdin. */
  editor: string | null;
  /** Where the new plaintext comes from when `editor` is null. */
  stdin?: () => Buffer;
}

/** `cairn secrets edit`: decrypts (when the file exists), edits, encrypts again if it changed. */
export function editSecret(file: string, opts: EditOptions): 'written' | 'unchanged' {
  const rule = ruleFor(opts.rules, file);
  const old = existsSync(rule.file) ? decrypt(rule.file, opts.identities) : null;
  let next: Buffer;
  if (opts.editor === null) {
    next = (opts.stdin ?? (() => readFileSync(0)))();
  } else {
    const dir = privateDir();
    try {
      const plain = join(dir, rule.name.replace(/.*\//, '').replace(/\.age$/, '') || 'secret');
      writeFileSync(plain, old ?? Buffer.alloc(0), { mode: 0o600 });
      const r = spawnSync('sh', ['-c', `${opts.editor} "$1"`, 'sh', plain], { stdio: 'inherit' });
      if (r.error || r.status !== 0) throw new CairnError(`the editor (${opts.editor}) ${r.error ? `could not run: ${r.error.message}` : `exited with ${r.status ?? r.signal}`}; ${rule.file} was not changed`);
      next = readFileSync(plain);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (old !== null && old.equals(next)) return 'unchanged';
  if (old === null && next.length === 0) throw new CairnError(`${rule.file}: the new secret is empty; nothing was written`);
  encrypt(rule, next);
  return 'written';
}

/** `cairn secrets rekey`: every file (or those given) encrypted again to its current recipients. */
export function rekey(files: string[], rules: Rules, identities: string[]): string[] {
  const chosen = files.length ? files.map((f) => ruleFor(rules, f)) : rules.rules.filter((r) => existsSync(r.file));
  for (const r of chosen) if (!existsSync(r.file)) throw new CairnError(`${r.file}: no such file to rekey`);
  // Everything is decrypted before anything is written: a key that fails leaves all files as they were.
  const plain = chosen.map((r) => decrypt(r.file, identities));
  chosen.forEach((r, i) => encrypt(r, plain[i]!));
  return chosen.map((r) => r.file);
}
