/**
 * The kernel modules a system ships: the default set for VMs and common servers with its
 * dependencies, what `boot.kernelModules` adds, the whole tree with `hardware.enableAllHardware`,
 * module metadata that the host's modprobe resolves within the reduced tree, and errors for a
 * name that is no module. Built against the real Debian archive (CAIRN_DEBIAN_CACHE).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { collectGarbage, Store } from '../../src/store/index.js';
import { readBootspec } from '../../src/toplevel/index.js';
import { directBootKernel } from '../../src/vm/index.js';
import { bzImagePayload, hasPvhEntry } from '../../src/vm/kernel-elf.js';
import { buildSystem, type BuiltSystem } from '../../src/build/index.js';
import { LOADABLE, MODPROBE_DROPIN } from '../../src/build/kernel.js';
import { evalConfigFile } from '../../src/eval/index.js';

const CACHE = join(tmpdir(), 'cairn-test-debian-cache');
process.env.CAIRN_DEBIAN_CACHE = CACHE;
const repo = resolve(import.meta.dirname, '../..');

let work: string;
let store: Store;
let minimal: BuiltSystem;

function variant(name: string, extra: string): string {
  const file = join(work, 'configs', `${name}.yaml`);
  writeFileSync(file, `imports: [./minimal.yaml]\n${extra}`);
  return file;
}

const build = async (file: string): Promise<BuiltSystem> => buildSystem(await evalConfigFile(file), { store });

/** The system's sw (its /usr, where modprobe looks) and the kernel release (from where its `kernel` link points). */
function kernelTree(sys: BuiltSystem): { root: string; version: string } {
  const image = readlinkSync(join(store.toPhysical(sys.toplevel), 'kernel'));
  return { root: store.toPhysical(sys.sw), version: image.slice(image.lastIndexOf('vmlinuz-') + 'vmlinuz-'.length) };
}

/** Module names (underscores) under the system's /usr/lib/modules, as sw holds them. */
async function swModules(sys: BuiltSystem, version: string): Promise<Set<string>> {
  const dir = join(store.toPhysical(sys.sw), 'usr/lib/modules', version, 'kernel');
  const r = await execa('find', [dir, '-name', '*.ko*']);
  return new Set(r.stdout.split('\n').filter(Boolean).map(nameOf));
}

const nameOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1).replace(/\.ko.*$/, '').replace(/-/g, '_');

