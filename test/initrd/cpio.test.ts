/** The newc writer: what it writes reads back the same, in a fixed order, and other readers agree. */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readlinkSync, lstatSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipCpio, parseCpio, writeCpio, type CpioEntry } from '../../src/build/cpio.js';

const sample: CpioEntry[] = [
  { type: 'file', path: 'bin/hello', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
  { type: 'dir', path: 'bin' },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'file', path: 'etc/empty', data: new Uint8Array(0) },
  { type: 'dir', path: 'etc' },
  { type: 'char', path: 'dev/console', major: 5, minor: 1 },
  { type: 'dir', path: 'dev' },
  // Name and data lengths that exercise every padding remainder.
  ...[1, 2, 3, 4, 5].map((n): CpioEntry => ({ type: 'file', path: `etc/${'x'.repeat(n)}`, data: Buffer.alloc(n, 0x61) })),
];

describe('newc cpio', () => {
  it('reads back what it wrote: names, types, modes, data, link targets, device numbers; owner root, mtime 0', () => {
    const entries = parseCpio(writeCpio(sample));
    const by = new Map(entries.map((e) => [e.path, e]));
    expect(entries).toHaveLength(sample.length);
    expect(by.get('bin/hello')!.mode).toBe(0o100755);
    expect(by.get('bin/hello')!.data.toString()).toBe('#!/bin/sh\necho hi\n');
    expect(by.get('bin')!.mode).toBe(0o040755);
    expect(by.get('bin/sh')!.mode).toBe(0o120777);
    expect(by.get('bin/sh')!.data.toString()).toBe('busybox');
    expect(by.get('dev/console')).toMatchObject({ mode: 0o020600, rmajor: 5, rminor: 1 });
    expect(by.get('etc/empty')!.data.length).toBe(0);
    for (const n of [1, 2, 3, 4, 5]) expect(by.get(`etc/${'x'.repeat(n)}`)!.data.toString()).toBe('a'.repeat(n));
    for (const e of entries) expect([e.uid, e.gid, e.mtime]).toEqual([0, 0, 0]);
  });

  it('puts every parent before its children, whatever the input order', () => {
    const paths = parseCpio(writeCpio(sample)).map((e) => e.path);
    for (const [i, p] of paths.entries()) {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : undefined;
      if (parent) expect(paths.indexOf(parent)).toBeLessThan(i);
    }
  });

  it('is deterministic: the same entries in another order give the same bytes, compressed too', () => {
    const a = gzipCpio(writeCpio(sample));
    const b = gzipCpio(writeCpio([...sample].reverse()));
    expect(b.equals(a)).toBe(true);
    expect(parseCpio(a)).toHaveLength(sample.length); // parseCpio takes gzip input as well
  });

  it('refuses duplicate and escaping paths', () => {
    expect(() => writeCpio([{ type: 'dir', path: 'a' }, { type: 'dir', path: './a' }])).toThrow(/twice/);
    expect(() => writeCpio([{ type: 'dir', path: '../a' }])).toThrow(/not a valid member path/);
  });

  it('is read by an independent cpio (busybox), when one is installed', async (ctx) => {
    const bb = await execa('busybox', ['cpio', '--help'], { reject: false });
    if (bb.failed && !String(bb.stderr).includes('Usage')) ctx.skip();
    const dir = mkdtempSync(join(tmpdir(), 'cairn-cpio-'));
    try {
      const archive = join(dir, 'a.cpio');
      writeFileSync(archive, writeCpio(sample.filter((e) => e.type !== 'char'))); // device nodes need privileges to extract
      const list = await execa('busybox', ['cpio', '-t', '-F', archive]);
      expect(String(list.stdout).split('\n').sort()).toEqual(sample.filter((e) => e.type !== 'char').map((e) => e.path).sort());
      await execa('busybox', ['cpio', '-i', '-d', '-F', archive], { cwd: join(dir) });
      expect(readFileSync(join(dir, 'bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
      expect(lstatSync(join(dir, 'bin/hello')).mode & 0o777).toBe(0o755);
      expect(readlinkSync(join(dir, 'bin/sh'))).toBe('busybox');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
