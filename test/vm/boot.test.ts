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
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, mkdtempSync, readlinkSync, lstatSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { buildSystem, type BuiltSystem } from '../../src/build/system.js';
import { stageRootTree, makeExt4Image } from '../../src/image/rootfs.js';
import { removeTree, Store } from '../../src/store/index.js';
import { LOGICAL_STORE } from '../../src/paths.js';

const QEMU = 'qemu-system-x86_64';
const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;

process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-vm-home');

/** Boot budget: TCG boots of such a system take 12–25 s here; the rest is headroom for loaded CI machines. */
const BOOT_TIMEOUT_MS = 180_000;
const MULTI_USER = /Reached target .*Multi-User System/;
/** Console lines after which waiting longer is pointless. */
const FATAL = /Kernel panic|cairn stage 1: error|Freezing execution|You are in emergency mode/;

/**
 * The host file behind a path in the store, following symlinks: links in store objects name
 * `/cairn/store/…`, which only exists inside the built system.
 */
function physical(store: Store, p: string): string {
  let cur = p;
  for (let hops = 0; hops < 40; hops++) {
    const phys = cur.startsWith(LOGICAL_STORE + '/') ? store.toPhysical(cur) : cur;
    if (!lstatSync(phys).isSymbolicLink()) return phys;
    cur = resolve(dirname(cur), readlinkSync(phys));
  }
  throw new Error(`${p}: too many symlinks`);
}

interface BootResult {
  reached: boolean;
  seconds: number;
  console: string;
}

/**
 * Boots the image with the toplevel's kernel and initrd and resolves when the console shows
 * `until`, a fatal line, QEMU exits, or the timeout passes; the VM is killed then.
 */
async function boot(opts: { kernel: string; initrd: string; image: string; append: string; until: RegExp }): Promise<BootResult> {
  const args = [
    '-machine', 'q35', '-accel', 'tcg', '-m', '1024', '-smp', '2',
    '-kernel', opts.kernel, '-initrd', opts.initrd, '-append', opts.append,
    '-drive', `file=${opts.image},if=virtio,format=raw`,
    '-nographic', '-no-reboot', '-nic', 'none',
  ];
  const start = performance.now();
  const vm: ResultPromise = execa(QEMU, args, { reject: false, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: false, forceKillAfterDelay: 2000 });
  let console = '';
  const outcome = await new Promise<boolean>((done) => {
    const timer = setTimeout(() => done(false), BOOT_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      console += chunk.toString('utf8');
      if (opts.until.test(console)) {
        clearTimeout(timer);
        done(true);
      } else if (FATAL.test(console)) {
        clearTimeout(timer);
        // Let the rest of the message reach the log before giving up.
        setTimeout(() => done(false), 2000);
      }
    };
    vm.stdout!.on('data', onData);
    vm.stderr!.on('data', onData);
    void vm.then(() => {
      clearTimeout(timer);
      done(opts.until.test(console));
    });
  });
  const seconds = (performance.now() - start) / 1000;
  vm.kill('SIGTERM');
  await vm;
  return { reached: outcome, seconds, console };
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
    writeFileSync(config, ['networking:', '  hostName: cairn-vm', 'system:', '  stateVersion: "0.1"', ''].join('\n'));
    built = await buildSystem(config, { store });
    const root = join(work, 'root');
    mkdirSync(root);
    await stageRootTree(store, { toplevel: built.toplevel, dir: root });
    image = join(work, 'root.img');
    await makeExt4Image({ dir: root, image, label: 'root' });
    removeTree(root);
  }, 900_000);

  afterAll(() => {
    if (work) removeTree(work);
  });

  it('has a kernel and cairn initrd in the toplevel', () => {
    expect(built.kernel).toMatch(/\/boot\/vmlinuz-/);
    expect(built.initrd).toMatch(/-initrd-.*\/initrd$/);
  });

  it('reaches multi-user.target', async () => {
    const t = built.toplevel;
    const append = `root=LABEL=root init=${t}/init console=ttyS0,115200 systemd.show_status=1 panic=-1`;
    const r = await boot({ kernel: physical(store, `${t}/kernel`), initrd: physical(store, `${t}/initrd`), image, append, until: MULTI_USER });
    // CAIRN_TEST_CONSOLE_LOG=FILE keeps the console of a passing boot too (to see where time goes).
    if (process.env.CAIRN_TEST_CONSOLE_LOG) writeFileSync(process.env.CAIRN_TEST_CONSOLE_LOG, r.console);
    if (!r.reached) process.stderr.write(`--- serial console (${r.seconds.toFixed(1)} s) ---\n${r.console}\n--- end of console ---\n`);
    else process.stderr.write(`multi-user.target reached after ${r.seconds.toFixed(1)} s (QEMU start to console line, TCG)\n`);
    expect(r.console).toContain('cairn stage 1: switching to');
    expect(r.reached).toBe(true);
  }, BOOT_TIMEOUT_MS + 30_000);

  it('stage 1 names a missing root device, then panics (no shell without boot.shell_on_fail)', async () => {
    const t = built.toplevel;
    const append = `root=LABEL=no-such-root rootdelay=2 init=${t}/init console=ttyS0,115200 panic=-1`;
    const r = await boot({ kernel: physical(store, `${t}/kernel`), initrd: physical(store, `${t}/initrd`), image, append, until: /Kernel panic/ });
    if (!r.reached) process.stderr.write(`--- serial console (${r.seconds.toFixed(1)} s) ---\n${r.console}\n--- end of console ---\n`);
    expect(r.console).toContain('cairn stage 1: error: the root device LABEL=no-such-root did not appear within 2s');
    expect(r.console).toContain('add boot.shell_on_fail to the kernel command line');
    expect(r.reached).toBe(true);
  }, BOOT_TIMEOUT_MS + 30_000);
});
