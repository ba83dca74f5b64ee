/**
 * Kernel metadata and the initrd from Debian's real kernel and busybox-static: depmod output,
 * module closures that honour soft dependencies, what the initrd holds, and that it is
 * reproducible. The packages come from the archive the host's apt configuration names; the store
 * and download cache persist in the temporary folder across runs.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { lockPackages, realisePackages } from '../../src/debian/index.js';
import { removeTree, Store } from '../../src/store/index.js';
import { parseCpio } from '../../src/build/cpio.js';
import { depmodDerivation, kernelInfo, moduleClosure, moduleName, readModuleIndex, type KernelInfo, type ModuleIndex } from '../../src/build/kernel.js';
import { buildInitrd, initrdDerivations } from '../../src/build/initrd.js';

process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-vm-home');

/** A small hand-made index: the shape of the real one, without a kernel. */
function fakeIndex(): ModuleIndex {
  const deps: [string, string[]][] = [
    ['kernel/fs/ext4/ext4.ko', ['kernel/lib/crc16.ko', 'kernel/fs/mbcache.ko', 'kernel/fs/jbd2/jbd2.ko']],
    ['kernel/lib/crc16.ko', []],
    ['kernel/fs/mbcache.ko', []],
    ['kernel/fs/jbd2/jbd2.ko', []],
    ['kernel/crypto/crc32c_generic.ko', []],
    ['kernel/drivers/block/virtio_blk.ko', ['kernel/drivers/virtio/virtio.ko', 'kernel/drivers/virtio/virtio_ring.ko']],
    ['kernel/drivers/virtio/virtio.ko', ['kernel/drivers/virtio/virtio_ring.ko']],
    ['kernel/drivers/virtio/virtio_ring.ko', []],
  ];
  return {
    files: new Map(deps.map(([p]) => [moduleName(p), p])),
    deps: new Map(deps),
    softdeps: new Map([['ext4', { pre: ['crypto-crc32c'], post: [] }]]),
    aliases: [{ pattern: 'crypto-crc32c', regex: undefined, module: 'crc32c_generic' }],
    builtin: new Set(['unix']),
  };
}

describe('module closure', () => {
  it('loads pre-softdeps, then dependencies, then the module', () => {
    const order = moduleClosure(fakeIndex(), ['ext4']).map(moduleName);
    expect(order).toEqual(['crc32c_generic', 'crc16', 'mbcache', 'jbd2', 'ext4']);
  });

  it('orders transitive dependencies and lists each module once; built-ins need nothing', () => {
    const order = moduleClosure(fakeIndex(), ['virtio_blk', 'virtio-ring', 'unix']).map(moduleName);
    expect(order).toEqual(['virtio_ring', 'virtio', 'virtio_blk']);
  });

  it('names a module it does not know', () => {
    expect(() => moduleClosure(fakeIndex(), ['nosuchmodule'])).toThrow(/'nosuchmodule'/);
  });
});

