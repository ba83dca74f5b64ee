/**
 * Image benchmark, all measured in one run:
 *   - assembly of a raw-efi image of examples/minimal.yaml from its built toplevel (target < 5 s);
 *   - its size against an ext4 image of a debootstrap minbase root with the same role (systemd,
 *     udev, kmod and a kernel), both as files on disk (sparse) and as apparent sizes;
 *   - time from QEMU start to multi-user.target (TCG): the cairn image under OVMF and systemd-boot,
 *     the cairn system by direct kernel boot, and the debootstrap root booted directly with
 *     Debian's own initramfs-tools initrd; beside it, for comparison, a debootstrap root running
 *     the services cairn's minimal system runs.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, copyFileSync, writeFileSync } from 'node:fs';
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
import { directBootKernel, OVMF_VARS } from '../src/vm/index.js';
import { bootDebian, bootSeconds, debianBoot, debianImage, debianLabel, debianPvhKernel, describeBoot, enableSameServices, measureBoots, OVMF_REFERENCE_DEBIAN_SECONDS, OVMF_REFERENCE_SECONDS, ratioLine, SAME_SERVICES, type BootCase, type DebianBoot } from './boot.js';
import { debootstrapRoot, diskBytes, mb, seconds } from './build.js';

/** Bytes a file occupies on disk (sparse files count their allocated blocks only). */
async function allocated(file: string): Promise<number> {
  return Number((await execa('du', ['-s', '-B1', file])).stdout.split(/\s/)[0]);
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

    // Boot times: the image under OVMF, the same system by direct kernel boot, Debian's root with
    // its initramfs-tools initrd; alternating, fastest of each (see bench/boot.ts). The OVMF image
    // is built with the menu timeout at 0, as `cairn vm` sets it: the default 5 s menu is a wait
    // the user chose, not boot work.
    const spec = readBootspec(store, built.toplevel);
    // Direct kernel boot as `cairn vm` and `cairn test` do it (the kernel's PVH ELF), and with the bzImage.
    const direct = { kernel: await directBootKernel(store, spec.kernel), initrd: store.realFile(spec.initrd), append: entryOptions(spec, 'ttyS0,115200') };
    const directBz = { ...direct, kernel: store.realFile(spec.kernel) };
    const noMenu = await buildSystem(await evalConfigFile(join(work, 'examples', 'minimal.yaml'), { extraModules: [{ boot: { loader: { 'systemd-boot': { timeout: 0 } } } }] }), { store });
    const noMenuImage = join(work, 'minimal-menu0.img');
    await buildImage({ store, format, toplevels: [noMenu.toplevel], output: noMenuImage });
    const vars = join(work, 'vars.fd');
    const deb = d && debImage ? debianBoot(d.dir, debImage) : undefined;
    const debPvh = deb ? await debianPvhKernel(deb) : undefined;
    // The same root with the services cairn's minimal system runs: equal work on both sides. Not
    // issue 16's reference (the plain root above), shown beside it.
    let debSame: DebianBoot | undefined;
    if (deb) {
      const same = await debootstrapRoot(work, SAME_SERVICES, 'debootstrap-services');
      if (same) {
        await enableSameServices(same.dir);
        const img = join(work, 'debootstrap-services.img');
        await debianImage(same.dir, img);
        debSame = debianBoot(same.dir, img);
      }
    }
    const cases: BootCase[] = [
      {
        label: 'cairn image (OVMF, systemd-boot with menu timeout 0, cairn initrd)',
        boot: () => {
          copyFileSync(OVMF_VARS, vars);
          return bootSeconds({ uefiVars: vars, drives: [{ file: noMenuImage, format: 'raw' }] });
        },
      },
      { label: 'cairn system, direct kernel boot (PVH ELF, as cairn vm)', boot: () => bootSeconds({ kernel: direct, drives: [{ file: image, format: 'raw' }] }) },
      ...(deb ? [{ label: debianLabel(deb), boot: () => bootDebian(deb) }] : []),
      { label: 'cairn system, direct kernel boot of the bzImage', boot: () => bootSeconds({ kernel: directBz, drives: [{ file: image, format: 'raw' }] }) },
      ...(debPvh ? [{ label: `${debianLabel(deb!)}, its kernel's PVH ELF`, boot: () => bootDebian(deb!, debPvh) }] : []),
      ...(debSame ? [{ label: `${debianLabel(debSame)}, with cairn's default services on (networkd, resolved, D-Bus and logind, nftables)`, boot: () => bootDebian(debSame!) }] : []),
    ];
    const boots = await measureBoots(cases);
    for (const c of cases) console.log(`QEMU start to multi-user.target, ${c.label}: ${describeBoot(boots.get(c.label)!)}`);
    console.log(`cairn initrd: ${mb(statSync(direct.initrd).size)}`);
    const best = (label?: string) => (label === undefined ? 'not measured' : boots.get(label)!.best);
    const [ovmf, cairnDirect, debian, cairnBz] = cases.slice(0, 4).map((c) => best(c.label));
    const debianPvh = best(cases.find((c) => c.label.endsWith("its kernel's PVH ELF"))?.label);
    const debianSame = best(cases.find((c) => c.label.includes("cairn's default services"))?.label);
    if (deb) {
      console.log(ratioLine('boot ratio cairn direct kernel boot / Debian initramfs-tools, same run', cairnDirect!, debian!, 0.7));
      // The same kernel entry on both sides: what cairn's initrd and system do, without the PVH gain.
      console.log(ratioLine('boot ratio, both bzImage', cairnBz!, debian!, 0.7));
      if (debPvh) console.log(ratioLine('boot ratio, both PVH ELF', cairnDirect!, debianPvh, 0.7));
      if (debSame) console.log(ratioLine("boot ratio cairn direct kernel boot / Debian running cairn's default services (equal work; not the issue's reference)", cairnDirect!, debianSame, 0.7));
    }
    console.log(ratioLine(`boot ratio cairn OVMF + systemd-boot / fixed reference of ${OVMF_REFERENCE_SECONDS} s (measured when issue 16 was opened, not this run)`, ovmf!, OVMF_REFERENCE_SECONDS, 0.7));
    if (deb && typeof debian === 'number') {
      const scaled = (OVMF_REFERENCE_SECONDS * debian) / OVMF_REFERENCE_DEBIAN_SECONDS;
      console.log(ratioLine(`boot ratio cairn OVMF + systemd-boot / that reference at this run's speed (${OVMF_REFERENCE_SECONDS} s x Debian's ${debian.toFixed(1)} s now / its ${OVMF_REFERENCE_DEBIAN_SECONDS} s then = ${scaled.toFixed(1)} s)`, ovmf!, scaled, 0.7));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
