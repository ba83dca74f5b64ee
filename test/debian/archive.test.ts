/**
 * Against the real signed Debian archive the host's apt configuration points at: resolution
 * compared with apt itself, verification refusing tampered data, unpacking into a real store,
 * and a locked build working with the archive unreachable.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync, lstatSync, mkdirSync, copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { defaultRepositories, type Repository } from '../../src/debian/sources.js';
import { loadUniverse, type Universe } from '../../src/debian/packages.js';
import { resolve } from '../../src/debian/resolve.js';
import { download, fetchPackagesIndex, fetchRelease, verifyInRelease } from '../../src/debian/archive.js';
import { debCachePath } from '../../src/debian/cache.js';
import { fetchDebs } from '../../src/debian/fetch.js';
import { lockPackages, realisePackages, debDerivation } from '../../src/debian/index.js';
import { parseLock, serializeLock, readLock } from '../../src/debian/lock.js';
import { Store } from '../../src/store/index.js';
import { CairnError } from '../../src/errors.js';
import { aptOracle } from './apt-oracle.js';

/** Downloads are shared across test runs; verified files are keyed by hash, so sharing is safe. */
const CACHE = join(tmpdir(), 'cairn-test-debian-cache');
process.env.CAIRN_DEBIAN_CACHE = CACHE;

let repos: Repository[];
let universe: Universe;
let work: string;

