/**
 * Installing into a mounted root (`cairn boot CONFIG --root DIR`), as onto a new machine's disk:
 * a blank disk partitioned as a user would (GPT: an ESP and an ext4 root labelled `root`), its root
 * mounted at DIR. This machine's kernel has no FAT driver, so while cairn writes, DIR/boot is a
 * tmpfs; its files then go into the disk's FAT partition with mtools, byte for byte what the ESP
 * would have held. Then the disk boots under OVMF: systemd-boot picks the default generation, which
 * reaches its login prompt.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store, removeTree, verifyStore } from '../../src/store/index.js';
import { buildSystem, type BuiltSystem } from '../../src/build/index.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { QEMU } from '../../src/vm/index.js';
import { InstallDisk } from './install-disk.js';
import { SLOT_WAIT_MS, takeSlot, type Release } from './qemu-slots.js';

process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const CLI = resolve(import.meta.dirname, '../../bin/cairn.js');
const BOOT_TIMEOUT_MS = 300_000;

const isRoot = process.getuid?.() === 0;
const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;
/** Loop devices and ext4 mounts: what a user installing onto a disk has. */
const canMount = isRoot && (await execa('losetup', ['--find'], { reject: false })).exitCode === 0;

const config = (host: string): string => `networking:\n  hostName: ${host}\nsystem:\n  stateVersion: "0.1"\n`;

