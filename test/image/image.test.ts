/**
 * Disk images checked with tools that are not cairn's: sfdisk (the GPT), fsck.vfat and bootctl
 * (the ESP and its entries), e2fsck and debugfs (the root file system, its owners and modes).
 * The same configuration and lock built a second time by an unprivileged user, in an empty
 * store, gives the same bytes.
 *
 * The store and the Debian cache persist in the temporary folder across runs (both are
 * content-addressed), so a rerun mostly measures image assembly.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { chmodSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, writeFileSync, copyFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store, removeTree } from '../../src/store/index.js';
import { buildSystem, type BuiltSystem } from '../../src/build/index.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { buildImage, findFormat, entryName, type BuiltImage } from '../../src/image/index.js';
import { PARTITION_TYPES } from '../../src/image/disk.js';

const CACHE = join(tmpdir(), 'cairn-test-debian-cache');
process.env.CAIRN_DEBIAN_CACHE = CACHE;
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const repo = resolve(import.meta.dirname, '../..');
const CLI = join(repo, 'bin/cairn.js');
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

let work: string;
let store: Store;
let one: BuiltSystem;
let two: BuiltSystem;
let image: BuiltImage;

/** Copies `bytes` at `offset` of `file` into a new file. */
function extract(file: string, offset: number, bytes: number, out: string): void {
  const src = openSync(file, 'r');
  const dst = openSync(out, 'w');
  const buf = Buffer.alloc(4 * 2 ** 20);
  try {
    for (let done = 0; done < bytes; ) {
      const n = readSync(src, buf, 0, Math.min(buf.length, bytes - done), offset + done);
      if (n <= 0) throw new Error('short read');
      writeSync(dst, buf, 0, n);
      done += n;
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

function config(name: string, hostName: string, extra = ''): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, `networking:\n  hostName: ${hostName}\nsystem:\n  stateVersion: "0.1"\n${extra}`);
  return file;
}

beforeAll(async () => {
  mkdirSync(CACHE, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'cairn-image-test-'));
  store = Store.open(STORE_HOME);
  one = await buildSystem(await evalConfigFile(config('one', 'gen-one')), { store });
  two = await buildSystem(await evalConfigFile(config('two', 'gen-two', 'boot:\n  loader:\n    systemd-boot:\n      timeout: 3\n')), { store });
  image = await buildImage({ store, format: findFormat('raw'), toplevels: [one.toplevel, two.toplevel], output: join(work, 'two.img') });
}, 900_000);

afterAll(() => {
  if (work) removeTree(work);
});

