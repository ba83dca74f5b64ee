/**
 * Disk images boot under UEFI: OVMF runs the image's systemd-boot, which boots the default
 * generation's entry; choosing the other entry (loader.conf's default, changed on the ESP with
 * mtools) boots the other generation. The console proves which: stage 1 names the generation it
 * switches to, and the login prompt carries that generation's host name.
 *
 * Generation 2 is the server example (openssh, nginx, users, static network, a timer), so this
 * is also the check that its image reaches multi-user.target.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store, removeTree } from '../../src/store/index.js';
import { buildSystem, type BuiltSystem } from '../../src/build/index.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { buildImage, findFormat, loaderConf, type BuiltImage } from '../../src/image/index.js';
import { readBootspec } from '../../src/toplevel/index.js';
import { OVMF_VARS, qemuArgs, QEMU, RunningMachine } from '../../src/vm/index.js';
import { GUEST_CPUS, SLOT_WAIT_MS, takeSlot, type Release } from './qemu-slots.js';

const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;
process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const repo = resolve(import.meta.dirname, '../..');

/** OVMF, systemd-boot and a TCG boot of the server: 40–70 s here; the rest is headroom for loaded CI machines. */
const BOOT_TIMEOUT_MS = 300_000;
/**
 * The witness of multi-user.target: a unit of the test's own, ordered after the target, writes the
 * target's state to the console. systemd's status line (`Reached target … Multi-User System`) is
 * no witness once a login prompt is on the console: serial-getty@ttyS0 is Type=idle, waits at most
 * 5 s for the boot's jobs, and when it starts before they end, PID 1 writes no more status there
 * (the console is the getty's). The server example's first boot makes its host keys in
 * sshd-keygen.service, over 10 s of CPU under TCG, so its later lines never show though it ends.
 */
const REPORT_MULTI_USER = {
  systemd: {
    services: {
      'image-boot-report': {
        description: 'Report multi-user.target on the console',
        wantedBy: ['multi-user.target'],
        after: ['multi-user.target'],
        serviceConfig: { Type: 'oneshot' },
        script: 'echo "image-boot: multi-user.target is $(systemctl is-active multi-user.target)" >/dev/console',
      },
    },
  },
};
const MULTI_USER = /image-boot: multi-user\.target is active/;
/** Both multi-user.target and the login prompt, in either order: getty does not wait for the rest of multi-user.target. */
const MULTI_USER_AND_LOGIN = (host: string) => new RegExp(`${MULTI_USER.source}[\\s\\S]*${host} login:|${host} login:[\\s\\S]*${MULTI_USER.source}`);

describe.skipIf(!hasQemu)('a two-generation image boots under OVMF', () => {
  let store: Store;
  let work: string;
  let one: BuiltSystem;
  let server: BuiltSystem;
  let image: BuiltImage;

  beforeAll(async () => {
    store = Store.open(STORE_HOME);
    work = mkdtempSync(join(tmpdir(), 'cairn-image-boot-'));
    const first = join(work, 'one.yaml');
    writeFileSync(first, 'networking:\n  hostName: gen-one\nsystem:\n  stateVersion: "0.1"\n');
    one = await buildSystem(await evalConfigFile(first), { store });
    // The example outside the checkout, with the module it imports.
    mkdirSync(join(work, 'modules'));
    copyFileSync(join(repo, 'examples', 'server.yaml'), join(work, 'server.yaml'));
    cpSync(join(repo, 'examples', 'modules'), join(work, 'modules'), { recursive: true });
    server = await buildSystem(await evalConfigFile(join(work, 'server.yaml'), { extraModules: [REPORT_MULTI_USER] }), { store });
    image = await buildImage({ store, format: findFormat('raw'), toplevels: [one.toplevel, server.toplevel], output: join(work, 'disk.img') });
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

  /** Boots `disk` with fresh UEFI variables until the console shows `until`. */
  async function boot(disk: string, until: RegExp): Promise<{ reached: boolean; console: string; seconds: number }> {
    const vars = join(work, `vars-${Date.now()}.fd`);
    copyFileSync(OVMF_VARS, vars);
    const vm = RunningMachine.start(qemuArgs({ accel: 'tcg', memoryMiB: 1024, cpus: GUEST_CPUS, uefiVars: vars, drives: [{ file: disk, format: 'raw' }], network: null }));
    try {
      const r = await vm.waitForConsole(until, BOOT_TIMEOUT_MS);
      if (!r.matched) process.stderr.write(`--- serial console (${r.seconds.toFixed(1)} s, ${r.reason}) ---\n${vm.console}\n--- end of console ---\n`);
      return { reached: r.matched, console: vm.console, seconds: r.seconds };
    } finally {
      await vm.stop();
    }
  }

  it('boots the default entry, the newest generation (the server example), to multi-user.target', async () => {
    const r = await boot(image.output, MULTI_USER_AND_LOGIN('web1'));
    expect(r.console).toContain(`cairn stage 1: switching to ${server.toplevel}/init`);
    expect(r.console).toMatch(MULTI_USER);
    expect(r.reached).toBe(true);
    process.stderr.write(`image boot (OVMF, systemd-boot, TCG): multi-user.target and login prompt after ${r.seconds.toFixed(1)} s\n`);
  }, BOOT_TIMEOUT_MS + 30_000);

  it('boots generation 1 when loader.conf names its entry', async () => {
    const disk = join(work, 'disk-gen1.img');
    await execa('cp', ['--sparse=always', image.output, disk]);
    const esp = image.layout.partitions[0]!;
    const conf = join(work, 'loader.conf');
    writeFileSync(conf, loaderConf(readBootspec(store, server.toplevel).loader!, 1));
    await execa('mcopy', ['-o', '-i', `${disk}@@${esp.offset}`, conf, '::/loader/loader.conf']);
    const r = await boot(disk, /gen-one login:/);
    expect(r.console).toContain(`cairn stage 1: switching to ${one.toplevel}/init`);
    expect(r.console).not.toContain(server.toplevel);
    expect(r.reached).toBe(true);
  }, BOOT_TIMEOUT_MS + 30_000);
});
