/**
 * The boot cache's keys and entries (src/testing/boot-cache.ts), without QEMU: what a key keeps
 * and leaves out of a machine's command line, and when a test's entry is kept.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BootCacheEntry, entryKey, evict, machineKey, markSaved } from '../../src/testing/boot-cache.js';

const root = mkdtempSync(join(tmpdir(), 'cairn-boot-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A test's folder of one run: a machine's state disk, firmware variables and a vlan socket's path. */
function run(name: string, vars = 'vars'): { work: string; args: string[]; state: string } {
  const work = join(root, name);
  mkdirSync(join(work, 'm'), { recursive: true });
  const state = join(work, 'm', 'state.qcow2');
  writeFileSync(state, name);
  writeFileSync(join(work, 'm', 'state.qcow2.efivars.fd'), vars);
  const args = ['-m', '1024', '-drive', `file=${state},if=virtio,format=qcow2`, '-drive', `if=pflash,format=raw,unit=1,file=${join(work, 'm', 'state.qcow2.efivars.fd')}`, '-drive', `file=${disk},if=virtio,format=raw,readonly=on`, '-netdev', `user,id=user0,hostfwd=tcp:127.0.0.1:${20000 + name.length}-:22`, '-netdev', `stream,id=vlan1,server=off,addr.type=unix,addr.path=${join(work, 'vlan1.sock')}`, '-qmp', `unix:${join(work, 'm', 'qmp.sock')},server=on,wait=off`];
  return { work, args, state };
}

const shared = join(root, 'shared');
mkdirSync(shared);
const disk = join(shared, 'store.img');
writeFileSync(disk, 'store disk');
// A run reaches the shared store through a link of its own (the test suite's run folder).
const link = join(root, 'link');
symlinkSync(shared, link);

describe('boot cache keys', () => {
  it('leave out what changes from run to run: the test folder, state disk, forwarded host ports, links to the store', () => {
    const a = run('run-a');
    const b = run('run-bb');
    expect(machineKey(a.args, a.work, a.state)).toBe(machineKey(b.args, b.work, b.state));
    const viaLink = b.args.map((x) => x.replace(shared, link));
    expect(machineKey(viaLink, b.work, b.state)).toBe(machineKey(a.args, a.work, a.state));
  });

  it('change with the machine: its command line, the firmware variables it starts from, a disk made again', () => {
    const a = run('run-c');
    const key = machineKey(a.args, a.work, a.state);
    expect(machineKey([...a.args, '-smp', '2'], a.work, a.state)).not.toBe(key);
    const v = run('run-d', 'other vars');
    expect(machineKey(v.args, v.work, v.state)).not.toBe(key);
    // The same name, made again (another build of the closure): another identity.
    rmSync(disk);
    writeFileSync(disk, 'store disk');
    expect(machineKey(a.args, a.work, a.state)).not.toBe(key);
  });

  it('of a test change with its text, QEMU and any machine', () => {
    const k = entryKey('test', 'QEMU 10.0.2', { a: '1', b: '2' });
    expect(entryKey('test', 'QEMU 10.0.2', { b: '2', a: '1' })).toBe(k);
    expect(entryKey('test ', 'QEMU 10.0.2', { a: '1', b: '2' })).not.toBe(k);
    expect(entryKey('test', 'QEMU 10.0.3', { a: '1', b: '2' })).not.toBe(k);
    expect(entryKey('test', 'QEMU 10.0.2', { a: '1', b: '3' })).not.toBe(k);
  });
});

describe('boot cache entries', () => {
  const save = (e: BootCacheEntry, machine: string, bytes = 10): void => {
    const dir = e.saveTo(machine)!;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'ram'), 'x'.repeat(bytes));
    markSaved(dir, { machine });
  };

  it('are kept only from a passing run whose machines all saved, and then restore each saved machine', () => {
    const cache = join(root, 'cache-1');
    const failed = new BootCacheEntry(cache, 'k1');
    expect(failed.from).toBeUndefined();
    save(failed, 'a');
    failed.finish(false);
    expect(readdirSync(cache)).toEqual([]);

    const spoiled = new BootCacheEntry(cache, 'k1');
    save(spoiled, 'a');
    spoiled.spoil('b: migration failed');
    spoiled.finish(true);
    expect(readdirSync(cache)).toEqual([]);

    const passed = new BootCacheEntry(cache, 'k1');
    save(passed, 'a');
    passed.finish(true);
    expect(readdirSync(cache)).toEqual(['k1']);

    const next = new BootCacheEntry(cache, 'k1');
    expect(next.restoreFrom('a')).toBe(join(cache, 'k1', 'a'));
    // A machine the saving run did not save (it never reached multi-user.target) boots.
    expect(next.restoreFrom('b')).toBeUndefined();
    // Nothing is saved again into an entry that exists.
    expect(next.saveTo('a')).toBeUndefined();
  });

  it('hold only boots no other machine of the test ran beside: machines that ran together may have met', () => {
    const e = new BootCacheEntry(join(root, 'cache-alone'), 'k');
    // acme boots alone and is saved.
    expect(e.alone('acme')).toBe(true);
    e.bootingForSave('acme');
    e.launched('acme');
    expect(e.bootedAlone('acme')).toBe(true);
    // server starts while acme runs: neither restored nor saved (it may talk to acme as it boots).
    expect(e.alone('server')).toBe(false);
    e.launched('server');
    // Two machines started together: the first to launch lost its solitude when the second did.
    const together = new BootCacheEntry(join(root, 'cache-together'), 'k');
    expect(together.alone('a')).toBe(true);
    together.bootingForSave('a');
    together.launched('a');
    expect(together.alone('b')).toBe(false);
    together.launched('b');
    expect(together.bootedAlone('a')).toBe(false);
    // Once the others have stopped, a machine boots alone again.
    together.ended('a');
    together.ended('b');
    expect(together.alone('c')).toBe(true);
    // A machine's own earlier QEMU (a reboot) is no company.
    together.launched('c');
    expect(together.alone('c')).toBe(true);
    // c restarted, its old QEMU's end seen after the new one started: c still runs.
    together.launched('c');
    together.ended('c');
    expect(together.alone('d')).toBe(false);
  });

  it('beyond the size kept go least lately used first, with unfinished ones of runs that are gone', () => {
    const cache = join(root, 'cache-2');
    for (const [i, k] of ['old', 'mid', 'new'].entries()) {
      const e = new BootCacheEntry(cache, k);
      save(e, 'a', 100);
      e.finish(true);
      // Used minutes apart (made within the same millisecond, their times would tie).
      const t = new Date(Date.now() - (3 - i) * 60_000);
      utimesSync(join(cache, k), t, t);
    }
    // Used now: 'old' becomes the latest.
    new BootCacheEntry(cache, 'old');
    mkdirSync(join(cache, '.new-k-999999999'));
    evict(cache, 250);
    expect(readdirSync(cache).sort()).toEqual(['new', 'old']);
  });
});
