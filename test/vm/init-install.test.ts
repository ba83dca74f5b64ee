/**
 * A new machine set up as nixos-generate-config and nixos-install do it: a blank disk
 * partitioned and mounted at DIR, `cairn init --root DIR` writes its configuration from what is
 * mounted there, `cairn boot DIR/etc/cairn/cairn.yaml --root DIR` installs it, and the disk boots
 * under OVMF to its login prompt, mounting its file systems by the UUIDs init wrote.
 *
 * This machine's kernel has no FAT driver: while cairn writes, DIR/boot is a tmpfs (init sees
 * that, and the test puts the FAT partition's UUID in its place, which a machine that can mount
 * the ESP detects itself: test/init/detect.test.ts), and the ESP's files then go into the FAT
 * partition with mtools.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { removeTree } from '../../src/store/index.js';
import { QEMU } from '../../src/vm/index.js';
import { InstallDisk } from './install-disk.js';
import { SLOT_WAIT_MS, takeSlot, type Release } from './qemu-slots.js';

process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const CLI = resolve(import.meta.dirname, '../../bin/cairn.js');
const BOOT_TIMEOUT_MS = 300_000;
/** The ESP's volume id, given to mkfs.vfat: its UUID is `1A2B-3C4D`. */
const ESP_VOLUME_ID = '1A2B3C4D';

const isRoot = process.getuid?.() === 0;
const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;
const canMount = isRoot && (await execa('losetup', ['--find'], { reject: false })).exitCode === 0;

describe.skipIf(!canMount || !hasQemu)('cairn init --root DIR, then cairn boot --root DIR: a new machine', () => {
  let work: string;
  let disk: InstallDisk | undefined;
  let root: string;
  let rootUuid: string;

  const cairn = (...args: string[]) => execa('node', [CLI, ...args], { env: { CAIRN_HOME: STORE_HOME, SUDO_USER: '' }, reject: false, cwd: work });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'cairn-init-install-'));
    // No label: the machine finds its root by the UUID init reads.
    disk = await InstallDisk.make(work, 'init-install-test');
    root = disk.root;
    rootUuid = await disk.rootUuid();
  }, 900_000);

  let releaseSlot: Release | undefined;
  beforeAll(async () => {
    releaseSlot = await takeSlot();
  }, SLOT_WAIT_MS);
  afterAll(() => releaseSlot?.());

  afterAll(async () => {
    await disk?.release();
    if (work) removeTree(work);
  });

  it('writes a configuration from the mounted disk, installs it, and the disk boots to its login prompt', async () => {
    // The host may boot by BIOS; the machine this disk is for has UEFI.
    const init = await cairn('init', '--root', root, '--firmware', 'uefi');
    expect(init.exitCode, init.stderr).toBe(0);
    const dir = join(root, 'etc', 'cairn');
    const hwFile = join(dir, 'hardware.yaml');
    const hw = readFileSync(hwFile, 'utf8');
    expect(hw).toMatch(new RegExp(`^fileSystems:\\n {2}/:\\n {4}uuid: ${rootUuid}\\n {4}fsType: ext4\\n`, 'm'));
    expect(hw).toMatch(/^ {2}\/boot:\n {4}device: esp\n {4}fsType: tmpfs\n/m);
    writeFileSync(hwFile, hw.replace(/^ {2}\/boot:\n {4}device: esp\n {4}fsType: tmpfs\n/m, '  /boot:\n    uuid: 1A2B-3C4D\n    fsType: vfat\n'));
    const hostName = /^ {2}hostName: (\S+)$/m.exec(readFileSync(join(dir, 'cairn.yaml'), 'utf8'))?.[1] ?? 'cairn';

    const install = await cairn('boot', join(dir, 'cairn.yaml'), '--root', root);
    expect(install.exitCode, install.stderr).toBe(0);
    const entries = readdirSync(join(root, 'boot', 'loader', 'entries'));
    expect(entries).toHaveLength(1);
    expect(readFileSync(join(root, 'boot', 'loader', 'entries', entries[0]!), 'utf8')).toMatch(new RegExp(`^options init=\\S+ root=UUID=${rootUuid}(\\s|$)`, 'm'));
    // The configuration stays on the disk, for the machine's own `cairn switch` later.
    expect(readFileSync(join(dir, 'cairn.yaml'), 'utf8')).toContain('- ./hardware.yaml');

    await disk!.toFat(['-i', ESP_VOLUME_ID]);
    const vm = disk!.boot();
    try {
      // A file system systemd cannot find (a wrong UUID) stops the boot in emergency mode, before any login prompt.
      const r = await vm.waitForConsole(new RegExp(`${hostName} login:`), BOOT_TIMEOUT_MS);
      if (!r.matched) process.stderr.write(`--- serial console (${r.seconds.toFixed(1)} s, ${r.reason}) ---\n${vm.console}\n--- end of console ---\n`);
      expect(r.matched).toBe(true);
      expect(vm.console).not.toMatch(/Dependency failed for .*boot|emergency mode|Timed out waiting for device/i);
      process.stderr.write(`disk set up by cairn init (OVMF, systemd-boot, TCG): login prompt after ${r.seconds.toFixed(1)} s\n`);
    } finally {
      await vm.stop();
    }
  }, 900_000 + BOOT_TIMEOUT_MS);
});
