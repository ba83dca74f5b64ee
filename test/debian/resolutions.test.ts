/**
 * Resolutions kept in the Debian cache (src/debian/resolutions.ts), against the local signed
 * fixture archive: a request resolved before against the same Release gives the same lock
 * without reading the indices; a new request, or a damaged entry, resolves again.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockPackages } from '../../src/debian/index.js';
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

/** Whether the archive was asked for a Packages index since `from` (an index into its request log). */
const readIndices = (from: number): boolean => archive.requests.slice(from).some((p) => /Packages|by-hash/.test(p));

describe('resolutions kept in the cache', () => {
  it('resolves a request seen before against the same Release without the indices; a new request or a damaged entry resolves again', async () => {
    const cacheDir = join(work, 'cache');
    const repositories = [archive.repo('fixture')];
    const request = { packages: ['sed', 'hostname'], repositories };
    const first = await lockPackages(request, { lockPath: join(work, 'a.lock'), cacheDir });
    expect(first.lock.packages.map((p) => `${p.name} ${p.version}`)).toEqual(['hostname 3.23+nmu1', 'sed 4.9-1']);

    // Another configuration (no lock of its own) with the same packages, in another order: the
    // indices are gone from the cache and the archive is not asked for them.
    rmSync(join(cacheDir, 'indices'), { recursive: true, force: true });
    let mark = archive.requests.length;
    const second = await lockPackages({ ...request, packages: ['hostname', 'sed', 'sed'] }, { lockPath: join(work, 'b.lock'), cacheDir });
    expect(readIndices(mark)).toBe(false);
    expect(archive.requests.slice(mark)).toContain('/dists/fixture/InRelease');
    expect(second.lock).toEqual(first.lock);

    // Another request needs the indices.
    mark = archive.requests.length;
    const other = await lockPackages({ ...request, packages: ['hostname'] }, { lockPath: join(work, 'c.lock'), cacheDir });
    expect(readIndices(mark)).toBe(true);
    expect(other.lock.packages.map((p) => p.name)).toEqual(['hostname']);

    // A damaged entry is resolved again and replaced.
    const dir = join(cacheDir, 'resolutions');
    expect(readdirSync(dir)).toHaveLength(2);
    for (const f of readdirSync(dir)) writeFileSync(join(dir, f), '{"version": 1, "packages": [');
    rmSync(join(cacheDir, 'indices'), { recursive: true, force: true });
    mark = archive.requests.length;
    const third = await lockPackages(request, { lockPath: join(work, 'd.lock'), cacheDir });
    expect(readIndices(mark)).toBe(true);
    expect(third.lock).toEqual(first.lock);
    mark = archive.requests.length;
    expect((await lockPackages(request, { lockPath: join(work, 'e.lock'), cacheDir })).lock).toEqual(first.lock);
    expect(readIndices(mark)).toBe(false);
  });
});