/** What the kernel has built in (modules.builtin): no file to ship for those. */
function builtIn(sys: BuiltSystem, version: string): Set<string> {
  return new Set(readFileSync(join(store.toPhysical(sys.sw), 'usr/lib/modules', version, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map(nameOf));
}

/** `modprobe --show-depends` with the host's kmod against a tree: the files loading `name` inserts. */
async function showDepends(root: string, version: string, name: string): Promise<{ ok: boolean; files: string[] }> {
  const r = await execa('modprobe', ['-d', join(root, 'usr'), '-S', version, '--show-depends', name], { reject: false });
  return { ok: r.exitCode === 0, files: r.stdout.split('\n').filter((l) => l.startsWith('insmod ')).map((l) => l.split(/\s+/)[1]!) };
}

beforeAll(async () => {
  mkdirSync(CACHE, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'cairn-kmod-test-'));
  mkdirSync(join(work, 'configs'));
  copyFileSync(join(repo, 'examples', 'minimal.yaml'), join(work, 'configs', 'minimal.yaml'));
  store = Store.open(join(work, 'home'));
  minimal = await build(join(work, 'configs', 'minimal.yaml'));
}, 900_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('kernel modules of examples/minimal.yaml', () => {
  it('ships the default set with its dependencies, not the kernel package and its whole tree', async () => {
    expect(minimal.closure.some((p) => /-linux-image-\d/.test(p))).toBe(false);
    expect(minimal.closure.some((p) => /-linux-modules-\d/.test(p))).toBe(true);
    const { version } = kernelTree(minimal);
    const mods = await swModules(minimal, version);
    const builtin = builtIn(minimal, version);
    // VM and server hardware, file systems, the firewall's nftables modules, and dependencies (jbd2 of ext4, virtio_ring…):
    // each a module of the tree or built into the kernel (Debian 13's has virtio_console in it).
    for (const m of ['virtio_net', 'virtio_blk', 'virtio_console', 'e1000e', 'nvme', 'ahci', 'ext4', 'jbd2', 'vfat', 'nls_cp437', 'nls_ascii', 'autofs4', 'loop', 'tun', 'bridge', '8021q', 'wireguard', 'nf_tables', 'nft_ct', 'nf_conntrack', 'dm_crypt']) {
      expect(mods.has(m) || builtin.has(m), m).toBe(true);
    }
    expect(mods.has('ext4') && mods.has('virtio_net')).toBe(true);
    // No sound, GPU or wireless drivers.
    for (const m of ['snd_hda_intel', 'amdgpu', 'i915', 'nouveau', 'iwlwifi']) expect(mods, m).not.toContain(m);
    expect(mods.size).toBeLessThan(600);
  });

  it("holds module metadata for the reduced tree: the host's modprobe resolves within it", async () => {
    const { root, version } = kernelTree(minimal);
    const ext4 = await showDepends(root, version, 'ext4');
    expect(ext4.ok).toBe(true);
    // Dependencies (jbd2, mbcache) and the soft dependency crc32c, all inside the tree, before ext4.
    // (xz-compressed in Debian 13: ext4.ko.xz)
    expect(ext4.files.map(nameOf)).toEqual(expect.arrayContaining(['jbd2', 'mbcache', 'ext4']));
    expect(ext4.files.at(-1)).toMatch(/ext4\.ko(\.xz)?$/);
    for (const f of ext4.files) expect(existsSync(f), f).toBe(true);
    expect((await showDepends(root, version, 'virtio_net')).ok).toBe(true);
    // Found by alias, as the kernel asks for nft expressions.
    expect((await showDepends(root, version, 'nft-expr-ct')).ok).toBe(true);
    expect((await showDepends(root, version, 'snd_hda_intel')).ok).toBe(false);
  });

  it('names its modules for modprobe@.service, which skips any other name', async () => {
    const { root, version } = kernelTree(minimal);
    const dir = join(root, LOADABLE(version));
    const names = new Set(readdirSync(dir));
    // Every module of the tree, under both spellings of its name, linked to its file.
    const mods = await swModules(minimal, version);
    for (const m of mods) expect(names.has(m) && names.has(m.replace(/_/g, '-')), m).toBe(true);
    expect(realpathSync(join(dir, 'virtio-net'))).toMatch(/\/kernel\/drivers\/net\/virtio_net\.ko(\.xz)?$/);
    expect(statSync(join(dir, 'ext4')).size).toBeGreaterThan(0);
    // What logind and the configfs mount ask for: not in the tree (nor built in), so not named.
    for (const m of ['drm', 'configfs']) expect(names.has(m) || builtIn(minimal, version).has(m), m).toBe(false);
    expect(readFileSync(join(root, MODPROBE_DROPIN), 'utf8')).toContain('\n[Unit]\nConditionPathExists=/usr/lib/cairn/kernel-modules/%v/%i\n');
  });

  it("lists the tree's on-demand device nodes for tmpfiles, as kmod static-nodes would at every boot", async () => {
    const { root, version } = kernelTree(minimal);
    // No modules.devname: kmod-static-nodes.service is skipped (ConditionFileNotEmpty).
    expect(existsSync(join(root, 'usr/lib/modules', version, 'modules.devname'))).toBe(false);
    const lines = readFileSync(join(root, 'usr/lib/tmpfiles.d/static-nodes.conf'), 'utf8').split('\n').filter(Boolean);
    // tun, loop and autofs4 are modules of the tree: their nodes, /dev/net made first.
    expect(lines).toEqual(expect.arrayContaining(['d /dev/net 0755 - - -', 'c! /dev/net/tun 0600 - - - 10:200', 'c! /dev/loop-control 0600 - - - 10:237', 'c! /dev/autofs 0600 - - - 10:235']));
    expect(lines.indexOf('d /dev/net 0755 - - -')).toBeLessThan(lines.indexOf('c! /dev/net/tun 0600 - - - 10:200'));
    // One node per line of the modules.devname depmod writes for the same tree (regenerated in a copy).
    const copy = join(work, 'devname');
    mkdirSync(join(copy, 'lib/modules'), { recursive: true });
    await execa('cp', ['-rL', join(root, 'usr/lib/modules', version), join(copy, 'lib/modules', version)]);
    await execa('depmod', ['-b', copy, version]);
    const devname = readFileSync(join(copy, 'lib/modules', version, 'modules.devname'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines.filter((l) => !l.startsWith('d ')).length).toBe(devname.length);
  });
});

describe('options choosing the modules', () => {
  it('boot.kernelModules brings a module and its dependencies in, and loads it at boot', async () => {
    const sys = await build(variant('sound', 'boot:\n  kernelModules: [snd_hda_intel]\n  blacklistedKernelModules: [pcspkr]\n'));
    const { root, version } = kernelTree(sys);
    const mods = await swModules(sys, version);
    for (const m of ['snd_hda_intel', 'snd_hda_codec', 'snd_pcm', 'snd']) expect(mods, m).toContain(m);
    const deps = await showDepends(root, version, 'snd_hda_intel');
    expect(deps.ok).toBe(true);
    for (const f of deps.files) expect(existsSync(f), f).toBe(true);
    const etc = store.toPhysical(sys.etc);
    // With the firewall's own (nf_tables, nft_ct, nft_limit: see networking.firewall).
    expect(readFileSync(join(etc, 'etc/modules-load.d/cairn.conf'), 'utf8').split('\n').sort()).toEqual(['', 'nf_tables', 'nft_ct', 'nft_limit', 'snd_hda_intel']);
    expect(readFileSync(join(etc, 'etc/modprobe.d/cairn-blacklist.conf'), 'utf8')).toBe('blacklist pcspkr\n');
  }, 300_000);

  it('without the firewall, its netfilter modules are not shipped', async () => {
    const sys = await build(variant('nofw', 'networking:\n  firewall:\n    enable: false\n'));
    const mods = await swModules(sys, kernelTree(sys).version);
    expect(mods).not.toContain('nft_ct');
    expect(mods).toContain('virtio_net');
  }, 300_000);

  it('hardware.enableAllHardware ships the whole tree of the kernel package', async () => {
    const sys = await build(variant('all', 'hardware:\n  enableAllHardware: true\n'));
    expect(sys.closure.some((p) => /-linux-image-\d/.test(p))).toBe(true);
    const mods = await swModules(sys, kernelTree(sys).version);
    for (const m of ['snd_hda_intel', 'amdgpu', 'iwlwifi', 'ext4']) expect(mods, m).toContain(m);
    expect(mods.size).toBeGreaterThan(3000);
    // Any module may be asked for: modprobe@ is not limited to a list.
    expect(existsSync(join(kernelTree(sys).root, MODPROBE_DROPIN))).toBe(false);
  }, 300_000);

  it('an unknown module name fails the build naming the option and where it was defined', async () => {
    const file = variant('unknown', 'boot:\n  kernelModules:\n    - no_such_module\n');
    const err = await build(file).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/boot\.kernelModules: 'no_such_module' is no module of kernel/);
    expect(err?.message).toContain(`${file}:3`);
  }, 300_000);

  it('an unknown initrd module is reported the same way', async () => {
    const file = variant('unknown-initrd', 'boot:\n  initrd:\n    availableKernelModules: [not_a_driver]\n');
    const err = await build(file).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/boot\.initrd\.availableKernelModules: 'not_a_driver' is no module/);
    expect(err?.message).toContain(`${file}:4`);
  }, 300_000);

  it("boots directly as the kernel's PVH ELF: the bzImage's payload, uncompressed, with Xen's PVH entry note", async () => {
    const spec = readBootspec(store, minimal.toplevel);
    const elf = await directBootKernel(store, spec.kernel);
    expect(elf).toMatch(/-vmlinux-[^/]+\/vmlinux$/);
    const bytes = readFileSync(elf);
    expect(bytes.readUInt32BE(0)).toBe(0x7f454c46);
    expect(hasPvhEntry(bytes)).toBe(true);
    // Several times the bzImage, and never in the closure.
    expect(bytes.length).toBeGreaterThan(2 * statSync(store.realFile(spec.kernel)).size);
    expect(minimal.closure.some((p) => p.endsWith(elf.split('/').slice(-2, -1)[0]!))).toBe(false);
    expect(hasPvhEntry(readFileSync('/usr/bin/true'))).toBe(false);
    expect(() => bzImagePayload(readFileSync('/usr/bin/true'))).toThrow(/not a bzImage/);
  }, 300_000);

  // Last: it collects the store's garbage.
  it("a store holding only a system's closure builds the next generation without the kernel package or the initrd's tools", async () => {
    // As on a machine that switches itself: its store holds its closure, not the build-only
    // packages (the kernel package's 400 MB of modules, busybox) nor depmod's full index.
    store.addRoot(join(work, 'minimal-result'), minimal.toplevel);
    // This process's temporary roots hold everything it built: dropped, as a later process would not have them.
    for (const f of readdirSync(store.tempRootsDir)) rmSync(join(store.tempRootsDir, f), { recursive: true, force: true });
    await collectGarbage(store);
    const buildOnly = (p: string) => /-(linux-image-\d|busybox-static-|linux-modules-depmod-)/.test(p);
    expect(store.validPaths().filter(buildOnly)).toEqual([]);

    // Another time zone and one package more: new etc, sw and toplevel, the same kernel and initrd.
    const next = await build(variant('next', 'time:\n  timeZone: Europe/Berlin\nenvironment:\n  systemPackages: [jq]\n'));
    expect(next.toplevel).not.toBe(minimal.toplevel);
    expect(existsSync(join(store.toPhysical(next.sw), 'usr/bin/jq'))).toBe(true);
    expect(readlinkSync(join(store.toPhysical(next.toplevel), 'initrd'))).toBe(readlinkSync(join(store.toPhysical(minimal.toplevel), 'initrd')));
    expect(readlinkSync(join(store.toPhysical(next.toplevel), 'kernel'))).toBe(readlinkSync(join(store.toPhysical(minimal.toplevel), 'kernel')));
    expect(store.validPaths().filter(buildOnly)).toEqual([]);

    // A change to the initrd needs them again, and gets them.
    const initrd = await build(variant('initrd', 'boot:\n  initrd:\n    kernelModules: [dm_crypt]\n'));
    expect(readlinkSync(join(store.toPhysical(initrd.toplevel), 'initrd'))).not.toBe(readlinkSync(join(store.toPhysical(minimal.toplevel), 'initrd')));
    expect(store.validPaths().filter(buildOnly).length).toBeGreaterThan(0);
  }, 900_000);
});