describe.skipIf(!canMount || !hasQemu)('cairn boot --root DIR: installing onto a disk', () => {
  let work: string;
  let store: Store;
  let one: BuiltSystem;
  let two: BuiltSystem;
  /** The new machine's disk, its root mounted at `root`. */
  let disk: InstallDisk | undefined;
  let root: string;

  const cairn = (...args: string[]) => execa('node', [CLI, ...args], { env: { CAIRN_HOME: STORE_HOME }, reject: false, cwd: work });
  const entries = () => readdirSync(join(root, 'boot', 'loader', 'entries')).sort();
  /** Mounts under DIR besides DIR itself: the ESP, nothing left from the chroot. */
  const mountsUnder = async () => (await execa('findmnt', ['-rn', '-o', 'TARGET'])).stdout.split('\n').filter((t) => t.startsWith(`${root}/`)).sort();

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'cairn-root-install-'));
    store = Store.open(STORE_HOME);
    for (const [f, host] of [['one.yaml', 'installed-one'], ['two.yaml', 'installed-two'], ['three.yaml', 'installed-three']]) writeFileSync(join(work, f!), config(host!));
    one = await buildSystem(await evalConfigFile(join(work, 'one.yaml')), { store });
    two = await buildSystem(await evalConfigFile(join(work, 'two.yaml')), { store });

    disk = await InstallDisk.make(work, 'root-install-test', 'root');
    root = disk.root;
  }, 900_000);

  // Its guests count against the machine-wide limit of QEMU guests (the VM test driver's run beside it).
  let releaseSlot: Release | undefined;
  beforeAll(async () => {
    releaseSlot = await takeSlot();
  }, SLOT_WAIT_MS);
  afterAll(() => releaseSlot?.());

  afterAll(async () => {
    await disk?.release();
    if (work) removeTree(work);
  });

  it('refuses to activate a root that is not running', async () => {
    for (const action of ['switch', 'activate', 'dry-activate']) {
      const r = await cairn(action, 'one.yaml', '--root', root);
      expect(r.exitCode, action).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^error: --root ${root}: nothing runs there .*cairn boot CONFIG --root ${root}`, 'm'));
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(join(root, 'cairn'))).toBe(false);
  });

  it('refuses a root whose ESP is not mounted, before copying anything', async () => {
    const bare = mkdtempSync(join(work, 'bare-'));
    const r = await cairn('boot', 'one.yaml', '--root', bare);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`error: ${bare}/boot is not mounted: mount the machine's EFI system partition there`);
    expect(readdirSync(bare)).toEqual([]);
  });

  it('installs generation 1: its closure, the root the first boot expects, the profile and the boot entry', async () => {
    const r = await cairn('boot', 'one.yaml', '--root', root);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`generation 1 of ${root}/cairn/var/profiles/system`);
    const profiles = join(root, 'cairn', 'var', 'profiles');
    expect(readlinkSync(join(profiles, 'system'))).toBe('system-1-link');
    // As the machine sees its store, not as this one does.
    expect(readlinkSync(join(profiles, 'system-1-link'))).toBe(one.toplevel);
    expect(readlinkSync(join(root, 'usr'))).toBe(`${one.toplevel}/sw/usr`);
    expect(readlinkSync(join(root, 'lib64'))).toBe('usr/lib64');
    for (const d of ['etc', 'var', 'proc', 'sys', 'dev', 'run', 'tmp']) expect(existsSync(join(root, d)), d).toBe(true);

    const target = Store.open(join(root, 'cairn'));
    for (const p of one.closure) expect(target.isValid(p), p).toBe(true);
    expect(await verifyStore(target, { checkContents: true })).toEqual([]);

    expect(entries()).toEqual(['cairn-generation-1+3.conf']);
    const entry = readFileSync(join(root, 'boot', 'loader', 'entries', 'cairn-generation-1+3.conf'), 'utf8');
    expect(entry).toContain(`options init=${one.toplevel}/init root=LABEL=root`);
    for (const f of [...entry.matchAll(/^(?:linux|initrd) (\S+)$/gm)].map((m) => m[1]!)) expect(existsSync(join(root, 'boot', f)), f).toBe(true);
    expect(existsSync(join(root, 'boot', 'EFI', 'BOOT', 'BOOTX64.EFI'))).toBe(true);
    // The chroot's mounts went with it; its /run and /tmp were its own.
    expect(await mountsUnder()).toEqual([`${root}/boot`]);
    expect(readdirSync(join(root, 'run'))).toEqual([]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  }, 600_000);

  it('adds generation 2 with only the missing paths, and both entries', async () => {
    const r = await cairn('boot', 'two.yaml', '--root', root, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { generation: number; copied: number; toplevel: string };
    expect(summary.generation).toBe(2);
    expect(summary.toplevel).toBe(two.toplevel);
    const missing = two.closure.filter((p) => !one.closure.includes(p));
    expect(summary.copied).toBe(missing.length);
    expect(readlinkSync(join(root, 'cairn', 'var', 'profiles', 'system'))).toBe('system-2-link');
    expect(entries()).toEqual(['cairn-generation-1+3.conf', 'cairn-generation-2+3.conf']);
  }, 600_000);

  it("lists, compares, rolls back and deletes the root's generations, its boot entries following", async () => {
    const list = await cairn('generations', 'list', '--root', root, '--json');
    expect(list.exitCode, list.stderr).toBe(0);
    const gens = JSON.parse(list.stdout) as { number: number; current: boolean; toplevel: string; kernelVersion: string | null }[];
    expect(gens.map((g) => [g.number, g.current, g.toplevel])).toEqual([[1, false, one.toplevel], [2, true, two.toplevel]]);
    // Read from the root's own store: this machine's need not have them.
    expect(gens[1]!.kernelVersion).toMatch(/^\d+\.\d+/);
    const diff = await cairn('generations', 'diff', '1', '2', '--root', root);
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/^\/etc:\n(.*\n)*  ~ hostname$/m);

    const back = await cairn('generations', 'rollback', '--root', root);
    expect(back.exitCode, back.stderr).toBe(0);
    const profiles = join(root, 'cairn', 'var', 'profiles');
    expect(readlinkSync(join(profiles, 'system'))).toBe('system-1-link');
    // Generation 2 is newer than the current one: its entry sorts after generation 1's.
    expect(readFileSync(join(root, 'boot', 'loader', 'entries', 'cairn-generation-2+3.conf'), 'utf8')).toMatch(/^sort-key cairn-newer$/m);

    // The same configuration again: its generation, the newest, becomes current again.
    const again = await cairn('boot', 'two.yaml', '--root', root);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(readlinkSync(join(profiles, 'system'))).toBe('system-2-link');
    const del = await cairn('generations', 'delete', '1', '--root', root);
    expect(del.exitCode, del.stderr).toBe(0);
    expect(existsSync(join(profiles, 'system-1-link'))).toBe(false);
    expect(entries()).toEqual(['cairn-generation-2+3.conf']);
    expect(readFileSync(join(root, 'boot', 'loader', 'entries', 'cairn-generation-2+3.conf'), 'utf8')).toMatch(/^sort-key cairn$/m);
    expect(await mountsUnder()).toEqual([`${root}/boot`]);
  }, 600_000);

  it('leaves the profile as it was when the ESP is full', async () => {
    const esp = join(root, 'boot');
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'small-esp', esp]);
    try {
      const r = await cairn('boot', 'three.yaml', '--root', root);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^error: the boot entries of .* could not be written: install-bootloader: the ESP \(\/boot\) has \d+ MiB free, the new boot files need \d+ MiB/m);
    } finally {
      await execa('umount', [esp]);
    }
    const profiles = join(root, 'cairn', 'var', 'profiles');
    expect(readlinkSync(join(profiles, 'system'))).toBe('system-2-link');
    expect(existsSync(join(profiles, 'system-3-link'))).toBe(false);
    expect(entries()).toEqual(['cairn-generation-2+3.conf']);
  }, 600_000);

  it('boots from the disk: generation 2, which reaches its login prompt', async () => {
    // The ESP's files into the disk's FAT partition, then the root unmounted and released.
    await disk!.toFat(['-n', 'ESP']);
    const vm = disk!.boot();
    try {
      const r = await vm.waitForConsole(/installed-two login:/, BOOT_TIMEOUT_MS);
      if (!r.matched) process.stderr.write(`--- serial console (${r.seconds.toFixed(1)} s, ${r.reason}) ---\n${vm.console}\n--- end of console ---\n`);
      expect(r.matched).toBe(true);
      expect(vm.console).toContain(`cairn stage 1: switching to ${two.toplevel}/init`);
      process.stderr.write(`installed disk (OVMF, systemd-boot, TCG): login prompt after ${r.seconds.toFixed(1)} s\n`);
    } finally {
      await vm.stop();
    }
  }, BOOT_TIMEOUT_MS + 60_000);
});
