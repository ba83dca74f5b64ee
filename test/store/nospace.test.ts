/**
 * A full file system under the store: a short message naming what was being written, exit code 1
 * (a CairnError), and nothing half-written. The store lives on a tiny tmpfs; without the right to
 * mount one (not root, no user namespace) the tests are skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnError } from '../../src/errors.js';
import { Store, verifyStore } from '../../src/store/index.js';
import { unpackDeb } from '../../src/debian/deb.js';
import { debCachePath, sha256File } from '../../src/debian/cache.js';

let work: string;
let mnt: string;
let mounted = false;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cairn-nospace-'));
  mnt = join(work, 'mnt');
  mkdirSync(mnt);
  mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' }).status === 0;
});

afterAll(() => {
  if (mounted) spawnSync('umount', [mnt]);
  rmSync(work, { recursive: true, force: true });
});

/** Store-internal names a failed write could leave: build and trash folders, metadata temp files. */
function leftovers(store: Store): string[] {
  return [...readdirSync(store.dir).filter((e) => e.startsWith('.')), ...readdirSync(store.infoDir).filter((e) => !e.endsWith('.json'))];
}

describe('a full file system under the store', () => {
  it('writing a store path: "no space left on device while writing" the path, nothing of it kept', async (ctx) => {
    if (!mounted) ctx.skip();
    const store = Store.open(join(mnt, 'home-a'));
    const small = await store.addText('small', 'fits\n');
    const err = await store.addText('big-etc', 'x'.repeat(2 * 1024 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect((err as CairnError).exitCode).toBe(1);
    expect((err as Error).message).toMatch(/^no space left on device while writing \/cairn\/store\/[0-9a-z]{32}-big-etc \(into .*\); nothing of it was kept$/);
    expect(leftovers(store)).toEqual([]);
    expect(store.validPaths()).toEqual([small]);
    expect(await verifyStore(store)).toEqual([]);
    rmSync(store.home, { recursive: true, force: true });
  });

  it('unpacking a .deb: a short message, not tar\'s complaint about every file', async (ctx) => {
    if (!mounted) ctx.skip();
    // A package of 300 files of 16 KiB (4.7 MiB) against a 1 MiB file system.
    const pkg = join(work, 'pkg');
    mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
    mkdirSync(join(pkg, 'usr/share/filler'), { recursive: true });
    writeFileSync(join(pkg, 'DEBIAN/control'), 'Package: filler\nVersion: 1.0\nArchitecture: all\nMaintainer: none <none@example.org>\nDescription: fills disks\n');
    for (let i = 0; i < 300; i++) writeFileSync(join(pkg, 'usr/share/filler', `f${i}`), String(i).repeat(16384).slice(0, 16384));
    const built = join(work, 'filler.deb');
    execFileSync('dpkg-deb', ['--build', '-Zgzip', pkg, built], { stdio: 'ignore' });
    const sha256 = await sha256File(built);
    const cache = join(work, 'cache');
    mkdirSync(cache);
    const cached = debCachePath(sha256, cache);
    mkdirSync(join(cached, '..'), { recursive: true });
    execFileSync('cp', [built, cached]);
    const out = join(mnt, 'unpacked');
    const err = await unpackDeb(out, { package: 'filler', version: '1.0', architecture: 'all', sha256, filename: 'pool/f/filler.deb' }, cache).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect((err as Error).message).toBe(`no space left on device while unpacking ${cached} into ${mnt}`);
  });
});
