/** Merging an unpacked package's /bin, /sbin and /lib* into usr/ (what every package's unpacking does). */
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync, existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mergeUsr } from '../../src/debian/deb.js';

let root: string;
afterEach(() => rmSync(root, { recursive: true, force: true }));
const tree = (): string => (root = mkdtempSync(join(tmpdir(), 'cairn-merge-usr-')));

describe('mergeUsr', () => {
  it('moves /bin and /lib into usr/ and rewrites relative links that cross the move', () => {
    const r = tree();
    mkdirSync(join(r, 'bin'));
    mkdirSync(join(r, 'lib/x86_64-linux-gnu'), { recursive: true });
    writeFileSync(join(r, 'bin/tool'), 'x');
    writeFileSync(join(r, 'lib/x86_64-linux-gnu/libt.so.1'), 'x');
    mkdirSync(join(r, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
    symlinkSync('../../../lib/x86_64-linux-gnu/libt.so.1', join(r, 'usr/lib/x86_64-linux-gnu/libt.so'));
    mergeUsr(r);
    expect(existsSync(join(r, 'bin'))).toBe(false);
    expect(existsSync(join(r, 'usr/bin/tool'))).toBe(true);
    expect(readlinkSync(join(r, 'usr/lib/x86_64-linux-gnu/libt.so'))).toBe('libt.so.1');
  });

  it("drops the merged-/usr links Debian 13's base-files ships (/bin -> usr/bin)", () => {
    const r = tree();
    mkdirSync(join(r, 'usr/bin'), { recursive: true });
    mkdirSync(join(r, 'usr/lib64'), { recursive: true });
    symlinkSync('usr/bin', join(r, 'bin'));
    symlinkSync('usr/lib64', join(r, 'lib64'));
    mergeUsr(r);
    expect(existsSync(join(r, 'bin')) || existsSync(join(r, 'lib64'))).toBe(false);
    expect(lstatSync(join(r, 'usr/bin')).isDirectory()).toBe(true);
    expect(existsSync(join(r, 'usr/bin/bin'))).toBe(false);
  });

  it('refuses any other link in their place', () => {
    const r = tree();
    mkdirSync(join(r, 'opt'), { recursive: true });
    symlinkSync('opt', join(r, 'sbin'));
    expect(() => mergeUsr(r)).toThrow(/ships \/sbin as a symlink to opt; cairn cannot merge it/);
  });
});
