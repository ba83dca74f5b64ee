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

  it('hold only boots no machine outside their group ran beside: a group is the first starts under way together', async () => {
    const e = new BootCacheEntry(join(root, 'cache-groups'), 'k');
    // acme starts alone (its start is awaited before the next begins): a group of one, saved.
    const acme = e.join('acme')!;
    e.launched('acme');
    expect(await acme.arrive('acme', 'booted')).toBe('save');
    // server starts while acme runs, after acme's group closed: not cached (it may talk to acme as it boots).
    expect(e.join('server')).toBeUndefined();
    e.launched('server');
    e.ended('acme');
    e.ended('server');

    // Two machines started together (Promise.all): one group, saved when both have booted.
    const g = e.join('a')!;
    expect(e.join('b')).toBe(g);
    e.launched('a');
    e.launched('b');
    let aDecided: string | undefined;
    const a = g.arrive('a', 'booted').then((d) => (aDecided = d));
    await Promise.resolve();
    expect(aDecided).toBeUndefined();
    expect(g.closed).toBe(false);
    expect(await g.arrive('b', 'booted')).toBe('save');
    await a;
    expect(aDecided).toBe('save');
    // Neither is saved before both are paused.
    let aPaused = false;
    const ap = g.pausedForSave('a').then(() => (aPaused = true));
    await Promise.resolve();
    expect(aPaused).toBe(false);
    await g.pausedForSave('b');
    await ap;
    expect(aPaused).toBe(true);
    // The group closed: a machine started now, beside them, is not cached.
    expect(e.join('c')).toBeUndefined();
    for (const m of ['a', 'b']) e.ended(m);

    // A machine outside the group starting while it is under way (a restart, say): nothing is saved.
    const h = e.join('d')!;
    e.launched('d');
    e.launched('x');
    expect(await h.arrive('d', 'booted')).toBe('none');
    for (const m of ['d', 'x']) e.ended(m);

    // A machine of the group that is not cached (its start failed): the others are not saved.
    const f = e.join('p')!;
    e.join('q');
    const p = f.arrive('p', 'booted');
    void f.arrive('q', 'other');
    expect(await p).toBe('none');
    for (const m of ['p', 'q']) e.ended(m);

    // A machine's own earlier QEMU (a reboot) is no company; counted, as a restart's end may come late.
    e.launched('r');
    e.launched('r');
    e.ended('r');
    expect(e.join('s')).toBeUndefined();
  });

  it('restore a group only as it was saved: all loaded from states saved together as exactly these machines', async () => {
    const e = new BootCacheEntry(join(root, 'cache-restore'), 'k');
    const g = e.join('a')!;
    e.join('b');
    const a = g.arrive('a', 'loaded', ['a', 'b']);
    expect(await g.arrive('b', 'loaded', ['a', 'b'])).toBe('restore');
    expect(await a).toBe('restore');
    for (const m of ['a', 'b']) e.ended(m);
    // Saved alone (each a group of one), started together now: they boot instead.
    const h = e.join('a')!;
    e.join('b');
    const ha = h.arrive('a', 'loaded', ['a']);
    expect(await h.arrive('b', 'loaded', ['b'])).toBe('boot');
    expect(await ha).toBe('boot');
    // Saved together, but only one could be loaded: the loaded one boots, the other goes on.
    const k = e.join('a')!;
    e.join('b');
    const ka = k.arrive('a', 'loaded', ['a', 'b']);
    expect(await k.arrive('b', 'other')).toBe('none');
    expect(await ka).toBe('boot');
  });

  it('name the machines each state was saved with, when all of them are there; one saved before groups were kept counts as saved alone', () => {
    const cache = join(root, 'cache-saved-groups');
    const e = new BootCacheEntry(cache, 'k');
    for (const [m, group] of [['a', ['a', 'b']], ['b', ['b', 'a']], ['c', ['c', 'gone']], ['old', undefined]] as const) {
      const dir = e.saveTo(m)!;
      mkdirSync(dir, { recursive: true });
      markSaved(dir, { machine: m, ...(group ? { group } : {}) });
    }
    e.finish(true);
    const next = new BootCacheEntry(cache, 'k');
    expect(next.savedGroup('a')).toEqual(['a', 'b']);
    expect(next.savedGroup('b')).toEqual(['a', 'b']);
    expect(next.savedGroup('old')).toEqual(['old']);
    // A machine saved with one the entry has no state of: not restored.
    expect(next.savedGroup('c')).toEqual([]);
    expect(next.savedGroup('none')).toEqual([]);
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
