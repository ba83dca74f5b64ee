/**
 * `cairn lock` and `cairn packages` through the command line, against the real signed archive
 * with a tiny package set (hello and its closure). Downloads are shared with the other suites
 * through CAIRN_DEBIAN_CACHE; the store is a fresh one per run.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/index.js';

const root = resolve(import.meta.dirname, '../..');
const CACHE = join(tmpdir(), 'cairn-test-debian-cache');
let dir: string;
let home: string;
let config: string;

const cairn = (args: string[], cwd = root) =>
  execa('node', [join(root, 'bin/cairn.js'), ...args], { cwd, reject: false, env: { CAIRN_HOME: home, CAIRN_DEBIAN_CACHE: CACHE } });

interface Locked {
  name: string;
  version: string;
  sha256: string;
  filename: string;
}

beforeAll(() => {
  mkdirSync(CACHE, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'cairn-cli-packages-'));
  home = mkdtempSync(join(tmpdir(), 'cairn-cli-packages-home-'));
  config = join(dir, 'tiny.yaml');
  // !mkForce: only hello, not the packages cairn's modules add by default.
  writeFileSync(config, 'environment:\n  systemPackages: !mkForce [hello]\n');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

describe('cairn lock and cairn packages', () => {
  let locked: Locked[];

  it('cairn lock writes the lock beside the configuration, naming no host', async () => {
    const r = await cairn(['lock', 'tiny.yaml'], dir);
    expect(r.exitCode, r.stderr).toBe(0);
    const lockPath = join(dir, 'tiny.lock');
    expect(r.stderr).toContain(`wrote ${lockPath} (`);
    expect(existsSync(join(dir, 'tiny.yaml.lock'))).toBe(false);
    const text = readFileSync(lockPath, 'utf8');
    expect(text).not.toMatch(/http/i);
    const lock = JSON.parse(text);
    expect(lock.request).toEqual({ packages: ['hello'], installRecommends: false });
    locked = lock.packages;
    expect(locked.map((p) => p.name)).toEqual(expect.arrayContaining(['hello', 'libc6']));
    for (const p of locked) {
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(p.filename).toMatch(/^pool\/main\/.+\.deb$/);
    }
    // Nothing was unpacked: locking only resolves.
    expect(existsSync(join(home, 'store')) ? readdirSync(join(home, 'store')).filter((n) => n.includes('-hello-')) : []).toEqual([]);
  }, 180_000);

  it('cairn packages --json unpacks the locked closure and prints [{ name, version, sha256, storePath, outputs }]', async () => {
    const r = await cairn(['packages', config, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    // The lock was used as it is, not rewritten.
    expect(r.stderr).not.toContain('wrote');
    const out = JSON.parse(r.stdout) as { name: string; version: string; sha256: string; storePath: string; outputs: Record<string, string> }[];
    expect(out.map((p) => p.name)).toEqual(locked.map((p) => p.name));
    const store = Store.open(home);
    for (const [i, p] of out.entries()) {
      expect(Object.keys(p).sort()).toEqual(['name', 'outputs', 'sha256', 'storePath', 'version']);
      // The configuration asks for no documentation and, in C.UTF-8, no translations.
      expect(p.outputs).toEqual({});
      expect(p).toMatchObject({ name: locked[i]!.name, version: locked[i]!.version, sha256: locked[i]!.sha256 });
      expect(p.storePath).toMatch(/^\/cairn\/store\/[0-9a-z]{32}-[^/]+$/);
      expect(store.isValid(p.storePath), p.storePath).toBe(true);
      expect(existsSync(join(home, 'store', p.storePath.slice('/cairn/store/'.length)))).toBe(true);
    }
    const hello = out.find((p) => p.name === 'hello')!;
    expect(existsSync(join(store.toPhysical(hello.storePath), 'usr/bin/hello'))).toBe(true);
    // The main output: hello's manual page and translations are outputs of their own.
    expect(existsSync(join(store.toPhysical(hello.storePath), 'usr/share/man'))).toBe(false);
    expect(existsSync(join(store.toPhysical(hello.storePath), 'usr/share/doc/hello/copyright'))).toBe(true);
  }, 180_000);
});
