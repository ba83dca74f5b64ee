import { closeSync, existsSync, mkdtempSync, openSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evictDisks } from '../../src/vm/disks.js';
import { removeTree } from '../../src/store/index.js';

describe('the VM disk cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-disk-cache-'));
  afterAll(() => removeTree(dir));

  it('prunes old disks but the newest few, and never one a process has open', () => {
    const hour = Date.now() / 1000 - 3600;
    // store-0 is the newest, store-7 the oldest; all unused for an hour.
    const names = Array.from({ length: 8 }, (_, i) => `store-${i}.img`);
    names.forEach((n, i) => {
      writeFileSync(join(dir, n), 'disk');
      utimesSync(join(dir, n), hour - i * 60, hour - i * 60);
    });
    writeFileSync(join(dir, 'boot-x.img'), 'other kind');
    // A test machine that restarts for many minutes holds its disk open between its starts.
    const held = openSync(join(dir, 'store-6.img'), 'r');
    try {
      evictDisks(dir, 'store-', 'store-new.img');
    } finally {
      closeSync(held);
    }
    const left = names.filter((n) => existsSync(join(dir, n)));
    expect(left).toEqual(['store-0.img', 'store-1.img', 'store-2.img', 'store-6.img']);
    expect(existsSync(join(dir, 'boot-x.img'))).toBe(true);
  });
});
