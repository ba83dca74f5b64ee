/**
 * A package's outputs: a .deb made here with documentation, manual pages (one translated), an
 * info manual, translations and locale data, unpacked and split as a system build does it.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outputOf, realisePackages, selectOutputs, type LockFile, type Repository } from '../../src/debian/index.js';
import { debCachePath, sha256File } from '../../src/debian/cache.js';
import { Store } from '../../src/store/index.js';

let work: string;
let lock: LockFile;
const repositories: Repository[] = [{ uri: 'http://127.0.0.1:9/debian', suite: 'trixie', components: ['main'], architecture: 'amd64', keyring: '/nonexistent' }];
const prevCache = process.env.CAIRN_DEBIAN_CACHE;

/** Every non-folder below `root` (and empty folders, with a slash), relative, sorted. */
function files(root: string, rel = ''): string[] {
  const names = readdirSync(join(root, rel)).sort();
  if (names.length === 0 && rel) return [`${rel}/`];
  return names.flatMap((n) => {
    const r = rel ? `${rel}/${n}` : n;
    return lstatSync(join(root, r)).isDirectory() ? files(root, r) : [r];
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cairn-outputs-'));
  const tree = join(work, 'demo');
  const put = (rel: string, data: string | Buffer, mode = 0o644): void => {
    mkdirSync(join(tree, rel, '..'), { recursive: true });
    writeFileSync(join(tree, rel), data, { mode });
  };
  put('DEBIAN/control', 'Package: demo\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: cairn tests <tests@cairn.invalid>\nDescription: outputs fixture\n');
  put('usr/bin/demo', '#!/bin/sh\n', 0o4755);
  put('usr/share/doc/demo/copyright', 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n');
  put('usr/share/doc/demo/changelog.Debian.gz', gzipSync('demo (1.0-1) unstable; urgency=medium\n'));
  put('usr/share/doc/demo/examples/demo.conf', 'x = 1\n');
  mkdirSync(join(tree, 'usr/share/doc'), { recursive: true });
  symlinkSync('demo', join(tree, 'usr/share/doc/demo-data'));
  put('usr/share/doc-base/demo', 'Document: demo\n');
  put('usr/share/man/man1/demo.1.gz', gzipSync('.TH DEMO 1\n.SH NAME\ndemo \\- a demonstration\n'));
  mkdirSync(join(tree, 'usr/share/man/man8'), { recursive: true });
  symlinkSync('../man1/demo.1.gz', join(tree, 'usr/share/man/man8/demod.8.gz'));
  put('usr/share/man/de/man1/demo.1.gz', gzipSync('.TH DEMO 1\n.SH BEZEICHNUNG\ndemo \\- eine Vorführung\n'));
  put('usr/share/info/demo.info.gz', gzipSync('demo manual\n'));
  for (const l of ['de', 'en', 'en_US', 'en@quot', 'pt_BR', 'sr@latin']) put(`usr/share/locale/${l}/LC_MESSAGES/demo.mo`, `${l}\n`);
  put('usr/share/locale/de/LC_TIME/demo.mo', 'de time\n');
  put('usr/share/locale/locale.alias', 'german de_DE.ISO-8859-1\n');
  put('usr/share/i18n/locales/de_DE', 'LC_IDENTIFICATION\nEND LC_IDENTIFICATION\n');
  mkdirSync(join(tree, 'var/lib/demo'), { recursive: true });
  const deb = join(work, 'demo_1.0-1_amd64.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', tree, deb], { stdio: 'pipe' });
  const sha256 = await sha256File(deb);
  process.env.CAIRN_DEBIAN_CACHE = join(work, 'cache');
  mkdirSync(join(debCachePath(sha256), '..'), { recursive: true });
  copyFileSync(deb, debCachePath(sha256));
  lock = {
    version: 1,
    request: { packages: ['demo'], installRecommends: false },
    repositories: [],
    packages: [{ name: 'demo', version: '1.0-1', architecture: 'amd64', suite: 'trixie', filename: 'pool/main/d/demo/demo_1.0-1_amd64.deb', sha256, size: statSync(deb).size }],
  };
});

afterAll(() => {
  process.env.CAIRN_DEBIAN_CACHE = prevCache;
  rmSync(work, { recursive: true, force: true });
});

describe('outputOf', () => {
  it('sends documentation, manuals and translations to their outputs and keeps the rest, the copyright and locale data in out', () => {
    const cases: Record<string, string> = {
      'usr/bin/ls': 'out',
      'usr/share/doc/coreutils/copyright': 'out',
      'usr/share/doc/coreutils': 'out',
      'usr/share/doc/coreutils/changelog.Debian.gz': 'doc',
      'usr/share/doc/coreutils/examples/copyright': 'doc',
      'usr/share/gtk-doc/html/x/index.html': 'doc',
      'usr/share/man/man1/ls.1.gz': 'man',
      'usr/share/man/man1': 'man',
      'usr/share/man/pt_BR/man1/ls.1.gz': 'man-pt_BR',
      'usr/share/info/coreutils.info.gz': 'info',
      'usr/share/locale/de/LC_MESSAGES/coreutils.mo': 'lang-de',
      'usr/share/locale/sr@latin/LC_MESSAGES/coreutils.mo': 'lang-sr@latin',
      'usr/share/locale/es_419/LC_MESSAGES/x.mo': 'lang-es_419',
      'usr/share/locale/locale.alias': 'out',
      'usr/share/locale/C/LC_MESSAGES/x.mo': 'out',
      'usr/share/i18n/locales/de_DE': 'out',
      'usr/lib/locale/C.utf8/LC_CTYPE': 'out',
    };
    for (const [rel, output] of Object.entries(cases)) expect(outputOf(rel), rel).toBe(output);
  });

  it('selects translations by language without the character set, and translated manuals only with man', () => {
    const available = ['doc', 'info', 'lang-de', 'lang-de.UTF-8', 'lang-en', 'lang-en@quot', 'man', 'man-de'];
    expect(selectOutputs(available, new Set(['lang-en']))).toEqual(['lang-en']);
    expect(selectOutputs(available, new Set(['lang-de']))).toEqual(['lang-de', 'lang-de.UTF-8']);
    expect(selectOutputs(available, new Set(['lang-de', 'man']))).toEqual(['lang-de', 'lang-de.UTF-8', 'man', 'man-de']);
    expect(selectOutputs(available, new Set(['doc', 'info']))).toEqual(['doc', 'info']);
  });
});

describe('realisePackages with outputs', () => {
  it('puts each part of the package in its output, and out lists the others', async () => {
    const store = Store.open(join(work, 'home'));
    const [demo] = await realisePackages(lock, repositories, store, { outputs: ['doc', 'man', 'info', 'lang-de', 'lang-en'] });
    const tree = (p: string) => files(store.toPhysical(p)).filter((f) => !f.startsWith('.cairn/deb/'));
    expect(tree(demo!.storePath)).toEqual([
      '.cairn/outputs.json',
      'usr/bin/demo',
      'usr/share/doc/demo/copyright',
      'usr/share/doc/demo-data',
      'usr/share/i18n/locales/de_DE',
      'usr/share/locale/locale.alias',
      'var/lib/demo/',
    ]);
    expect(existsSync(store.toPhysical(`${demo!.storePath}/.cairn/deb/duties.json`))).toBe(true);
    expect(JSON.parse(readFileSync(store.toPhysical(`${demo!.storePath}/.cairn/outputs.json`), 'utf8')).outputs).toEqual([
      'doc', 'info', 'lang-de', 'lang-en', 'lang-en@quot', 'lang-en_US', 'lang-pt_BR', 'lang-sr@latin', 'man', 'man-de',
    ]);
    expect(store.pathInfo(demo!.storePath).setuid).toEqual([{ path: 'usr/bin/demo', mode: 0o4755 }]);
    expect(Object.keys(demo!.outputs)).toEqual(['doc', 'info', 'lang-de', 'lang-en', 'man', 'man-de']);
    expect(tree(demo!.outputs.doc!)).toEqual(['usr/share/doc/demo/changelog.Debian.gz', 'usr/share/doc/demo/examples/demo.conf', 'usr/share/doc-base/demo']);
    expect(tree(demo!.outputs.man!)).toEqual(['usr/share/man/man1/demo.1.gz', 'usr/share/man/man8/demod.8.gz']);
    expect(readlinkSync(store.toPhysical(`${demo!.outputs.man!}/usr/share/man/man8/demod.8.gz`))).toBe('../man1/demo.1.gz');
    expect(tree(demo!.outputs['man-de']!)).toEqual(['usr/share/man/de/man1/demo.1.gz']);
    expect(tree(demo!.outputs.info!)).toEqual(['usr/share/info/demo.info.gz']);
    expect(tree(demo!.outputs['lang-de']!)).toEqual(['usr/share/locale/de/LC_MESSAGES/demo.mo', 'usr/share/locale/de/LC_TIME/demo.mo']);
    expect(demo!.outputs['lang-en']).toMatch(/-demo-1\.0-1-lang-en$/);
    // Nothing else was built: the outputs asked for, their main one and the unpacked .deb.
    expect(store.validPaths()).toHaveLength(2 + 6);
  });

  it("gives out the same path whatever else is asked for, and another system's outputs stay out of this one's", async () => {
    const store = Store.open(join(work, 'home-2'));
    const [bare] = await realisePackages(lock, repositories, store);
    expect(bare!.outputs).toEqual({});
    const [withDocs] = await realisePackages(lock, repositories, store, { outputs: ['man', 'lang-pt'] });
    expect(withDocs!.storePath).toBe(bare!.storePath);
    expect(Object.keys(withDocs!.outputs)).toEqual(['man']);
    expect(store.closure([withDocs!.storePath])).toEqual([withDocs!.storePath]);
    // The unpacked .deb is no output: a system never references it.
    expect(store.validPaths().filter((p) => p.endsWith('-demo-1.0-1'))).toHaveLength(2);
  });
});
