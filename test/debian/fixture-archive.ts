/**
 * A small signed Debian archive built by the tests themselves: a throw-away OpenPGP key, a few
 * tiny .debs made with dpkg-deb, Packages.gz, Release and a clearsigned InRelease per suite,
 * served over HTTP on 127.0.0.1. No network, and runs take milliseconds, so races can be
 * repeated many times.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Repository } from '../../src/debian/sources.js';

export interface FixturePackage {
  name: string;
  version: string;
  /** Bytes of (incompressible) payload in usr/share/<name>/payload. */
  bytes?: number;
  depends?: string;
}

export interface FixtureArchive {
  uri: string;
  /** The archive key, ASCII-armored (usable inline as a repository's keyring). */
  keyring: string;
  root: string;
  /** The repository of one suite, as cairn takes it. */
  repo(suite: string): Repository;
  /** The suite's InRelease as served. */
  inRelease(suite: string): Buffer;
  /** URL path → another path under the archive, served in its place (a mirror replaying other data). */
  substitute: Map<string, string>;
  /** .deb responses sent `chunk` bytes at a time with `delayMs` between chunks (0: at once). */
  throttle: { chunk: number; delayMs: number };
  /** URL paths asked for, in order. */
  requests: string[];
  close(): Promise<void>;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function buildDeb(work: string, pool: string, p: FixturePackage): { filename: string; file: string } {
  const tree = join(work, 'src', p.name);
  mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
  mkdirSync(join(tree, 'usr', 'share', p.name), { recursive: true });
  mkdirSync(join(tree, 'usr', 'bin'), { recursive: true });
  writeFileSync(join(tree, 'usr', 'share', p.name, 'payload'), randomBytes(p.bytes ?? 1024));
  writeFileSync(join(tree, 'usr', 'bin', p.name), `#!/bin/sh\necho ${p.name} ${p.version}\n`, { mode: 0o755 });
  writeFileSync(join(tree, 'DEBIAN', 'control'), [
    `Package: ${p.name}`, `Version: ${p.version}`, 'Architecture: amd64', 'Maintainer: cairn tests <tests@cairn.invalid>',
    ...(p.depends ? [`Depends: ${p.depends}`] : []), `Description: fixture package ${p.name}`, '',
  ].join('\n'));
  const filename = `pool/main/${p.name[0]}/${p.name}/${p.name}_${p.version}_amd64.deb`;
  const file = join(pool, filename);
  mkdirSync(join(file, '..'), { recursive: true });
  execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', tree, file], { stdio: 'pipe' });
  return { filename, file };
}

/** Builds and serves an archive with the given suites (each with its own packages), signed by a fresh key. */
export async function makeArchive(suites: Record<string, FixturePackage[]>): Promise<FixtureArchive> {
  const root = mkdtempSync(join(tmpdir(), 'cairn-archive-'));
  const gnupg = mkdtempSync(join(tmpdir(), 'cairn-gpg-'));
  const gpg = (...args: string[]): Buffer => execFileSync('gpg', ['--homedir', gnupg, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let keyring: string;
  try {
    gpg('--quick-gen-key', 'cairn fixture archive <archive@cairn.invalid>', 'ed25519', 'sign', 'never');
    keyring = gpg('--armor', '--export').toString('utf8');
    for (const [suite, pkgs] of Object.entries(suites)) {
      const entries = pkgs.map((p) => {
        const { filename, file } = buildDeb(join(root, '.work'), root, p);
        const deb = readFileSync(file);
        return [`Package: ${p.name}`, `Version: ${p.version}`, 'Architecture: amd64', 'Priority: optional',
          ...(p.depends ? [`Depends: ${p.depends}`] : []), `Filename: ${filename}`, `Size: ${deb.length}`, `SHA256: ${sha256(deb)}`,
          `Description: fixture package ${p.name}`, ''].join('\n');
      });
      const dists = join(root, 'dists', suite);
      mkdirSync(join(dists, 'main', 'binary-amd64'), { recursive: true });
      const plain = Buffer.from(entries.join('\n'));
      const index = gzipSync(plain);
      writeFileSync(join(dists, 'main', 'binary-amd64', 'Packages.gz'), index);
      // As Debian's: the uncompressed index is signed too, though only the compressed one is published.
      writeFileSync(join(dists, 'Release'), [
        'Origin: cairn-fixture', `Suite: ${suite}`, `Codename: ${suite}`, `Date: ${new Date().toUTCString()}`, 'Architectures: amd64', 'Components: main', 'SHA256:',
        ` ${sha256(plain)} ${plain.length} main/binary-amd64/Packages`, ` ${sha256(index)} ${index.length} main/binary-amd64/Packages.gz`, '',
      ].join('\n'));
      gpg('--clearsign', '--output', join(dists, 'InRelease'), join(dists, 'Release'));
    }
  } finally {
    try {
      execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'all'], { stdio: 'ignore' });
    } catch {
      // no agent was started
    }
    rmSync(gnupg, { recursive: true, force: true });
    rmSync(join(root, '.work'), { recursive: true, force: true });
  }

  const substitute = new Map<string, string>();
  const throttle = { chunk: 0, delayMs: 0 };
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    requests.push(path);
    const rel = substitute.get(path) ?? path;
    const file = join(root, rel);
    let size: number;
    try {
      if (rel.includes('..') || !statSync(file).isFile()) throw new Error('not a file');
      size = statSync(file).size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Length': size });
    if (!rel.endsWith('.deb') || throttle.delayMs === 0) {
      createReadStream(file).pipe(res);
      return;
    }
    const data = readFileSync(file);
    let off = 0;
    const next = (): void => {
      if (res.destroyed) return;
      const end = Math.min(off + throttle.chunk, data.length);
      res.write(data.subarray(off, end));
      off = end;
      if (off < data.length) setTimeout(next, throttle.delayMs);
      else res.end();
    };
    next();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    uri,
    keyring,
    root,
    repo: (suite) => ({ uri, suite, components: ['main'], architecture: 'amd64', keyring }),
    inRelease: (suite) => readFileSync(join(root, 'dists', suite, 'InRelease')),
    substitute,
    throttle,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
