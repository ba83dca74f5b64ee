/**
 * Resuming .deb downloads from the `.part` file in the download cache (HTTP Range), against an
 * HTTP server on 127.0.0.1 started by the test that records what it was asked and what it sent,
 * and once against the real archive with a truncated copy of a real package.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchDebs, type DebDownload } from '../../src/debian/fetch.js';
import { debCachePath, sha256File } from '../../src/debian/cache.js';
import { lockPackages } from '../../src/debian/index.js';

const SHARED_CACHE = join(tmpdir(), 'cairn-test-debian-cache');
process.env.CAIRN_DEBIAN_CACHE = SHARED_CACHE;

const FILE = 'pool/main/t/testpkg/testpkg_1.0-1_amd64.deb';
const body = randomBytes(300_000);
const sha256 = createHash('sha256').update(body).digest('hex');

interface Served {
  range: string | undefined;
  status: number;
  bytes: number;
}

/** How the server answers; reset before each test. */
const behaviour = { honourRange: true, dropFirstAfter: 0 };
let served: Served[] = [];
let server: Server;
let uri: string;
let work: string;
let cache: string;

const item = (): DebDownload => ({ name: 'testpkg', version: '1.0-1', filename: FILE, sha256, size: body.length, uri });
const part = (): string => `${debCachePath(sha256, cache)}.part`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cairn-fetch-test-'));
  server = createServer((req, res) => {
    if (req.url !== `/${FILE}`) {
      res.writeHead(404).end();
      return;
    }
    const range = req.headers.range;
    const m = range && behaviour.honourRange ? /^bytes=(\d+)-$/.exec(range) : null;
    const from = m ? Number(m[1]) : 0;
    if (from >= body.length) {
      served.push({ range, status: 416, bytes: 0 });
      res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
      return;
    }
    const chunk = body.subarray(from);
    const status = m ? 206 : 200;
    res.writeHead(status, { 'Content-Length': chunk.length, ...(m ? { 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` } : {}) });
    if (behaviour.dropFirstAfter > 0 && served.length === 0) {
      // The connection breaks part-way through the first response.
      served.push({ range, status, bytes: behaviour.dropFirstAfter });
      res.write(chunk.subarray(0, behaviour.dropFirstAfter), () => res.destroy());
      return;
    }
    served.push({ range, status, bytes: chunk.length });
    res.end(chunk);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((ok) => server.close(ok));
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  behaviour.honourRange = true;
  behaviour.dropFirstAfter = 0;
  served = [];
  cache = mkdtempSync(join(work, 'cache-'));
  mkdirSync(join(cache, 'debs'));
});

describe('resuming a download from its .part file', () => {
  it('asks only for the missing bytes and verifies the whole file', async () => {
    writeFileSync(part(), body.subarray(0, 120_000));
    const got = await fetchDebs([item()], { cacheDir: cache });
    expect(served).toEqual([{ range: 'bytes=120000-', status: 206, bytes: body.length - 120_000 }]);
    expect(got.get(sha256)).toBe(debCachePath(sha256, cache));
    expect(await sha256File(debCachePath(sha256, cache))).toBe(sha256);
    expect(existsSync(part())).toBe(false);
  });

  it('continues after the connection breaks part-way, from what reached the disk', async () => {
    behaviour.dropFirstAfter = 100_000;
    await fetchDebs([item()], { cacheDir: cache });
    expect(served).toHaveLength(2);
    expect(served[0]).toMatchObject({ range: undefined, status: 200 });
    // Whatever of the first response was written is kept; the retry asks for the rest only.
    const kept = Number(/^bytes=(\d+)-$/.exec(served[1]!.range ?? '')?.[1]);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(100_000);
    expect(served[1]).toEqual({ range: `bytes=${kept}-`, status: 206, bytes: body.length - kept });
    expect(readFileSync(debCachePath(sha256, cache)).equals(body)).toBe(true);
  });

  it('starts over when the server ignores the range and sends the whole file', async () => {
    behaviour.honourRange = false;
    writeFileSync(part(), body.subarray(0, 50_000));
    await fetchDebs([item()], { cacheDir: cache });
    expect(served).toEqual([{ range: 'bytes=50000-', status: 200, bytes: body.length }]);
    expect(await sha256File(debCachePath(sha256, cache))).toBe(sha256);
  });

  it('discards a .part longer than the file and downloads it whole', async () => {
    writeFileSync(part(), Buffer.concat([body, Buffer.from('trailing junk')]));
    await fetchDebs([item()], { cacheDir: cache });
    expect(served).toEqual([{ range: undefined, status: 200, bytes: body.length }]);
    expect(await sha256File(debCachePath(sha256, cache))).toBe(sha256);
  });

  it('refuses a resumed file whose kept part was wrong, and removes it', async () => {
    const bad = Buffer.from(body.subarray(0, 120_000));
    bad[1000] ^= 0xff;
    writeFileSync(part(), bad);
    await expect(fetchDebs([item()], { cacheDir: cache })).rejects.toThrow(/does not match the signed index.*refusing/);
    expect(served).toEqual([{ range: 'bytes=120000-', status: 206, bytes: body.length - 120_000 }]);
    expect(existsSync(part())).toBe(false);
    expect(existsSync(debCachePath(sha256, cache))).toBe(false);
  });
});

describe('resuming against the real archive', () => {
  it('completes a truncated copy of a real package to the SHA-256 of the signed index', async () => {
    mkdirSync(SHARED_CACHE, { recursive: true });
    const { lock, repositories } = await lockPackages({ packages: ['hello'] });
    const p = lock.packages.find((x) => x.name === 'hello')!;
    const repoUri = repositories.find((r) => r.suite === p.suite)!.uri;
    const d: DebDownload = { name: p.name, version: p.version, filename: p.filename, sha256: p.sha256, size: p.size, uri: repoUri };
    // The shared cache holds the whole file (downloaded now if needed); its first half becomes the .part.
    await fetchDebs([d], { cacheDir: SHARED_CACHE });
    const partial = `${debCachePath(p.sha256, cache)}.part`;
    copyFileSync(debCachePath(p.sha256, SHARED_CACHE), partial);
    truncateSync(partial, Math.floor(p.size / 2));
    await fetchDebs([d], { cacheDir: cache });
    expect(await sha256File(debCachePath(p.sha256, cache))).toBe(p.sha256);
    expect(existsSync(partial)).toBe(false);
  }, 120_000);
});