beforeAll(async () => {
  mkdirSync(CACHE, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'cairn-debian-test-'));
  repos = defaultRepositories();
  universe = await loadUniverse(repos);
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('resolution equals apt-get --no-install-recommends', () => {
  let apt: Awaited<ReturnType<typeof aptOracle>>;
  beforeAll(async () => {
    // A fresh apt state each run, so apt sees the same archive state as cairn.
    apt = await aptOracle(join(work, 'apt'), repos);
  }, 180_000);

  const requests = [['systemd'], ['openssh-server'], ['nginx'], ['python3'], ['systemd', 'openssh-server', 'nginx', 'python3'], ['systemd', 'systemd-sysv', 'udev', 'kmod']];
  for (const req of requests) {
    it(`closure of ${req.join(' ')}`, async () => {
      const ours = new Map(resolve(universe, req).packages.map((p) => [p.name, p.version]));
      const theirs = await apt(req);
      expect(theirs.size).toBeGreaterThan(10);
      expect(Object.fromEntries([...ours].sort())).toEqual(Object.fromEntries([...theirs].sort()));
    }, 60_000);
  }

  it('follows Recommends only when asked, as apt does', async () => {
    const ours = new Map(resolve(universe, ['openssh-server'], { installRecommends: true }).packages.map((p) => [p.name, p.version]));
    const theirs = await apt(['openssh-server'], true);
    expect(Object.fromEntries([...ours].sort())).toEqual(Object.fromEntries([...theirs].sort()));
    expect(ours.size).toBeGreaterThan(resolve(universe, ['openssh-server']).packages.length);
  }, 60_000);
});

describe('resolution errors', () => {
  it('names an unknown package', () => {
    expect(() => resolve(universe, ['no-such-package-cairn'])).toThrow(/no-such-package-cairn is not in the configured repositories/);
  });

  it('refuses a virtual package with several providers, naming them', () => {
    expect(() => resolve(universe, ['mail-transport-agent'])).toThrow(/virtual.*exim4-daemon-light.*postfix/);
  });

  it('reports conflicts inside the requested set with the packages involved', () => {
    expect(() => resolve(universe, ['postfix', 'exim4-daemon-light'])).toThrow(CairnError);
    expect(() => resolve(universe, ['postfix', 'exim4-daemon-light'])).toThrow(/conflict|Conflicts|cannot satisfy/);
  });
});

describe('verification', () => {
  it('refuses an InRelease whose signed text was modified', async () => {
    const raw = Buffer.from(await download(`${repos[0]!.uri}/dists/${repos[0]!.suite}/InRelease`));
    const good = await verifyInRelease(raw, repos[0]!.keyring, 'InRelease');
    expect(good).toMatch(/^Origin: Debian/m);
    const tampered = Buffer.from(raw.toString('utf8').replace(/^Label: Debian$/m, 'Label: Debiam'));
    await expect(verifyInRelease(tampered, repos[0]!.keyring, 'the tampered InRelease')).rejects.toThrow(/signature of the tampered InRelease does not verify/);
  });

  it('refuses a Packages index whose hash does not match the signed Release, and caches nothing', async () => {
    const repo = repos.find((r) => r.suite === 'trixie-updates')!;
    const release = await fetchRelease(repo);
    const name = [...release.files.keys()].find((k) => k === 'main/binary-amd64/Packages.xz')!;
    const fake = '0'.repeat(64);
    const lying = { ...release, acquireByHash: false, files: new Map([[name, { ...release.files.get(name)!, sha256: fake }]]) };
    await expect(fetchPackagesIndex(repo, lying, 'main')).rejects.toThrow(/does not match|says 0{64}: refusing/);
    expect(existsSync(join(CACHE, 'indices', fake))).toBe(false);
  });

  it('refuses a corrupted .deb download and a damaged cache file; nothing enters the store', async () => {
    const cache = join(work, 'cache-corrupt');
    const p = universe.versions('kmod')[0]!;
    const uri = repos[p.repo]!.uri;
    // A complete but corrupted .part (one byte flipped) is checked, refused and removed.
    await fetchDebs([{ ...p, uri }], { cacheDir: CACHE });
    const good = readFileSync(debCachePath(p.sha256, CACHE));
    const bad = Buffer.from(good);
    bad[bad.length >> 1] ^= 0xff;
    mkdirSync(join(cache, 'debs'), { recursive: true });
    const part = `${debCachePath(p.sha256, cache)}.part`;
    writeFileSync(part, bad);
    await expect(fetchDebs([{ ...p, uri }], { cacheDir: cache })).rejects.toThrow(/does not match the signed index.*refusing/);
    expect(existsSync(part)).toBe(false);
    expect(existsSync(debCachePath(p.sha256, cache))).toBe(false);

    // A cache file damaged after download is caught by the deb builder, which re-verifies.
    const home = join(work, 'home-corrupt');
    const prev = process.env.CAIRN_DEBIAN_CACHE;
    process.env.CAIRN_DEBIAN_CACHE = cache;
    try {
      writeFileSync(debCachePath(p.sha256, cache), bad);
      const store = Store.open(home);
      const drv = debDerivation({ name: p.name, version: p.version, architecture: p.architecture, suite: p.suite, filename: p.filename, sha256: p.sha256, size: p.size });
      await expect(store.build(drv)).rejects.toThrow(/damaged or tampered.*refusing to unpack/);
      expect(store.isValid(store.outputPath(drv))).toBe(false);
      expect(readdirSync(join(home, 'store')).filter((n) => n.includes('kmod'))).toEqual([]);
      expect(existsSync(debCachePath(p.sha256, cache))).toBe(false);
    } finally {
      process.env.CAIRN_DEBIAN_CACHE = prev;
    }
  }, 120_000);
});

describe('lock, unpacking and offline builds', () => {
  it('locks, unpacks into the store with merged /usr, and rebuilds offline from the lock', async () => {
    const dir = join(work, 'config');
    mkdirSync(dir, { recursive: true });
    const lockPath = join(dir, 'cairn.lock');
    const request = { packages: ['systemd', 'sudo', 'base-files'] };
    const first = await lockPackages(request, { lockPath });
    expect(first.resolved).toBe(true);
    const text = readFileSync(lockPath, 'utf8');
    expect(text.endsWith('}\n')).toBe(true);
    expect(serializeLock(parseLock(text, lockPath))).toBe(text);
    expect(text).not.toMatch(/https?:/);
    const lock = readLock(lockPath)!;
    expect(lock.packages.map((p) => p.name)).toEqual([...lock.packages.map((p) => p.name)].sort());
    expect(lock.repositories.map((r) => r.suite)).toEqual(['trixie', 'trixie-updates', 'trixie-security']);

    const store = Store.open(join(work, 'home'));
    const built = await realisePackages(lock, first.repositories, store);
    const path = (name: string): string => store.toPhysical(built.find((p) => p.name === name)!.storePath);
    expect(existsSync(join(path('systemd'), 'usr/lib/systemd/systemd'))).toBe(true);
    expect(existsSync(join(path('systemd'), 'lib'))).toBe(false);
    // Debian 13's base-files ships the merged-/usr links (/bin -> usr/bin): every cairn root has them; dropped.
    for (const dir of ['bin', 'sbin', 'lib', 'lib64']) expect(existsSync(join(path('base-files'), dir))).toBe(false);
    expect(existsSync(join(path('base-files'), 'usr/lib/os-release'))).toBe(true);
    expect(lstatSync(join(path('libc6'), 'usr/lib64/ld-linux-x86-64.so.2')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(path('systemd'), '.cairn/deb/control'), 'utf8')).toMatch(/^Package: systemd$/m);
    const duties = JSON.parse(readFileSync(join(path('systemd'), '.cairn/deb/duties.json'), 'utf8'));
    expect(duties.users.map((u: { name: string }) => u.name)).toContain('systemd-network');
    const sudo = built.find((p) => p.name === 'sudo')!;
    expect(store.pathInfo(sudo.storePath).setuid).toEqual([{ path: 'usr/bin/sudo', mode: 0o4755 }]);

    // Offline: the archive address is unreachable; the lock and the caches are enough.
    const offline = first.repositories.map((r) => ({ ...r, uri: 'http://127.0.0.1:9/unreachable' }));
    const again = await lockPackages({ ...request, repositories: offline }, { lockPath });
    expect(again.resolved).toBe(false);
    const fresh = Store.open(join(work, 'home-offline'));
    const steps: [number, number, string][] = [];
    const rebuilt = await realisePackages(again.lock, again.repositories, fresh, { onProgress: (done, total, name) => steps.push([done, total, name]) });
    // Progress counts packages, each once: its unpacking and its split are one step.
    const names = again.lock.packages.map((p) => p.name);
    expect(steps.map(([, total]) => total)).toEqual(names.map(() => names.length));
    expect(steps.map(([done]) => done)).toEqual(names.map((_, i) => i + 1));
    expect(steps.map(([, , name]) => name).sort()).toEqual([...names].sort());
    expect(rebuilt.map((p) => p.storePath)).toEqual(built.map((p) => p.storePath));
    expect(rebuilt.every((p) => fresh.isValid(p.storePath))).toBe(true);

    // Resolving (not locked) needs the archive: that fails clearly rather than silently.
    rmSync(join(CACHE, 'dists'), { recursive: true, force: true });
    await expect(lockPackages({ packages: ['kmod'], repositories: offline }, { lockPath: join(dir, 'other.lock') })).rejects.toThrow(/cannot download http:\/\/127\.0\.0\.1:9/);
  }, 300_000);

  it('lock --update moves only the named packages and refuses unknown ones', async () => {
    const dir = join(work, 'update');
    mkdirSync(dir, { recursive: true });
    const lockPath = join(dir, 'cairn.lock');
    const { lock } = await lockPackages({ packages: ['kmod'] }, { lockPath });
    // Pretend the lock pinned a kmod version the archive no longer offers: updating kmod moves it back to the candidate.
    const edited = { ...lock, packages: lock.packages.map((p) => (p.name === 'kmod' ? { ...p, version: '0~old' } : p)) };
    writeFileSync(lockPath, serializeLock(edited));
    await expect(lockPackages({ packages: ['kmod'] }, { lockPath, update: ['not-locked'] })).rejects.toThrow(/cannot update not-locked/);
    const { lock: updated } = await lockPackages({ packages: ['kmod'] }, { lockPath, update: ['kmod'] });
    expect(updated.packages).toEqual(lock.packages);
    copyFileSync(lockPath, join(dir, 'copy.lock'));
  }, 120_000);
});
