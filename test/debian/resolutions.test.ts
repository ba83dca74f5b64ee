/**
 * What the Debian cache keeps so that a build without a lock does not resolve from scratch
 * (src/debian/resolutions.ts, fetchPackagesIndex), against the local signed fixture archive:
 * indices decompressed once, checked against the Release's hash of the uncompressed file; and
 * resolutions, used again for the same request and Release only while every package they name is
 * in the signed indices.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockPackages } from '../../src/debian/index.js';
import { parseLock, serializeLock } from '../../src/debian/lock.js';
import { removeTree } from '../../src/store/index.js';
import { makeArchive, type FixtureArchive } from './fixture-archive.js';

let archive: FixtureArchive;
let work: string;

beforeAll(async () => {
  archive = await makeArchive({ fixture: [{ name: 'hostname', version: '3.23+nmu1' }, { name: 'sed', version: '4.9-1' }] });
  work = mkdtempSync(join(tmpdir(), 'cairn-resolutions-'));
}, 60_000);

afterAll(async () => {
  await archive?.close();
  if (work) removeTree(work);
});

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const names = (lock: { packages: { name: string; version: string }[] }) => lock.packages.map((p) => `${p.name} ${p.version}`);

describe('the Debian cache', () => {
  it('keeps an index decompressed, checked against the hash the Release signs for it', async () => {
    const cacheDir = join(work, 'cache-indices');
    const repositories = [archive.repo('fixture')];
    await lockPackages({ packages: ['hostname'], repositories }, { lockPath: join(work, 'i1.lock'), cacheDir });
    const dir = join(cacheDir, 'indices');
    const plain = readdirSync(dir).filter((f) => readFileSync(join(dir, f)).subarray(0, 8).toString() === 'Package:');
    expect(plain).toHaveLength(1);
    expect(sha256(readFileSync(join(dir, plain[0]!)))).toBe(plain[0]);
    // With only the decompressed text left and the archive's index gone, a new request still resolves.
    for (const f of readdirSync(dir)) if (f !== plain[0]) rmSync(join(dir, f));
    archive.substitute.set('/dists/fixture/main/binary-amd64/Packages.gz', '/gone');
    try {
      const other = await lockPackages({ packages: ['sed'], repositories }, { lockPath: join(work, 'i2.lock'), cacheDir });
      expect(names(other.lock)).toEqual(['sed 4.9-1']);
      // A changed copy is not used: the compressed index is needed, and gone.
      writeFileSync(join(dir, plain[0]!), readFileSync(join(dir, plain[0]!), 'utf8').replace('4.9-1', '4.9-2'));
      await expect(lockPackages({ packages: ['sed', 'hostname'], repositories }, { lockPath: join(work, 'i3.lock'), cacheDir })).rejects.toThrow(/cannot download/);
    } finally {
      archive.substitute.clear();
    }
  });

  it('gives a resolution again for the same request and Release while the signed indices list every package of it', async () => {
    const cacheDir = join(work, 'cache');
    const repositories = [archive.repo('fixture')];
    const request = { packages: ['sed', 'hostname'], repositories };
    const first = await lockPackages(request, { lockPath: join(work, 'a.lock'), cacheDir });
    expect(names(first.lock)).toEqual(['hostname 3.23+nmu1', 'sed 4.9-1']);
    const dir = join(cacheDir, 'resolutions');
    const [entry] = readdirSync(dir);
    const kept = parseLock(readFileSync(join(dir, entry!), 'utf8'), entry!);
    expect(kept).toEqual(first.lock);

    // The kept lock is what another configuration with these packages (in another order) gets:
    // marked here by a version the resolver would not choose (unpacking checks versions).
    const marked = { ...kept, packages: kept.packages.map((p) => (p.name === 'sed' ? { ...p, version: '4.9-1+kept' } : p)) };
    writeFileSync(join(dir, entry!), serializeLock(marked));
    const second = await lockPackages({ ...request, packages: ['hostname', 'sed', 'sed'] }, { lockPath: join(work, 'b.lock'), cacheDir });
    expect(names(second.lock)).toEqual(['hostname 3.23+nmu1', 'sed 4.9-1+kept']);

    // A kept lock naming a package the indices do not list is resolved again and replaced.
    writeFileSync(join(dir, entry!), serializeLock({ ...kept, packages: kept.packages.map((p) => (p.name === 'sed' ? { ...p, sha256: '0'.repeat(64) } : p)) }));
    expect((await lockPackages(request, { lockPath: join(work, 'c.lock'), cacheDir })).lock).toEqual(first.lock);
    expect(parseLock(readFileSync(join(dir, entry!), 'utf8'), entry!)).toEqual(first.lock);

    // So is a damaged one; another request gets an entry of its own.
    writeFileSync(join(dir, entry!), '{"version": 1, "packages": [');
    expect((await lockPackages(request, { lockPath: join(work, 'd.lock'), cacheDir })).lock).toEqual(first.lock);
    const other = await lockPackages({ ...request, packages: ['hostname'] }, { lockPath: join(work, 'e.lock'), cacheDir });
    expect(names(other.lock)).toEqual(['hostname 3.23+nmu1']);
    expect(readdirSync(dir)).toHaveLength(2);
    expect(existsSync(join(dir, entry!))).toBe(true);
  });
});
