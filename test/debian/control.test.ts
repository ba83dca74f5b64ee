import { describe, it, expect } from 'vitest';
import { parseDeb822, parseRelations, field } from '../../src/debian/control.js';
import { parseSourcesFile, parseListFile, hostRepository } from '../../src/debian/sources.js';
import { parsePackagesIndex } from '../../src/debian/packages.js';
import { dearmor } from '../../src/debian/archive.js';

describe('deb822 control data', () => {
  it('parses paragraphs, continuation lines, comments and the empty-line dot', () => {
    const ps = parseDeb822('Package: a\nDescription: short\n long line\n .\n more\n\n# comment\npackage: b\nVersion: 1\n');
    expect(ps).toHaveLength(2);
    expect(ps[0]!.Description).toBe('short\nlong line\n\nmore');
    expect(field(ps[1]!, 'Package')).toBe('b');
  });

  it('parses dependency fields: alternatives, versions, architecture qualifiers', () => {
    const r = parseRelations('libc6 (>= 2.34), python3:any, default-mta | mail-transport-agent, foo (<< 1:2~), bar (> 1)');
    expect(r).toEqual([
      [{ name: 'libc6', op: '>=', version: '2.34' }],
      [{ name: 'python3', archQualifier: 'any' }],
      [{ name: 'default-mta' }, { name: 'mail-transport-agent' }],
      [{ name: 'foo', op: '<<', version: '1:2~' }],
      [{ name: 'bar', op: '>=', version: '1' }],
    ]);
    expect(parseRelations(undefined)).toEqual([]);
  });

  it('keeps only the fields the resolver needs from a Packages index', () => {
    const text = 'Package: mawk\nVersion: 1.3.4.20200120-3.1\nArchitecture: amd64\nMulti-Arch: foreign\nPriority: required\nEssential: yes\nDepends: libc6 (>= 2.29)\nProvides: awk\nFilename: pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb\nSize: 119072\nSHA256: ' + 'a'.repeat(64) + '\nDescription: x\n y\n\n';
    const [p] = parsePackagesIndex(text, 'bookworm', 0);
    expect(p).toMatchObject({ name: 'mawk', essential: true, multiArch: 'foreign', size: 119072, suite: 'bookworm', raw: { Depends: 'libc6 (>= 2.29)', Provides: 'awk' } });
  });
});

describe('apt sources', () => {
  const deb822 = `Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main contrib
Architectures: amd64 arm64
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZ
 -----END PGP PUBLIC KEY BLOCK-----

Enabled: no
Types: deb
URIs: http://disabled.invalid/
Suites: bookworm
Components: main
`;
  it('reads deb822 entries, inline keys and Enabled: no', () => {
    const s = parseSourcesFile(deb822, 'x.sources');
    expect(s).toHaveLength(2);
    expect(s[0]!.suites).toEqual(['bookworm', 'bookworm-updates']);
    expect(s[1]!.signedBy).toContain('BEGIN PGP PUBLIC KEY BLOCK');
    expect(hostRepository('bookworm-security', s).uri).toBe('http://mirror.invalid/debian-security');
    // Another release's suite of the same kind lends its entry (Debian keeps them in one archive).
    expect(hostRepository('trixie-security', s).uri).toBe('http://mirror.invalid/debian-security');
    expect(hostRepository('trixie', s)).toMatchObject({ uri: 'http://mirror.invalid/debian', suite: 'trixie' });
    // Nothing is guessed for suites that are not Debian's.
    expect(() => hostRepository('jammy', s)).toThrow(/jammy.*packages\.repositories/);
  });

  it('reads one-line entries with options and skips deb-src', () => {
    const s = parseListFile('deb [arch=amd64 signed-by=/k.gpg] http://m.invalid/debian bookworm main contrib # c\ndeb-src http://m.invalid/debian bookworm main\n', 'x.list');
    expect(s[0]).toMatchObject({ types: ['deb'], uris: ['http://m.invalid/debian'], suites: ['bookworm'], components: ['main', 'contrib'], architectures: ['amd64'], signedBy: '/k.gpg' });
    expect(() => hostRepository('bookworm', s.slice(1))).toThrow();
  });

  it('dearmors ASCII-armored keys as gpg --dearmor does', () => {
    const bin = Buffer.from([0x99, 0x01, 0x0d, 0x04, 0x5e]);
    const armored = `-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\n${bin.toString('base64')}\n=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n`;
    expect(dearmor(armored).equals(bin)).toBe(true);
  });
});
