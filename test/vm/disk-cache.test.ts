import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evictDisks } from '../../src/vm/disks.js';
import { removeTree } from '../../src/store/index.js';

describe('the VM disk cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-disk-cache-'));
  afterAll(() => removeTree(dir));

  /** Eight disks unused for an hour (store-0 the newest), one held open; evicted with CAIRN_VM_DISKS_KEPT as given. Returns those left. */
  function evictWith(kept: string | undefined, sub: string): string[] {
    const d = join(dir, sub);
    mkdirSync(d);
    const hour = Date.now() / 1000 - 3600;
    const names = Array.from({ length: 8 }, (_, i) => `store-${i}.img`);
    names.forEach((n, i) => {
      writeFileSync(join(d, n), 'disk');
      utimesSync(join(d, n), hour - i * 60, hour - i * 60);
    });
    writeFileSync(join(d, 'boot-x.img'), 'other kind');
    // A test machine that restarts for many minutes holds its disk open between its starts.
    const held = openSync(join(d, 'store-6.img'), 'r');
    // (The test suite itself runs with its own number.)
    const before = process.env.CAIRN_VM_DISKS_KEPT;
    if (kept === undefined) delete process.env.CAIRN_VM_DISKS_KEPT;
    else process.env.CAIRN_VM_DISKS_KEPT = kept;
    try {
      evictDisks(d, 'store-', 'store-new.img');
    } finally {
      closeSync(held);
      if (before === undefined) delete process.env.CAIRN_VM_DISKS_KEPT;
      else process.env.CAIRN_VM_DISKS_KEPT = before;
    }
    expect(existsSync(join(d, 'boot-x.img'))).toBe(true);
    return names.filter((n) => existsSync(join(d, n)));
  }

  it('prunes old disks but the newest few, and never one a process has open', () => {
    expect(evictWith(undefined, 'default')).toEqual(['store-0.img', 'store-1.img', 'store-2.img', 'store-6.img']);
  });

  it('keeps as many as CAIRN_VM_DISKS_KEPT says (the new one among them)', () => {
    expect(evictWith('6', 'six')).toEqual(['store-0.img', 'store-1.img', 'store-2.img', 'store-3.img', 'store-4.img', 'store-6.img']);
  });
});
