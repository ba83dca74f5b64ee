/**
 * Image benchmark, all measured in one run:
 *   - assembly of a raw-efi image of examples/minimal.yaml from its built toplevel (target < 5 s);
 *   - its size against an ext4 image of a debootstrap minbase root with the same role (systemd,
 *     udev, kmod and a kernel), both as files on disk (sparse) and as apparent sizes;
 *   - time from QEMU start to multi-user.target (TCG): the cairn image under OVMF and systemd-boot,
 *     the cairn system by direct kernel boot, and the debootstrap root booted directly with
 *     Debian's own initramfs-tools initrd.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { projectRoot } from '../src/paths.js';
import { Store } from '../src/store/index.js';
import { buildSystem } from '../src/build/index.js';
import { evalConfigFile } from '../src/eval/index.js';
import { buildImage, findFormat, entryOptions } from '../src/image/index.js';
import { readBootspec } from '../src/toplevel/index.js';
import { ext4Bytes, treeBytes, treeEntries } from '../src/image/rootfs.js';
import { chooseAccelerator, OVMF_VARS, qemuArgs, RunningMachine, type QemuOptions } from '../src/vm/index.js';
import { debootstrapRoot, diskBytes, mb, seconds } from './build.js';

const MULTI_USER = /Reached target .*Multi-User System/;

/** Bytes a file occupies on disk (sparse files count their allocated blocks only). */
async function allocated(file: string): Promise<number> {
  return Number((await execa('du', ['-s', '-B1', file])).stdout.split(/\s/)[0]);
}

async function bootSeconds(opts: Omit<QemuOptions, 'accel' | 'memoryMiB' | 'cpus' | 'network'>): Promise<string> {
  const { accel } = await chooseAccelerator();
  const vm = RunningMachine.start(qemuArgs({ accel, memoryMiB: 1024, cpus: 2, network: null, ...opts }));
  try {
    const r = await vm.waitForConsole(MULTI_USER, 300_000);
    return r.matched ? `${r.seconds.toFixed(1)} s` : `did not reach multi-user.target (${r.reason})`;
  } finally {
    await vm.stop();
  }
}

export async function run(): Promise<void> {
  process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-bench-debian-cache');
  mkdirSync(process.env.CAIRN_DEBIAN_CACHE, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'cairn-bench-image-'));
  try {
    cpSync(join(projectRoot, 'examples'), join(work, 'examples'), { recursive: true });
    const store = Store.open(join(work, 'home'));
    const built = await buildSystem(await evalConfigFile(join(work, 'examples', 'minimal.yaml')), { store });
    const format = findFormat('raw');

    const times: number[] = [];
    let image = '';
    for (let i = 0; i < 3; i++) {
      image = join(work, `minimal-${i}.img`);
      const t = process.hrtime.bigint();
      await buildImage({ store, format, toplevels: [built.toplevel], output: image });
      times.push(seconds(t));
      if (i < 2) rmSync(image);
    }
    times.sort((a, b) => a - b);
    console.log(`raw-efi image of examples/minimal.yaml from its toplevel: ${times.map((s) => s.toFixed(2)).join(' / ')} s (min / median / max of 3; target < 5 s)`);
    const cairnFile = await allocated(image);
    const cairnApparent = statSync(image).size;
    console.log(`cairn image: ${mb(cairnFile)} on disk (sparse), ${mb(cairnApparent)} apparent (ESP + root with image.headroom free)`);

    const d = await debootstrapRoot(work);
    let debImage: string | undefined;
    if (d) {
      // Debian's root as an ext4 image sized the same way cairn sizes its own (contents + the same headroom).
      debImage = join(work, 'debootstrap.img');
      writeFileSync(join(d.dir, 'etc', 'fstab'), '/dev/vda / ext4 defaults 0 1\n');
      const size = ext4Bytes(await treeBytes(d.dir), await treeEntries(d.dir), 512 * 2 ** 20);
      await execa('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', d.dir, debImage, `${size / 1024}k`]);
      console.log(`debootstrap minbase + systemd, udev, kmod, kernel (ext4, same headroom): ${mb(await allocated(debImage))} on disk, ${mb(statSync(debImage).size)} apparent`);
      console.log(`ratio cairn / debootstrap image on disk: ${(cairnFile / (await allocated(debImage))).toFixed(2)}, apparent: ${(cairnApparent / statSync(debImage).size).toFixed(2)}`);
      const closureBytes = await diskBytes(built.closure.map((p) => store.toPhysical(p)));
      console.log(`cairn closure: ${built.closure.length} store paths, ${mb(closureBytes)} on disk (hard links once); debootstrap root ${mb(d.bytes)}; ratio ${(closureBytes / d.bytes).toFixed(2)}`);
    }

    const vars = join(work, 'vars.fd');
    copyFileSync(OVMF_VARS, vars);
    console.log(`QEMU start to multi-user.target, cairn image (OVMF, systemd-boot, cairn initrd): ${await bootSeconds({ uefiVars: vars, drives: [{ file: image, format: 'raw' }] })}`);
    const spec = readBootspec(store, built.toplevel);
    const direct = { kernel: store.realFile(spec.kernel), initrd: store.realFile(spec.initrd), append: entryOptions(spec, 'ttyS0,115200') };
    console.log(`QEMU start to multi-user.target, cairn system, direct kernel boot: ${await bootSeconds({ kernel: direct, drives: [{ file: image, format: 'raw' }] })}`);
    if (d && debImage) {
      const boot = join(d.dir, 'boot');
      const kernel = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
      const initrd = readdirSync(boot).find((f) => f.startsWith('initrd.img-'));
      if (kernel && initrd) {
        const initrdSize = statSync(join(boot, initrd)).size;
        const r = await bootSeconds({ kernel: { kernel: join(boot, kernel), initrd: join(boot, initrd), append: 'root=/dev/vda console=ttyS0,115200' }, drives: [{ file: debImage, format: 'raw' }] });
        console.log(`QEMU start to multi-user.target, debootstrap root, direct kernel boot with Debian's initramfs-tools initrd (${mb(initrdSize)}): ${r}`);
        console.log(`cairn initrd: ${mb(statSync(direct.initrd).size)}`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
