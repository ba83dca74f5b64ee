/**
 * What cairn trusts, against the local signed fixture archive: a lock entry is checked against the
 * .deb's own control data, a Release must be for the suite asked for, and a cached Release is
 * verified again whenever it is used offline.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchRelease } from '../../src/debian/archive.js';
import { debStoreName } from '../../src/debian/deb.js';
import { lockPackages, readLock, realisePackages, serializeLock } from '../../src/debian/index.js';
import { removeTree, Store } from '../../src/store/index.js';
import { makeArchive, type FixtureArchive } from './fixture-archive.js';

let archive: FixtureArchive;
let work: string;
const savedCache = process.env.CAIRN_DEBIAN_CACHE;

beforeAll(async () => {
  archive = await makeArchive({
    fixture: [{ name: 'hostname', version: '3.23+nmu1' }, { name: 'sed', version: '4.9-1' }],
    other: [{ name: 'hostname', version: '3.25' }],
  });
  work = mkdtempSync(join(tmpdir(), 'cairn-trust-'));
  process.env.CAIRN_DEBIAN_CACHE = join(work, 'cache');
}, 60_000);

afterAll(async () => {
  process.env.CAIRN_DEBIAN_CACHE = savedCache;
  await archive?.close();
  if (work) removeTree(work);
});

const sha256 = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');

describe('a lock entry is checked against the .deb it names', () => {
  it("refuses a lock whose hostname entry has sed's SHA-256 and size; nothing of it enters the store", async () => {
    const dir = join(work, 'swap');
    mkdirSync(dir);
    const lockPath = join(dir, 'cairn.lock');
    const repositories = [archive.repo('fixture')];
    await lockPackages({ packages: ['hostname', 'sed'], repositories }, { lockPath });
    const lock = readLock(lockPath)!;
    const store = Store.open(join(dir, 'home'));
    // sed is genuine and in the cache: its hash verifies, only its identity is wrong.
    await realisePackages({ ...lock, packages: lock.packages.filter((p) => p.name === 'sed') }, repositories, store);
    const sed = lock.packages.find((p) => p.name === 'sed')!;
    writeFileSync(lockPath, serializeLock({ ...lock, packages: lock.packages.map((p) => (p.name === 'hostname' ? { ...p, sha256: sed.sha256, size: sed.size } : p)) }));
    const { lock: swapped, resolved } = await lockPackages({ packages: ['hostname', 'sed'], repositories }, { lockPath });
    expect(resolved).toBe(false);
    await expect(realisePackages(swapped, repositories, store)).rejects.toThrow(
      /locked for hostname 3\.23\+nmu1 .*is another package: Package is sed, the lock says hostname; Version is 4\.9-1, the lock says 3\.23\+nmu1; .*refusing to unpack it/,
    );
    expect(readdirSync(store.dir).filter((e) => e.includes(debStoreName('hostname', '3.23+nmu1')))).toEqual([]);
    expect(readdirSync(store.dir).filter((e) => e.startsWith('.'))).toEqual([]);
  });
});

describe('Release files', () => {
  it('refuses a validly signed Release of another suite and caches nothing from it', async () => {
    const cacheDir = join(work, 'cache-suite');
    const repo = archive.repo('fixture');
    const good = await fetchRelease(repo, { cacheDir });
    const before = readdirSync(join(cacheDir, 'releases')).sort();
    const pointers = readdirSync(join(cacheDir, 'dists')).map((f) => readFileSync(join(cacheDir, 'dists', f), 'utf8'));
    archive.substitute.set('/dists/fixture/InRelease', '/dists/other/InRelease');
    try {
      await expect(fetchRelease(repo, { cacheDir })).rejects.toThrow(/Release file of fixture .* is for suite other \/ other, not fixture: refusing it/);
      expect(readdirSync(join(cacheDir, 'releases')).sort()).toEqual(before);
      expect(readdirSync(join(cacheDir, 'dists')).map((f) => readFileSync(join(cacheDir, 'dists', f), 'utf8'))).toEqual(pointers);
      // Offline, the fallback is still the Release of the right suite.
      archive.substitute.set('/dists/fixture/InRelease', '/gone');
      expect((await fetchRelease(repo, { cacheDir })).sha256).toBe(good.sha256);
    } finally {
      archive.substitute.clear();
    }
  });

  it('refuses offline a cached Release rewritten consistently, with its signature kept or dropped', async () => {
    const cacheDir = join(work, 'cache-rewrite');
    const repo = archive.repo('fixture');
    const good = await fetchRelease(repo, { cacheDir });
    const [pointer] = readdirSync(join(cacheDir, 'dists'));
    const signed = archive.inRelease('fixture').toString('utf8');
    // An index of the attacker's choosing: the hash of Packages.gz replaced, the Date moved.
    const entry = good.files.get('main/binary-amd64/Packages.gz')!;
    const rewrite = (text: string): string => text.replace(entry.sha256, 'f'.repeat(64)).replace(/^Date: .*$/m, 'Date: Sat, 01 Jan 2000 00:00:00 UTC');
    const plain = rewrite(readFileSync(join(archive.root, 'dists', 'fixture', 'Release'), 'utf8'));
    archive.substitute.set('/dists/fixture/InRelease', '/gone');
    try {
      for (const [variant, content] of [['dropped', plain], ['kept', rewrite(signed)]] as const) {
        // Written under every name a cache entry could have, with the pointer naming it.
        const sha = sha256(plain);
        for (const name of [sha, `${sha}.InRelease`]) writeFileSync(join(cacheDir, 'releases', name), content);
        writeFileSync(join(cacheDir, 'dists', pointer!), sha + '\n');
        await expect(fetchRelease(repo, { cacheDir }), `signature ${variant}`).rejects.toThrow(/signature of the cached copy of the Release file of fixture .* does not verify.*refusing it/);
      }
    } finally {
      archive.substitute.clear();
    }
    expect(existsSync(join(cacheDir, 'indices', 'f'.repeat(64)))).toBe(false);
  });
});