describe('with the Debian kernel', () => {
  let store: Store;
  let kernel: KernelInfo;
  let busybox: string;
  let pkgs: string[];
  let meta: string;

  beforeAll(async () => {
    store = Store.open(STORE_HOME);
    const { lock, repositories } = await lockPackages({ packages: ['linux-image-amd64', 'busybox-static'] });
    const realised = await realisePackages(lock, repositories, store);
    pkgs = realised.map((p) => p.storePath);
    busybox = realised.find((p) => p.name === 'busybox-static')!.storePath;
    kernel = kernelInfo(store, pkgs);
    meta = await store.build(depmodDerivation(kernel));
  }, 600_000);

  it('finds the kernel behind the linux-image-amd64 metapackage', () => {
    // 6.1.0-41-amd64 (Debian 12), 6.12.48+deb13-amd64 (Debian 13).
    expect(kernel.version).toMatch(/^\d+\.\d+\.\d+(-\d+|\+deb\d+)-amd64$/);
    expect(kernel.storePath).toContain(`linux-image-${kernel.version}`);
    expect(existsSync(join(store.toPhysical(kernel.storePath), kernel.image))).toBe(true);
  });

  it('depmod output: modules.dep and friends, none of the files the package ships', () => {
    const dir = join(store.toPhysical(meta), kernel.modulesDir);
    const files = readdirSync(dir);
    for (const f of ['modules.dep', 'modules.dep.bin', 'modules.alias', 'modules.softdep', 'modules.symbols']) expect(files).toContain(f);
    const shipped = readdirSync(join(store.toPhysical(kernel.storePath), kernel.modulesDir));
    expect(files.filter((f) => shipped.includes(f))).toEqual([]);
    // Debian 13's modules are xz-compressed (ext4.ko.xz).
    expect(readFileSync(join(dir, 'modules.dep'), 'utf8')).toMatch(/^kernel\/fs\/ext4\/ext4\.ko(\.xz)?: .*jbd2\.ko/m);
  });

  it('ext4 pulls crc32c_generic in first (a softdep modules.dep does not list)', () => {
    const index = readModuleIndex(join(store.toPhysical(meta), kernel.modulesDir), join(store.toPhysical(kernel.storePath), kernel.modulesDir));
    const order = moduleClosure(index, ['virtio_pci', 'virtio_blk', 'ext4']).map(moduleName);
    expect(order.indexOf('crc32c_generic')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('crc32c_generic')).toBeLessThan(order.indexOf('ext4'));
    for (const dep of ['jbd2', 'mbcache', 'crc16']) expect(order.indexOf(dep)).toBeLessThan(order.indexOf('ext4'));
    // The virtio core, where it is a module (Debian 12's kernel; 13's builds it in), comes first.
    if ([...index.deps.keys()].some((rel) => moduleName(rel) === 'virtio')) {
      expect(order.indexOf('virtio_ring')).toBeLessThan(order.indexOf('virtio'));
      expect(order.indexOf('virtio')).toBeLessThan(order.indexOf('virtio_blk'));
    }
    expect(order.indexOf('virtio_blk')).toBeGreaterThanOrEqual(0);
  });

  it('the initrd holds stage 1, busybox with applets and the modules in load order', async () => {
    const out = await buildInitrd(store, {
      kernelPkgPath: pkgs,
      busyboxPkgPath: busybox,
      modules: ['virtio_pci', 'virtio_blk', 'ext4'],
      fileSystems: [{ device: 'LABEL=root', mountPoint: '/', fsType: 'ext4', options: 'defaults' }],
    });
    const entries = parseCpio(readFileSync(join(store.toPhysical(out), 'initrd')));
    const by = new Map(entries.map((e) => [e.path, e]));
    expect(by.get('init')!.data.toString()).toMatch(/^#!\/bin\/sh/);
    expect(by.get('init')!.mode & 0o111).toBe(0o111);
    expect(by.get('bin/busybox')!.data.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    for (const applet of ['sh', 'mount', 'switch_root', 'insmod', 'findfs']) expect(by.get(`bin/${applet}`)?.data.toString()).toBe('busybox');
    expect(by.get('dev/console')).toMatchObject({ rmajor: 5, rminor: 1 });
    const load = by.get('etc/cairn/modules')!.data.toString().trim().split('\n');
    for (const m of load) expect(by.has(m.slice(1))).toBe(true);
    // Uncompressed (Debian 13 ships .ko.xz): stage 1 loads them without decompressing each.
    const modules = entries.filter((e) => /\.ko/.test(e.path));
    expect(modules.length).toBeGreaterThan(3);
    for (const m of modules) expect([m.path.endsWith('.ko'), m.data.subarray(0, 4).toString('latin1')]).toEqual([true, '\x7fELF']);
    const dep = [...by.entries()].find(([p]) => p.endsWith('/modules.dep'))![1].data.toString();
    expect(dep).toMatch(/ext4\.ko: .*jbd2\.ko/);
    expect(dep).not.toMatch(/\.xz/);
    const names = load.map(moduleName);
    expect(names.indexOf('crc32c_generic')).toBeLessThan(names.indexOf('ext4'));
    expect(by.get('etc/cairn/fstab')!.data.toString()).toBe('LABEL=root / ext4 defaults\n');
  });

  it("loads only `load` always; the others by modalias through busybox modprobe, with their dependencies", async () => {
    const out = await buildInitrd(store, {
      kernelPkgPath: kernel.storePath,
      busyboxPkgPath: busybox,
      modules: ['virtio_pci', 'virtio_blk', 'ahci', 'ext4'],
      load: ['ext4'],
      fileSystems: [{ device: 'LABEL=root', mountPoint: '/', fsType: 'ext4', options: 'defaults' }],
    });
    const entries = parseCpio(readFileSync(join(store.toPhysical(out), 'initrd')));
    const load = entries.find((e) => e.path === 'etc/cairn/modules')!.data.toString().trim().split('\n').map(moduleName);
    expect(load).toContain('ext4');
    expect(load).not.toContain('virtio_blk');
    expect(load).not.toContain('ahci');
    expect(entries.find((e) => e.path === 'bin/modprobe')?.data.toString()).toBe('busybox');

    // busybox modprobe itself, in a root made of the initrd's files (under the host's kernel
    // release, the one it looks for), asked what loading a virtio disk and a SATA controller takes.
    const root = mkdtempSync(join(tmpdir(), 'cairn-initrd-root-'));
    try {
      const release = (await execa('uname', ['-r'])).stdout.trim();
      for (const e of entries) {
        if ((e.mode & 0o170000) !== 0o100000 || !(e.path.startsWith('lib/modules/') || e.path === 'bin/busybox')) continue;
        const dest = join(root, e.path.replace(`lib/modules/${kernel.version}/`, `lib/modules/${release}/`));
        mkdirSync(dirname(dest), { recursive: true });
        writeFileSync(dest, e.data, { mode: 0o755 });
      }
      const probe = async (): Promise<{ loads: string[]; stderr: string }> => {
        const dry = await execa('chroot', [root, '/bin/busybox', 'modprobe', '-D', '-a', 'virtio:d00000002v00001AF4', 'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01'], { reject: false });
        return { loads: dry.stdout.split('\n').filter((l) => l.startsWith('insmod ')).map(moduleName), stderr: dry.stderr };
      };
      // The SATA controller's driver (its probe waits for every port's link) is not loaded for its
      // device at first: its alias is kept aside until stage 1 misses a device.
      const early = await probe();
      expect(early.loads).toContain('virtio_blk');
      expect(early.loads).not.toContain('ahci');
      expect(early.stderr).toMatch(/pci:v00008086d00002922\S* not found/);
      const late = entries.find((e) => e.path === 'etc/cairn/modules.alias.late')!.data.toString();
      expect(late).toMatch(/^alias pci:\S+ ahci$/m);
      expect(late).not.toMatch(/ (virtio_blk|virtio_pci|ext4)$/m);
      // What stage 1's add_late_drivers does: its aliases join the others.
      appendFileSync(join(root, 'lib/modules', release, 'modules.alias'), late);
      const { loads, stderr } = await probe();
      expect(stderr).toBe('');
      expect(loads).toEqual(expect.arrayContaining(['virtio_blk', 'libata', 'libahci', 'ahci']));
      // The virtio core, where it is a module (Debian 12; 13 builds it in), before the disk driver.
      if (entries.some((e) => /\/virtio_ring\.ko/.test(e.path))) expect(loads.indexOf('virtio_ring')).toBeLessThan(loads.indexOf('virtio_blk'));
      expect(loads.indexOf('libata')).toBeLessThan(loads.indexOf('ahci'));
      // A device no module of the initrd drives loads nothing.
      const none = await execa('chroot', [root, '/bin/busybox', 'modprobe', '-D', 'pci:v0000FFFFd00000001sv0sd0bc02sc00i00'], { reject: false });
      expect(none.stdout).not.toMatch(/insmod/);
    } finally {
      removeTree(root);
    }

    // boot.blacklistedKernelModules: the SATA controller's alias loads nothing any more, the disk's still does.
    const blacklisted = await buildInitrd(store, {
      kernelPkgPath: kernel.storePath,
      busyboxPkgPath: busybox,
      modules: ['virtio_pci', 'virtio_blk', 'ahci', 'ext4'],
      load: ['ext4'],
      blacklist: ['ahci'],
      fileSystems: [{ device: 'LABEL=root', mountPoint: '/', fsType: 'ext4', options: 'defaults' }],
    });
    expect(blacklisted).not.toBe(out);
    const blacklistedEntries = parseCpio(readFileSync(join(store.toPhysical(blacklisted), 'initrd')));
    const aliases = blacklistedEntries.find((e) => e.path.endsWith('/modules.alias'))!.data.toString();
    expect(aliases).toMatch(/ virtio_blk\n/);
    expect(aliases).not.toMatch(/ ahci\n/);
    const lateAliases = blacklistedEntries.find((e) => e.path === 'etc/cairn/modules.alias.late')?.data.toString() ?? '';
    expect(lateAliases).not.toMatch(/ ahci\n/);
  });

  it('is reproducible: same inputs, same store path; the builder writes the same bytes again', async () => {
    const opts = { kernelPkgPath: kernel.storePath, busyboxPkgPath: busybox, modules: ['ext4'] };
    const a = await buildInitrd(store, opts);
    expect(await buildInitrd(store, opts)).toBe(a);
    const bytes = readFileSync(join(store.toPhysical(a), 'initrd'));
    const { initrd } = initrdDerivations(store, opts);
    expect(store.outputPath(initrd)).toBe(a);
    // Rebuilt in an empty store from the same packages: the same store path and the same bytes.
    const { lock, repositories } = await lockPackages({ packages: ['linux-image-amd64', 'busybox-static'] });
    const other = Store.open(join(tmpdir(), `cairn-initrd-repro-${process.pid}`));
    try {
      const realised = await realisePackages(lock, repositories, other);
      const again = await buildInitrd(other, { ...opts, kernelPkgPath: kernelInfo(other, realised.map((p) => p.storePath)).storePath, busyboxPkgPath: realised.find((p) => p.name === 'busybox-static')!.storePath });
      expect(again).toBe(a);
      expect(readFileSync(join(other.toPhysical(again), 'initrd')).equals(bytes)).toBe(true);
    } finally {
      removeTree(other.home);
    }
  }, 600_000);
});
