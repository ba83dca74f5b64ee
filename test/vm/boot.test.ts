/**
 * The acceptance check of the system closure: it boots. A configuration is built into a toplevel
 * (real Debian packages, cairn's own initrd), staged as an ext4 root, and booted in QEMU (TCG:
 * KVM hangs on this kind of machine) with the toplevel's kernel and initrd. The test watches the
 * serial console until systemd reaches multi-user.target.
 *
 * The store and the Debian cache persist in the temporary folder across runs (both are
 * content-addressed, so a stale entry cannot be wrong), which keeps a rerun to the boot itself.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSystem, type BuiltSystem } from '../../src/build/system.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { stageRootTree, makeExt4Image } from '../../src/image/rootfs.js';
import { removeTree, Store } from '../../src/store/index.js';
import { qemuArgs, QEMU, RunningMachine } from '../../src/vm/index.js';
import { stopReason } from '../../src/testing/index.js';
import { GUEST_CPUS, SLOT_WAIT_MS, takeSlot, type Release } from './qemu-slots.js';

const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;

process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-vm-home');

/** Boot budget: a one-vCPU TCG boot of such a system takes 20–35 s here; the rest is headroom for loaded CI machines. */
const BOOT_TIMEOUT_MS = 180_000;
const MULTI_USER = /Reached target .*Multi-User System/;

interface BootResult {
  reached: boolean;
  seconds: number;
  console: string;
}

/**
 * Boots the image with the toplevel's kernel and initrd and resolves when the console shows
 * `until`, a fatal line, QEMU exits, or the timeout passes; the VM is stopped then.
 */
async function boot(opts: { kernel: string; initrd: string; image: string; append: string; until: RegExp; sata?: boolean }): Promise<BootResult> {
  const disk = { file: opts.image, format: 'raw' } as const;
  const args = qemuArgs({ accel: 'tcg', memoryMiB: 1024, cpus: GUEST_CPUS, kernel: opts, drives: opts.sata ? [] : [disk], network: null });
  // `sata`: the disk on q35's AHCI controller. Stage 1 loads its driver by modalias only once the
  // root is not found without it (modules.alias.late); its disks appear once the controller's probe
  // (which waits for every port's link) is done.
  if (opts.sata) args.push('-drive', `if=none,id=root,file=${disk.file},format=${disk.format}`, '-device', 'ide-hd,drive=root,bus=ide.0');
  const vm = RunningMachine.start(args);
  try {
    const r = await vm.waitForConsole(opts.until, BOOT_TIMEOUT_MS);
    return { reached: r.matched, seconds: r.seconds, console: vm.console };
  } finally {
    await vm.stop();
  }
}

describe.skipIf(!hasQemu)('the system closure boots in QEMU', () => {
  let store: Store;
  let work: string;
  let built: BuiltSystem;
  let image: string;

  beforeAll(async () => {
    store = Store.open(STORE_HOME);
    work = mkdtempSync(join(tmpdir(), 'cairn-vm-boot-'));
    const config = join(work, 'vm.yaml');
    // Booted directly from a bare root file system: no ESP, so no boot loader to mount it for.
    writeFileSync(config, ['networking:', '  hostName: cairn-vm', 'system:', '  stateVersion: "0.1"', 'boot:', '  loader:', '    systemd-boot:', '      enable: false', ''].join('\n'));
    built = await buildSystem(await evalConfigFile(config), { store });
    const root = join(work, 'root');
    mkdirSync(root);
    await stageRootTree(store, { toplevel: built.toplevel, dir: root });
    image = join(work, 'root.img');
    await makeExt4Image({ dir: root, image, label: 'root' });
    removeTree(root);
  }, 900_000);

  // Its guests count against the machine-wide limit of QEMU guests (the VM test driver's run beside it).
  let releaseSlot: Release | undefined;
  beforeAll(async () => {
    releaseSlot = await takeSlot();
  }, SLOT_WAIT_MS);
  afterAll(() => releaseSlot?.());

  afterAll(() => {
    if (work) removeTree(work);
  });

  it('has a kernel and cairn initrd in the toplevel', () => {
    expect(built.kernel).toMatch(/\/boot\/vmlinuz-/);
    expect(built.initrd).toMatch(/-initrd-.*\/initrd$/);
  });

  it('reaches multi-user.target from a disk behind a SATA controller', async () => {
    const t = built.toplevel;
    const append = `root=LABEL=root init=${t}/init console=ttyS0,115200 systemd.show_status=1 panic=-1`;
    const r = await boot({ kernel: store.realFile(`${t}/kernel`), initrd: store.realFile(`${t}/initrd`), image, append, until: MULTI_USER, sata: true });
    // CAIRN_TEST_CONSOLE_LOG=FILE keeps the console of a passing boot too (to see where time goes).
    if (process.env.CAIRN_TEST_CONSOLE_LOG) writeFileSync(process.env.CAIRN_TEST_CONSOLE_LOG, r.console);
    if (!r.reached) process.stderr.write(`--- serial console (${r.seconds.toFixed(1)} s) ---\n${r.console}\n--- end of console ---\n`);
    else process.stderr.write(`multi-user.target reached after ${r.seconds.toFixed(1)} s (QEMU start to console line, TCG)\n`);
    expect(r.console).toContain('cairn stage 1: switching to');
    // The controller's driver and the SCSI disk driver were loaded for the hardware found.
    expect(r.console).toMatch(/cairn stage 1: mounting \/dev\/sda \(/);
    expect(r.reached).toBe(true);
  }, BOOT_TIMEOUT_MS + 30_000);

  it('stage 1 names a missing root device, then panics (no shell without boot.shell_on_fail)', async () => {
    const t = built.toplevel;
    const append = `root=LABEL=no-such-root rootdelay=2 init=${t}/init console=ttyS0,115200 panic=-1`;
    const r = await boot({ kernel: store.realFile(`${t}/kernel`), initrd: store.realFile(`${t}/initrd`), image, append, until: /Kernel panic/ });
    if (!r.reached) process.stderr.write(`--- serial console (${r.seconds.toFixed(1)} s) ---\n${r.console}\n--- end of console ---\n`);
    expect(r.console).toContain('cairn stage 1: error: the root device LABEL=no-such-root did not appear within 2s');
    expect(r.console).toContain('add boot.shell_on_fail to the kernel command line');
    expect(r.reached).toBe(true);
    // What a test's start() says of a machine that stopped so: the error and the panic, from
    // before the panic's stack trace.
    expect(stopReason(r.console)).toMatch(/^cairn stage 1: error: the root device LABEL=no-such-root did not appear within 2s \(block devices: [^)]*\); Kernel panic/);
  }, BOOT_TIMEOUT_MS + 30_000);
});