describe('a raw-efi image with two generations', () => {
  it('has a GPT that sfdisk verifies, with the ESP and x86-64 root partition types', async () => {
    const verify = await execa('sfdisk', ['--verify', image.output], { reject: false });
    expect(verify.exitCode).toBe(0);
    expect(verify.stdout).toContain('No errors detected');
    const table = JSON.parse((await execa('sfdisk', ['--json', image.output])).stdout).partitiontable;
    expect(table.label).toBe('gpt');
    expect(table.partitions.map((p: { type: string }) => p.type)).toEqual([PARTITION_TYPES.esp, PARTITION_TYPES.root]);
    expect(table.partitions.map((p: { name: string }) => p.name)).toEqual(['esp', 'root']);
  });

  it('has an ESP that fsck.vfat passes and bootctl lists: one entry per generation, the newest the default', async () => {
    const esp = image.layout.partitions[0]!;
    const espImg = join(work, 'esp.img');
    extract(image.output, esp.offset, esp.bytes, espImg);
    const fsck = await execa('fsck.vfat', ['-n', espImg], { reject: false });
    expect(fsck.exitCode, fsck.stdout).toBe(0);
    const dir = join(work, 'esp');
    mkdirSync(dir);
    await execa('mcopy', ['-s', '-n', '-i', espImg, '::/EFI', '::/loader', dir]);
    expect(readdirSync(join(dir, 'EFI', 'BOOT'))).toEqual(['BOOTX64.EFI']);
    const conf = readFileSync(join(dir, 'loader', 'loader.conf'), 'utf8');
    // No default: systemd-boot starts on the first entry by sort key and version that has tries left.
    expect(conf).not.toContain('default');
    expect(readFileSync(join(dir, 'loader', 'entries', entryName(2)), 'utf8')).toMatch(/^version Generation 2\nsort-key cairn\n/m);
    expect(conf).toContain('editor no');
    expect(conf).toContain('timeout 3'); // the newest generation's loader settings
    // The two generations share one kernel file on the ESP, named by its content.
    const kernels = readdirSync(join(dir, 'EFI', 'cairn')).filter((f) => f.includes('vmlinuz'));
    expect(kernels).toHaveLength(1);
    // bootctl wants the ESP at the root of a mount: a bind mount in a private user and mount namespace.
    const listed = await execa('unshare', ['-r', '-m', 'sh', '-c', 'mount --bind "$0" "$0" && exec bootctl --esp-path="$0" --no-variables list', dir], {
      reject: false,
      env: { SYSTEMD_RELAX_ESP_CHECKS: '1' },
    });
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(listed.stdout.match(/^\s+id: (.*)$/gm)?.map((l) => l.trim())).toEqual([`id: ${entryName(2)}`, `id: ${entryName(1)}`]);
    expect(listed.stdout).toContain(`options: init=${two.toplevel}/init root=LABEL=root`);
    expect(listed.stdout).toContain(`options: init=${one.toplevel}/init root=LABEL=root`);
    expect(listed.stdout).toMatch(/title: cairn 0\.1 \(gen-two\) \(default\)/);
  });

  it('has a root file system e2fsck passes, with the profile, FHS links and store owned by root, setuid bits kept', async () => {
    const root = image.layout.partitions[1]!;
    const target = `${image.output}?offset=${root.offset}`;
    const fsck = await execa('e2fsck', ['-fn', target], { reject: false });
    expect(fsck.exitCode, fsck.stdout + fsck.stderr).toBe(0);
    const ls = async (path: string): Promise<string> => (await execa('debugfs', ['-R', `ls -l ${path}`, target])).stdout;
    expect(await ls('/cairn/var/profiles')).toMatch(/system-1-link[\s\S]*system-2-link/);
    // The machine's store is a cairn store: each path's metadata, without the deriver (host paths).
    const info = JSON.parse((await execa('debugfs', ['-R', `cat /cairn/var/db/info/${two.toplevel.split('/').pop()}.json`, target])).stdout);
    expect(info.path).toBe(two.toplevel);
    expect(info.deriver).toBeUndefined();
    expect(await ls('/')).toMatch(/\sboot\s/); // the ESP's mount point
    const stat = async (path: string): Promise<string> => (await execa('debugfs', ['-R', `stat ${path}`, target])).stdout;
    // A link's target, whether stored in the inode or in a block: rdump recreates the link here.
    const linkTarget = async (path: string): Promise<string> => {
      const out = mkdtempSync(join(work, 'rdump-'));
      await execa('debugfs', ['-R', `rdump ${path} ${out}`, target]);
      return readlinkSync(join(out, path.split('/').pop()!));
    };
    expect(await linkTarget('/cairn/var/profiles/system')).toBe('system-2-link');
    expect(await linkTarget('/cairn/var/profiles/system-1-link')).toBe(one.toplevel);
    expect(await linkTarget('/usr')).toBe(`${two.toplevel}/sw/usr`);
    expect(await linkTarget('/bin')).toBe('usr/bin');
    const passwdPkg = two.packages.find((p) => p.name === 'passwd')!.storePath;
    const passwd = await stat(`${passwdPkg}/usr/bin/passwd`);
    expect(passwd).toMatch(/Mode:\s+04755/);
    expect(passwd).toMatch(/User:\s+0\s+Group:\s+0/);
    expect(await stat('/tmp')).toMatch(/Mode:\s+01777/);
  });

  it('limits entries to boot.loader.systemd-boot.configurationLimit, keeping every generation in the profile', async () => {
    const limited = await buildSystem(await evalConfigFile(config('limited', 'gen-two', 'boot:\n  loader:\n    systemd-boot:\n      configurationLimit: 1\n')), { store });
    const out = await buildImage({ store, format: findFormat('qcow2'), toplevels: [one.toplevel, limited.toplevel], output: join(work, 'limited.qcow2') });
    expect(out.generations.map((g) => g.entry)).toEqual([false, true]);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', out.output])).stdout);
    expect(info.format).toBe('qcow2');
    expect(info['virtual-size']).toBe(out.bytes);
  });
});

describe('reproducibility', () => {
  it(`gives the same bytes when built again by ${isRoot ? 'an unprivileged user' : 'this user'} in an empty store`, async () => {
    // A second, empty cairn home and a copy of the download cache, owned by the building user.
    const home = join(work, 'user');
    mkdirSync(join(home, 'conf'), { recursive: true });
    cpSync(CACHE, join(home, 'cache'), { recursive: true });
    copyFileSync(join(work, 'one.yaml'), join(home, 'conf', 'one.yaml'));
    copyFileSync(join(work, 'one.lock'), join(home, 'conf', 'one.lock'));
    const reference = await buildImage({ store, format: findFormat('raw'), toplevels: [one.toplevel], output: join(work, 'one.img') });
    if (isRoot) {
      chmodSync(work, 0o755);
      await execa('chown', ['-R', `${NOBODY}:${NOBODY}`, home]);
    }
    const r = await execa('node', [CLI, 'image', join(home, 'conf', 'one.yaml'), '--format', 'raw', '-o', join(home, 'one.img'), '--json'], {
      reject: false,
      cwd: home,
      env: { CAIRN_HOME: join(home, 'cairn'), CAIRN_DEBIAN_CACHE: join(home, 'cache'), HOME: home },
      ...(isRoot ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).toplevel).toBe(one.toplevel);
    const a = await execa('cmp', [reference.output, join(home, 'one.img')], { reject: false });
    expect(a.exitCode, a.stdout).toBe(0);
    // Owners are root's although the builder was not root.
    const target = `${join(home, 'one.img')}?offset=${reference.layout.partitions[1]!.offset}`;
    const listing = (await execa('debugfs', ['-R', `ls -l ${one.sw}/usr/bin`, target])).stdout;
    const owners = new Set([...listing.matchAll(/^\s*\d+\s+\d+\s+\(\d+\)\s+(\d+)\s+(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`));
    expect([...owners]).toEqual(['0:0']);
  }, 600_000);
});

describe('cairn image errors', () => {
  it('says when --size is too small, exits 1, and leaves no file', async () => {
    const out = join(work, 'small.img');
    const r = await execa('node', [CLI, 'image', join(work, 'one.yaml'), '--size', '100M', '-o', out], { reject: false, env: { CAIRN_HOME: STORE_HOME } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/--size 100M is too small: the system needs at least \d+ MiB/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(work).filter((f) => f.includes('small'))).toEqual([]);
  });

  it('names the known formats for an unknown one (usage error, exit 2)', async () => {
    const r = await execa('node', [CLI, 'image', join(work, 'one.yaml'), '--format', 'vhd'], { reject: false, env: { CAIRN_HOME: STORE_HOME } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown image format 'vhd' (known: qcow2-efi, qcow2, raw-bios, bios, raw-efi, raw, raw-hybrid, hybrid; or a .json format file)");
  });

  it('refuses generations that expect their root elsewhere', async () => {
    const other = await buildSystem(await evalConfigFile(config('other-root', 'gen-three', 'fileSystems:\n  /:\n    label: data\n')), { store });
    await expect(buildImage({ store, format: findFormat('raw'), toplevels: [one.toplevel, other.toplevel], output: join(work, 'x.img') })).rejects.toThrow(
      /generation 1 \(.*\) expects its root at LABEL=root, the image's current generation at LABEL=data/,
    );
  });
});

describe('image formats', () => {
  it('are data: a format file with a mistake is refused with the field named', () => {
    const file = join(work, 'bad.json');
    writeFileSync(file, JSON.stringify({ output: 'raw', extension: 'img', partitions: [{ role: 'esp', fsType: 'ext4', size: 'auto' }] }));
    expect(() => findFormat(file)).toThrow(`image format ${file}: partitions[0].fsType: the esp partition is vfat`);
    writeFileSync(file, JSON.stringify({ output: 'vmdk', extension: 'img', partitions: [] }));
    expect(() => findFormat(file)).toThrow('output: expected "raw" or "qcow2", got "vmdk"');
  });

  it('built in: raw-efi and qcow2-efi, with their aliases', () => {
    expect(findFormat('raw').name).toBe('raw-efi');
    expect(findFormat('qcow2-efi').output).toBe('qcow2');
  });

  it('built in: raw-bios and raw-hybrid, a 1 MiB BIOS boot partition first; a bios partition has no file system and a size', () => {
    for (const f of ['bios', 'hybrid']) expect(findFormat(f).partitions.map((p) => p.role)).toEqual(['bios', 'esp', 'root']);
    const file = join(work, 'bad-bios.json');
    writeFileSync(file, JSON.stringify({ output: 'raw', extension: 'img', partitions: [{ role: 'bios', size: 'auto' }, { role: 'esp', fsType: 'vfat', size: 'auto' }, { role: 'root', fsType: 'ext4', size: 'auto' }] }));
    expect(() => findFormat(file)).toThrow(`image format ${file}: partitions[0].size: the bios partition needs a size (e.g. "1M")`);
  });

  it('refuses a BIOS format for a system without GRUB, leaving no file', async () => {
    const out = join(work, 'nogrub.img');
    await expect(buildImage({ store, format: findFormat('raw-bios'), toplevels: [one.toplevel], output: out })).rejects.toThrow(/image format raw-bios boots from BIOS through GRUB: set boot.loader.grub.enable/);
    expect(existsSync(out)).toBe(false);
  });
});
