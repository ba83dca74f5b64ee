/**
 * Building whole systems against the real Debian archive (downloads shared with the other
 * suites through CAIRN_DEBIAN_CACHE): the toplevel's layout, determinism from an empty store,
 * purity of the closure, the etc manifest, and activation of two generations under a temporary
 * root (CAIRN_ROOT) with stable user ids.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { Store } from '../../src/store/index.js';
import { buildSystem, findHostPaths, hostPathNeedles, type BuiltSystem } from '../../src/build/index.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { CairnError } from '../../src/errors.js';
import { parseCpio } from '../../src/build/cpio.js';
import { storePrograms } from '../modules/store-programs.js';
import { canChroot, makeRoot } from './install-root.js';

const CACHE = join(tmpdir(), 'cairn-test-debian-cache');
process.env.CAIRN_DEBIAN_CACHE = CACHE;
const repo = resolve(import.meta.dirname, '../..');
/** A store kept across runs (shared with test/modules' programs from the store). */
const TEST_STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const CLI = join(repo, 'dist/cli/cairn.js');

let work: string;
let store: Store;
let minimal: BuiltSystem;
let minimalConfig: string;

/** Reads a file of the store by logical path. */
const read = (p: string): string => readFileSync(store.toPhysical(p), 'utf8');

/** A configuration in the work folder that imports the minimal example and adds `extra` (YAML). */
function variant(name: string, extra: string): string {
  const file = join(work, 'configs', `${name}.yaml`);
  writeFileSync(file, `imports: [./minimal.yaml]\n${extra}`);
  return file;
}

beforeAll(async () => {
  mkdirSync(CACHE, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'cairn-build-test-'));
  mkdirSync(join(work, 'configs'));
  // The configuration lives outside the checkout, so the checkout path in the closure would be a leak.
  minimalConfig = join(work, 'configs', 'minimal.yaml');
  copyFileSync(join(repo, 'examples', 'minimal.yaml'), minimalConfig);
  store = Store.open(join(work, 'home'));
  minimal = await buildSystem(await evalConfigFile(minimalConfig), { store });
}, 600_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('the toplevel of examples/minimal.yaml', () => {
  it('is named after the system and label and holds what a boot entry needs', () => {
    expect(minimal.toplevel).toMatch(/^\/cairn\/store\/[a-z0-9]{32}-cairn-system-minimal-0\.1$/);
    const top = store.toPhysical(minimal.toplevel);
    for (const f of ['activate', 'init', 'bin/switch-to-configuration']) expect(statSync(join(top, f)).mode & 0o111).not.toBe(0);
    expect(readlinkSync(join(top, 'sw'))).toBe(minimal.sw);
    expect(readlinkSync(join(top, 'etc'))).toBe(`${minimal.etc}/etc`);
    expect(readlinkSync(join(top, 'kernel'))).toMatch(/-(linux-image|vmlinuz)-\d[^/]*\/boot\/vmlinuz-\d/);
    const boot = JSON.parse(read(`${minimal.toplevel}/boot.json`))['org.cairn.bootspec.v1'];
    expect(boot).toMatchObject({ toplevel: minimal.toplevel, init: `${minimal.toplevel}/init`, kernel: minimal.kernel, initrd: minimal.initrd, system: 'x86_64-linux' });
    expect(boot.label).toContain('minimal');
    expect(read(`${minimal.toplevel}/kernel-params`).trim()).toBe(boot.kernelParams.join(' '));
    if (minimal.initrd) expect(readlinkSync(join(top, 'initrd'))).toBe(minimal.initrd);
    // The kernel, initrd, sw and etc are all in the closure: the toplevel is self-contained.
    for (const p of [minimal.sw, minimal.etc, minimal.kernel!, ...(minimal.initrd ? [minimal.initrd] : [])]) expect(minimal.closure).toContain(store.parse(p).logical);
  });

  it('boots through its own bash and systemd, by store path', () => {
    const init = read(`${minimal.toplevel}/init`);
    expect(init.split('\n')[0]).toBe(`#!${minimal.sw}/usr/bin/bash`);
    expect(init).toContain(`exec ${minimal.sw}/usr/lib/systemd/systemd`);
    expect(init).toContain(`${minimal.toplevel}/activate`.replace(minimal.toplevel, '$systemConfig'));
    expect(read(`${minimal.toplevel}/activate`).split('\n')[0]).toBe(`#!${minimal.sw}/usr/bin/bash`);
    expect(existsSync(store.toPhysical(`${minimal.sw}/usr/bin/bash`))).toBe(true);
    expect(existsSync(store.toPhysical(`${minimal.sw}/usr/lib/systemd/systemd`))).toBe(true);
  });

  it("lets stage 2 mount the kernel file systems of systemd's static mount units, in one process", () => {
    const fstab = read(`${minimal.toplevel}/api-mounts`);
    // The generation's own systemd units, their options as they are.
    expect(fstab).toContain('\nhugetlbfs /dev/hugepages hugetlbfs nosuid,nodev,X-mount.mkdir 0 0\n');
    expect(fstab).toContain('\nmqueue /dev/mqueue mqueue nosuid,nodev,noexec,X-mount.mkdir 0 0\n');
    // A mount that needs a module loaded first (configfs) stays with systemd; FUSE's needs only
    // modprobe@fuse, and Debian's kernel has FUSE built in.
    expect(fstab).not.toMatch(/configfs/);
    expect(fstab).toContain('\nfusectl /sys/fs/fuse/connections fusectl nosuid,nodev,noexec,X-mount.mkdir 0 0\n');
    expect(read(`${minimal.toplevel}/init`)).toContain('mount -a -T "$systemConfig/api-mounts"');
  });

  it('records the configuration and the lock it was built from', () => {
    const conf = JSON.parse(read(`${minimal.toplevel}/configuration.json`));
    expect(conf.lock).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(conf.config.networking.hostName).toBe('minimal');
    expect(conf.config.users.users.admin.isNormalUser).toBe(true);
  });

  it('has a merged /usr with the alternatives the maintainer scripts would have made', () => {
    const sw = store.toPhysical(minimal.sw);
    for (const d of ['bin', 'sbin', 'lib', 'lib64']) expect(existsSync(join(sw, d))).toBe(false);
    // mawk's postinst: update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 --slave /usr/bin/nawk …
    expect(readlinkSync(join(sw, 'usr/bin/awk'))).toBe('mawk');
    expect(readlinkSync(join(sw, 'usr/bin/nawk'))).toBe('mawk');
    expect(lstatSync(join(sw, 'usr/bin/mawk')).isFile()).toBe(true);
    expect(minimal.alternatives.find((a) => a.name === 'awk')).toMatchObject({ path: '/usr/bin/mawk' });
    // depmod's output is layered in, so modprobe finds modules on the running system.
    if (minimal.initrd) expect(existsSync(join(sw, 'usr/lib/modules', readlinkSync(join(store.toPhysical(minimal.toplevel), 'kernel')).split('vmlinuz-').pop()!, 'modules.dep'))).toBe(true);
  });

  it("has udev's hardware database compiled, as udev's trigger would have, so no boot compiles it", async () => {
    const bin = readFileSync(join(store.toPhysical(minimal.sw), 'usr/lib/udev/hwdb.bin'));
    // The source files are named as the running system sees them, not by the build's scratch folder.
    expect(bin.includes(Buffer.from('/usr/lib/udev/hwdb.d/20-usb-vendor-model.hwdb\0'))).toBe(true);
    expect(bin.includes(Buffer.from(store.dir))).toBe(false);
    const root = mkdtempSync(join(work, 'hwdb-'));
    mkdirSync(join(root, 'usr/lib/udev'), { recursive: true });
    writeFileSync(join(root, 'usr/lib/udev/hwdb.bin'), bin);
    const { path } = await storePrograms(['udev'], ['usr/bin/systemd-hwdb']);
    const q = await execa(path('systemd-hwdb'), [`--root=${root}`, 'query', 'usb:v1D6Bp0002']);
    expect(q.stdout).toContain('ID_VENDOR_FROM_DATABASE=Linux Foundation');
  }, 300_000);

  it("has the dynamic loader's cache ldconfig would have made, in its /etc", async () => {
    const cache = join(store.toPhysical(`${minimal.etc}/etc`), 'ld.so.cache');
    const ldconfig = join(store.toPhysical(minimal.sw), 'usr/sbin/ldconfig');
    // ldconfig -p prints a cache: the libraries by the paths the running system has.
    const p = await execa(ldconfig, ['-p', '-C', cache]);
    expect(p.stdout).toMatch(/^\s+libc\.so\.6 \(libc6,x86-64\) => \/(usr\/)?lib\/x86_64-linux-gnu\/libc\.so\.6$/m);
    expect(p.stdout).toMatch(/libsystemd\.so\.0 .*=> \/(usr\/)?lib\/x86_64-linux-gnu\/libsystemd\.so\.0$/m);
    expect(p.stdout.split('\n').slice(1).join('\n')).not.toContain(store.dir); // the first line names the file read
  });

  it('has the PAM common files pam-auth-update would generate, and the packages\' /etc', () => {
    const etc = store.toPhysical(`${minimal.etc}/etc`);
    expect(readFileSync(join(etc, 'pam.d/common-auth'), 'utf8')).toMatch(/^auth\t\[success=1 default=ignore\]\tpam_unix\.so nullok$/m);
    expect(readFileSync(join(etc, 'pam.d/common-session'), 'utf8')).toMatch(/^session\trequired\tpam_unix\.so $/m);
    expect(readFileSync(join(etc, 'pam.d/common-password'), 'utf8')).toMatch(/^password\t\[success=1 default=ignore\]\tpam_unix\.so obscure yescrypt$/m);
    expect(existsSync(join(etc, 'pam.d/login'))).toBe(true); // shipped by the login package
    expect(readFileSync(join(etc, 'os-release'), 'utf8')).toContain('ID=cairn');
    expect(readFileSync(join(etc, 'hostname'), 'utf8')).toBe('minimal\n');
    // Per-machine and activation-owned files are never in the store.
    for (const f of ['machine-id', 'passwd', 'shadow', 'group']) expect(existsSync(join(etc, f))).toBe(false);
  });

  it("leaves out the packages' tmpfiles.d rules for its /etc entries, keeping their other rules", () => {
    const etc = store.toPhysical(`${minimal.etc}/etc`);
    const debian = readFileSync(join(etc, 'tmpfiles.d/debian.conf'), 'utf8');
    // Debian's systemd links /etc/mtab and /etc/default/locale itself; both are the generation's.
    expect(debian).toMatch(/^# L\+ \/etc\/mtab\s/m);
    expect(debian).toMatch(/^# L\+ \/etc\/default\/locale\s/m);
    expect(debian).toMatch(/^L \/run\/shm\s/m);
    expect(readFileSync(join(store.toPhysical(minimal.etc), 'links'), 'utf8').split('\n')).toContain('tmpfiles.d/debian.conf');
  });

  it('names no path of the building machine anywhere in its closure', () => {
    const needles = hostPathNeedles(store, minimalConfig);
    expect(needles).toContain(store.dir);
    expect(needles).toContain(join(work, 'configs'));
    const hits = findHostPaths(store, minimal.closure, needles);
    expect(hits).toEqual([]);
  }, 300_000);

  it('the purity scan finds a planted host path (the check can fail)', async () => {
    const leak = await store.addText('leak', `see ${join(work, 'configs')}/secret\n`);
    expect(findHostPaths(store, [leak], hostPathNeedles(store, minimalConfig))).toEqual([{ path: leak, needle: join(work, 'configs'), where: 'content' }]);
  });
});

/** The files (and links) below `rel` of a store path, relative to `rel`, sorted. */
function filesBelow(root: string, rel: string): string[] {
  const dir = join(root, rel);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** Store paths of packages' outputs other than their main one. */
const otherOutputs = (closure: string[]): string[] => closure.filter((p) => /-\d[^/]*-(doc|man|info|lang-[^/]+|man-[^/]+)$/.test(p));

describe("packages' outputs", () => {
  let withMan: BuiltSystem;
  beforeAll(async () => {
    const config = variant('man-en', 'i18n:\n  defaultLocale: en_US.UTF-8\ndocumentation:\n  man:\n    enable: true\n  info:\n    enable: true\n');
    withMan = await buildSystem(await evalConfigFile(config), { store });
  }, 600_000);

  it('the minimal closure holds no manual pages, info manuals, translations, nor documentation but the copyright files', () => {
    const sw = store.toPhysical(minimal.sw);
    expect(filesBelow(sw, 'usr/share/man')).toEqual([]);
    expect(filesBelow(sw, 'usr/share/info')).toEqual([]);
    // C.UTF-8 reads no translation.
    expect(filesBelow(sw, 'usr/share/locale').filter((f) => f.includes('/'))).toEqual([]);
    const docs = filesBelow(sw, 'usr/share/doc');
    expect(docs).toContain('systemd/copyright');
    // Only copyrights, and folders of packages that link to another package's.
    expect(docs.filter((f) => !/^[^/]+\/copyright$/.test(f) && !lstatSync(join(sw, 'usr/share/doc', f)).isSymbolicLink())).toEqual([]);
    expect(otherOutputs(minimal.closure)).toEqual([]);
  });

  it('documentation.man.enable and info.enable bring the manual pages, read by man, and the info manuals with their menu; en_US.UTF-8 the en and en_US translations only', async () => {
    const sw = store.toPhysical(withMan.sw);
    // documentation.info.enable: the manuals, and the menu install-info's trigger would have made.
    expect(filesBelow(sw, 'usr/share/info')).toEqual(expect.arrayContaining(['coreutils.info.gz', 'dir']));
    expect(readFileSync(join(sw, 'usr/share/info/dir'), 'utf8')).toMatch(/^\* ls: \(coreutils\)ls invocation\./m);
    expect(filesBelow(sw, 'usr/share/man')).toEqual(expect.arrayContaining(['man1/ls.1.gz', 'man1/systemctl.1.gz', 'man1/man.1.gz']));
    // The alternatives' slave links into manual pages are made (mawk's awk.1.gz).
    expect(readlinkSync(join(sw, 'usr/share/man/man1/awk.1.gz'))).toBe('mawk.1.gz');
    const languages = new Set(filesBelow(sw, 'usr/share/locale').filter((f) => f.includes('/')).map((f) => f.split('/')[0]));
    expect([...languages].filter((l) => l !== 'en' && l !== 'en_US')).toEqual([]);
    expect(filesBelow(sw, 'usr/share/locale')).toContain('locale.alias');
    expect(existsSync(join(sw, 'usr/share/i18n/locales/en_US'))).toBe(true); // what the locales activation compiles from
    // Translated manual pages only for the system's languages.
    expect(readdirSync(join(sw, 'usr/share/man')).filter((d) => !d.startsWith('man') && d !== 'en')).toEqual([]);
    // The main outputs are the minimal system's; its closure has none of this one's other outputs.
    // Keyed by name and version (the store name): the archive may publish an update between the
    // two builds, and an updated package rightly has another path.
    const main = (b: BuiltSystem) => new Map(b.packages.map((p) => [p.storePath.replace(/^.*?\/[a-z0-9]{32}-/, ''), p.storePath]));
    const same = [...main(minimal)].filter(([name]) => main(withMan).has(name));
    expect(same.length).toBeGreaterThan(minimal.packages.length / 2);
    for (const [name, path] of same) expect(main(withMan).get(name), name).toBe(path);
    const extra = otherOutputs(withMan.closure);
    expect(extra.some((p) => /-coreutils-[^/]*-man$/.test(p))).toBe(true);
    expect(extra.filter((p) => minimal.closure.includes(p))).toEqual([]);
    if (!canChroot) return;
    const root = mkdtempSync(join(work, 'man-root-'));
    makeRoot(root, withMan);
    symlinkSync(`${withMan.toplevel}/etc`, join(root, 'etc'));
    const man = await execa('unshare', ['-r', '-m', 'sh', '-c', 'mount --rbind "$0" "$1/cairn" && exec chroot "$1" /usr/bin/env -i PATH=/usr/bin:/usr/sbin LANG=C.UTF-8 MANPAGER=cat MANWIDTH=80 man "$2" "$3"', store.home, root, '1', 'ls'], { reject: false });
    expect(man.exitCode, man.stderr).toBe(0);
    expect(man.stdout).toMatch(/^LS\(1\) .*User Commands/);
    expect(man.stdout).toMatch(/^NAME\n\s+ls - list directory contents$/m);
  }, 120_000);
});

describe('the toplevel of examples/server.yaml', () => {
  // Built in a store kept in the temporary folder across runs (content-addressed, so nothing in it
  // can be stale), which keeps a rerun to a no-change rebuild; its first run downloads and unpacks
  // the whole server closure.
  let server: BuiltSystem;
  let serverStore: Store;
  let serverConfig: string;

  beforeAll(async () => {
    serverStore = Store.open(TEST_STORE_HOME);
    // Outside the checkout, with the TypeScript module it imports, so both folders are needles.
    const dir = join(work, 'server');
    mkdirSync(join(dir, 'modules'), { recursive: true });
    serverConfig = join(dir, 'server.yaml');
    copyFileSync(join(repo, 'examples', 'server.yaml'), serverConfig);
    copyFileSync(join(repo, 'examples', 'modules', 'motd.ts'), join(dir, 'modules', 'motd.ts'));
    server = await buildSystem(await evalConfigFile(serverConfig), { store: serverStore });
  }, 1_200_000);

  it('names no path of the building machine anywhere in its closure', () => {
    const needles = hostPathNeedles(serverStore, serverConfig);
    expect(needles).toEqual(expect.arrayContaining([serverStore.dir, repo, join(work, 'server')]));
    // The services the example enables are in it, so the scan covers their packages and files.
    const names = server.closure.map((p) => p.replace(/^\/cairn\/store\/[0-9a-z]{32}-/, ''));
    for (const pkg of ['openssh-server-', 'nginx-', 'sudo-', 'curl-']) expect(names.some((n) => n.startsWith(pkg)), pkg).toBe(true);
    expect(readFileSync(serverStore.toPhysical(`${server.etc}/etc/motd`), 'utf8')).toContain('This is web1.');
    expect(findHostPaths(serverStore, server.closure, needles)).toEqual([]);
  }, 300_000);
});

describe('determinism', () => {
  // Compared with each other rather than with the build of beforeAll: cairn's own scripts are read
  // when a system is built, so an edit in the checkout meanwhile rightly changes the toplevel.
  let reference: BuiltSystem;
  it('an unchanged configuration gives the same toplevel again, and from an empty store', async () => {
    reference = await buildSystem(await evalConfigFile(minimalConfig), { store });
    const fresh = Store.open(join(work, 'home2'));
    const other = await buildSystem(await evalConfigFile(minimalConfig), { store: fresh });
    // Part by part first, so a difference is reported where it arises.
    const parts = (b: BuiltSystem) => ({ sw: b.sw, etc: b.etc, kernel: b.kernel, initrd: b.initrd, closure: b.closure });
    expect(parts(other)).toEqual(parts(reference));
    expect(other.toplevel).toBe(reference.toplevel);
    expect(other.closure).toEqual(reference.closure);
    // The same bytes in a store of another folder (e.g. hwdb.bin, whose compiler records its root).
    for (const p of reference.closure) expect([p, fresh.pathInfo(p).narHash]).toEqual([p, store.pathInfo(p).narHash]);
    rmSync(join(work, 'home2'), { recursive: true, force: true });
  }, 600_000);

  it('a configuration moved to another folder gives the same toplevel', async () => {
    mkdirSync(join(work, 'elsewhere'));
    const moved = join(work, 'elsewhere', 'minimal.yaml');
    copyFileSync(minimalConfig, moved);
    copyFileSync(minimalConfig.replace(/\.yaml$/, '.lock'), moved.replace(/\.yaml$/, '.lock'));
    expect((await buildSystem(await evalConfigFile(moved), { store })).toplevel).toBe(reference.toplevel);
  }, 120_000);
});

describe('cairn build on the command line', () => {
  const cairn = (args: string[], cwd: string) => execa('node', [join(repo, 'bin/cairn.js'), ...args], { cwd, reject: false, env: { CAIRN_HOME: store.home, CAIRN_DEBIAN_CACHE: CACHE } });

  it('prints the toplevel as the last line of stdout (with --json, one JSON document) and links it at --out-link', async () => {
    expect(existsSync(CLI), `${CLI} is missing: \`npm run build\` makes the CLI bundle`).toBe(true);
    const links = mkdtempSync(join(work, 'links-'));
    const link = join(links, 'result');
    const r = await cairn(['build', minimalConfig, '--out-link', link, '--json'], work);
    expect(r.exitCode, r.stderr).toBe(0);
    // stdout is exactly one JSON document: a tool can parse it whole.
    const json = JSON.parse(r.stdout);
    const toplevel = json.toplevel as string;
    expect(toplevel).toMatch(/^\/cairn\/store\/[0-9a-z]{32}-cairn-system-minimal-0\.1$/);
    expect(store.isValid(toplevel)).toBe(true);
    expect(json).toMatchObject({ sw: expect.stringMatching(/^\/cairn\/store\//), etc: expect.stringMatching(/^\/cairn\/store\//) });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(store.toPhysical(toplevel));
    expect(existsSync(join(link, 'activate'))).toBe(true);
    expect(existsSync(join(work, 'result'))).toBe(false);

    // Without --out-link: `result` in the current folder, and only the toplevel on stdout.
    const here = mkdtempSync(join(work, 'cwd-'));
    const again = await cairn(['build', minimalConfig], here);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toBe(toplevel); // execa drops the final newline
    expect(readlinkSync(join(here, 'result'))).toBe(store.toPhysical(toplevel));
  }, 600_000);
});

describe('hardware.cpu.{intel,amd}.updateMicrocode', () => {
  it("prepends the vendors' microcode to the initrd as an uncompressed cpio the kernel's early loader reads", async () => {
    const file = variant('microcode', 'hardware:\n  cpu:\n    intel: { updateMicrocode: true }\n    amd: { updateMicrocode: true }\n');
    const built = await buildSystem(await evalConfigFile(file), { store });
    const initrd = readFileSync(store.toPhysical(built.initrd!));
    const early = parseCpio(initrd);
    expect(early.map((e) => e.path).filter((p) => p.endsWith('.bin')).sort()).toEqual(['kernel/x86/microcode/AuthenticAMD.bin', 'kernel/x86/microcode/GenuineIntel.bin']);
    // Each is every update of the vendor's package, concatenated.
    const inSw = (dir: string) => join(store.toPhysical(readlinkSync(join(store.toPhysical(built.toplevel), 'sw'))), dir);
    const sizeOf = (dir: string, take: (n: string) => boolean) => readdirSync(dir).filter(take).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    const intel = early.find((e) => e.path.endsWith('GenuineIntel.bin'))!;
    const amd = early.find((e) => e.path.endsWith('AuthenticAMD.bin'))!;
    expect(intel.data.length).toBe(sizeOf(inSw('usr/lib/firmware/intel-ucode'), (n) => /^[0-9a-f]{2}-[0-9a-f]{2}-[0-9a-f]{2}$/.test(n)));
    expect(amd.data.length).toBe(sizeOf(inSw('usr/lib/firmware/amd-ucode'), (n) => n.endsWith('.bin')));
    expect(intel.data.length > 100_000 && amd.data.length > 10_000).toBe(true);
    // Then the compressed initrd itself, whole.
    const gz = initrd.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), initrd.indexOf('TRAILER!!!'));
    expect(gz).toBeGreaterThan(0);
    expect(parseCpio(initrd.subarray(gz)).map((e) => e.path)).toContain('init');
    // Without the options, no early archive: the initrd is gzip from its first byte.
    const plain = readFileSync(store.toPhysical(minimal.initrd!));
    expect([plain[0], plain[1]]).toEqual([0x1f, 0x8b]);
  }, 600_000);
});

describe('errors a user can cause', () => {
  it('refuses a user that is neither normal nor a system user, naming the option', async () => {
    const file = variant('both-kinds', 'users:\n  users:\n    admin:\n      isSystemUser: true\n');
    // An assertion of the users module: evaluation refuses it, before any build.
    await expect(evalConfigFile(file)).rejects.toThrow(/users\.users\.admin: exactly one of isNormalUser and isSystemUser/);
  });

  it('names the option and file of an unknown package', async () => {
    const file = variant('unknown', 'environment:\n  systemPackages: [no-such-package-cairn]\n');
    const err = await buildSystem(await evalConfigFile(file), { store }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect((err as Error).message).toMatch(/no-such-package-cairn/);
    expect((err as Error).message).toMatch(/environment\.systemPackages \(.*unknown\.yaml:\d+/);
  }, 120_000);

  it('refuses an /etc entry that activation owns', async () => {
    const file = variant('passwd', 'environment:\n  etc:\n    passwd:\n      text: "root::0:0::/:/bin/sh"\n');
    await expect(buildSystem(await evalConfigFile(file), { store })).rejects.toThrow(/environment\.etc\."passwd" \(.*passwd\.yaml:\d+.*\): \/etc\/passwd is written by activation/);
  }, 120_000);

  it('exits 1 with the message from the command line, leaving no out-link', async () => {
    expect(existsSync(CLI), `${CLI} is missing: \`npm run build\` makes the CLI bundle`).toBe(true);
    const file = variant('both-kinds-cli', 'users:\n  users:\n    admin:\n      isSystemUser: true\n');
    const r = await execa('node', [join(repo, 'bin/cairn.js'), 'build', file], { cwd: work, reject: false, env: { CAIRN_HOME: store.home } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/users\.users\.admin: exactly one of isNormalUser and isSystemUser/);
    expect(existsSync(join(work, 'result'))).toBe(false);
  }, 60_000);
});

describe('activation under a temporary root', () => {
  // Activation runs the generation's own programs with the building machine's dynamic loader and
  // C library (on a machine, /usr is the generation's): Debian 12 programs run on a Debian 12 host
  // and on later ones; 13's need 13's C library. So these generations are Debian 12 ones.
  const HOST_RELEASE = ['system:', '  debian: { release: bookworm }'];
  let root: string;
  const activate = (toplevel: string, env: Record<string, string> = {}) =>
    execa('bash', [join(store.toPhysical(toplevel), 'activate')], { reject: false, env: { CAIRN_ROOT: root, CAIRN_STORE_DIR: store.dir, ...env }, extendEnv: true });
  const passwd = (): Map<string, string[]> => new Map(readFileSync(join(root, 'etc/passwd'), 'utf8').trim().split('\n').map((l) => [l.split(':')[0]!, l.split(':')]));
  const uid = (name: string): number | undefined => {
    const e = passwd().get(name);
    return e ? Number(e[2]) : undefined;
  };

  beforeAll(() => {
    root = join(work, 'root');
    mkdirSync(join(root, 'var/lib/cairn/secrets'), { recursive: true });
    writeFileSync(join(root, 'var/lib/cairn/secrets/admin.hash'), '$y$j9T$cairntestsalt$notarealhash\n');
  });

  it('keeps user ids stable across generations and never reuses one', async () => {
    const gen1 = await buildSystem(
      await evalConfigFile(variant('gen1', [
        ...HOST_RELEASE,
        'users:',
        '  users:',
        '    deploy: { isSystemUser: true, group: deploy }',
        '  groups:',
        '    deploy: {}',
        'environment:',
        '  etc:',
        '    "cairn-test/gen1": { text: "one\\n" }',
        '    "cairn-test/secret": { text: "s\\n", mode: "0640", user: admin, group: deploy }',
        '',
      ].join('\n'))),
      { store },
    );
    const r1 = await activate(gen1.toplevel);
    expect(r1.stderr).not.toMatch(/error/);
    expect(r1.exitCode).toBe(0);
    expect(uid('root')).toBe(0);
    expect(uid('admin')).toBe(1000);
    const deployUid = uid('deploy')!;
    expect(deployUid).toBeGreaterThanOrEqual(400); // system accounts count down from 999
    expect(deployUid).toBeLessThan(1000);
    const gen1Uids = new Set([...passwd().values()].map((e) => Number(e[2])));
    const networkUid = uid('systemd-network')!;
    // Shadow from the hashed password file on the system; the hash never reaches the store.
    expect(readFileSync(join(root, 'etc/shadow'), 'utf8')).toMatch(/^admin:\$y\$j9T\$cairntestsalt\$notarealhash:/m);
    expect(findHostPaths(store, gen1.closure, ['cairntestsalt'])).toEqual([]);
    expect(statSync(join(root, 'etc/shadow')).mode & 0o777).toBe(0o640);
    expect(statSync(join(root, 'home/admin')).uid).toBe(1000);
    // /etc: links through /etc/static, the copy with its mode and owner.
    expect(readlinkSync(join(root, 'etc/static'))).toBe(`${gen1.etc}/etc`);
    expect(readlinkSync(join(root, 'etc/os-release'))).toBe('/etc/static/os-release');
    expect(readlinkSync(join(root, 'etc/cairn-test/gen1'))).toBe('/etc/static/cairn-test/gen1');
    const secret = statSync(join(root, 'etc/cairn-test/secret'));
    expect(lstatSync(join(root, 'etc/cairn-test/secret')).isFile()).toBe(true);
    expect([secret.mode & 0o777, secret.uid, secret.gid]).toEqual([0o640, 1000, Number(readFileSync(join(root, 'etc/group'), 'utf8').match(/^deploy:x:(\d+):/m)![1])]);
    expect(readFileSync(join(root, 'etc/machine-id'), 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
    expect(statSync(join(root, 'etc/machine-id')).mode & 0o777).toBe(0o444);
    expect(statSync(join(root, 'etc/passwd')).mode & 0o777).toBe(0o644);
    // root's hashedPasswordFile was not written: said, and root's password is not changed.
    expect(r1.stderr).toContain('password file /var/lib/cairn/secrets/root.hash of user root is missing or empty');
    expect(readFileSync(join(root, 'etc/shadow'), 'utf8')).toMatch(/^root:!:/m);
    // The allocation state is kept sorted, so it changes only when an id does.
    for (const f of ['uid-map', 'gid-map', 'declared-users', 'declared-groups']) {
      const lines = readFileSync(join(root, 'var/lib/cairn', f), 'utf8').trimEnd().split('\n');
      expect(lines.length).toBeGreaterThan(1);
      expect(lines).toEqual([...lines].sort());
    }
    expect(readlinkSync(join(root, 'run/current-system'))).toBe(gen1.toplevel);
    expect(readlinkSync(join(root, 'usr'))).toBe(`${gen1.sw}/usr`);
    expect(readlinkSync(join(root, 'bin'))).toBe('usr/bin');
    const machineId = readFileSync(join(root, 'etc/machine-id'), 'utf8');

    // Generation 2: deploy goes, two accounts come; /etc/cairn-test/gen1 is no longer declared.
    const gen2 = await buildSystem(
      await evalConfigFile(variant('gen2', [
        ...HOST_RELEASE,
        'users:',
        '  users:',
        '    alice: { isNormalUser: true }',
        '    svc: { isSystemUser: true, group: nogroup }',
        '',
      ].join('\n'))),
      { store },
    );
    const r2 = await activate(gen2.toplevel);
    expect(r2.exitCode).toBe(0);
    expect(uid('admin')).toBe(1000);
    expect(uid('alice')).toBe(1001);
    expect(uid('systemd-network')).toBe(networkUid);
    expect(uid('deploy')).toBeUndefined(); // mutableUsers = false: undeclared accounts go
    // deploy's id stays on record and is not given to the new account; nor is any other id ever used.
    expect(gen1Uids.has(uid('svc')!)).toBe(false);
    expect(uid('svc')).toBeLessThan(1000);
    expect(existsSync(join(root, 'etc/cairn-test/gen1'))).toBe(false); // stale link removed
    expect(existsSync(join(root, 'etc/cairn-test/secret'))).toBe(false); // copy no longer declared
    expect(readlinkSync(join(root, 'run/current-system'))).toBe(gen2.toplevel);
    expect(readFileSync(join(root, 'etc/machine-id'), 'utf8')).toBe(machineId);

    // Generation 1 again: deploy gets its old id back.
    expect((await activate(gen1.toplevel)).exitCode).toBe(0);
    expect(uid('deploy')).toBe(deployUid);
    expect(uid('svc')).toBeUndefined();
  }, 300_000);

  it('reports a failing snippet by name and still runs the others', async () => {
    const gen = await buildSystem(
      await evalConfigFile(variant('failing', [
        ...HOST_RELEASE,
        '  activationScripts:',
        '    broken: { text: "false", deps: [users] }',
        '    after-broken: { text: "touch $CAIRN_ROOT/after-broken", deps: [broken] }',
        '',
      ].join('\n'))),
      { store },
    );
    const r = await activate(gen.toplevel, { CAIRN_ACTIVATE_ALL_SNIPPETS: '1' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("activation script snippet 'broken' failed");
    expect(existsSync(join(root, 'after-broken'))).toBe(true);
  }, 120_000);
  it('makes the /etc of a first boot from the link-tree of the generation, moving aside what is already there', async () => {
    const fresh = join(work, 'fresh-root');
    mkdirSync(join(fresh, 'etc'), { recursive: true });
    // A file someone left where the generation has a link: kept aside, never overwritten.
    writeFileSync(join(fresh, 'etc/os-release'), 'hand-made\n');
    const first = await buildSystem(await evalConfigFile(variant('first-boot', [...HOST_RELEASE, ''].join('\n'))), { store });
    const etcPhys = store.toPhysical(first.etc);
    const links = readFileSync(join(etcPhys, 'links'), 'utf8').trim().split('\n');
    // The tree activation copies holds every link, already pointing through /etc/static.
    for (const l of links) expect(readlinkSync(join(etcPhys, 'link-tree', l))).toBe(`/etc/static/${l}`);
    const r = await execa('bash', [join(store.toPhysical(first.toplevel), 'activate')], { reject: false, env: { CAIRN_ROOT: fresh, CAIRN_STORE_DIR: store.dir }, extendEnv: true });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.exitCode).toBe(0);
    for (const l of links) expect(readlinkSync(join(fresh, 'etc', l))).toBe(`/etc/static/${l}`);
    expect(readFileSync(join(fresh, 'etc/os-release.cairn-orig'), 'utf8')).toBe('hand-made\n');
    expect(r.stderr).toContain('moving /etc/os-release aside');
    // Folders made for the links are ordinary ones (not the store's read-only modes).
    const dirs = [...new Set(links.filter((l) => l.includes('/')).map((l) => l.slice(0, l.lastIndexOf('/'))))];
    expect(dirs.length).toBeGreaterThan(5);
    for (const d of dirs) expect(statSync(join(fresh, 'etc', d)).mode & 0o7777).toBe(0o755);
    expect(readFileSync(join(fresh, 'etc/machine-id'), 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
  }, 120_000);

  it("with the generation's own bash, its loadable builtins make the same root with half the processes", async () => {
    const gen = await buildSystem(
      await evalConfigFile(variant('builtins', [
        ...HOST_RELEASE,
        'environment:',
        '  etc:',
        '    "cairn-test/private": { text: "p\\n", mode: "0640", group: adm }',
        '    "cairn-test/plain": { text: "t\\n" }',
        '',
      ].join('\n'))),
      { store },
    );
    const top = store.toPhysical(gen.toplevel);
    const ownBash = join(store.toPhysical(readlinkSync(join(top, 'sw'))), 'usr/bin/bash');
    // Run in a PID namespace of its own: PIDs count up from 1, so the PID of a process started
    // after the activation tells how many it started.
    const counted = async (bash: string, at: string): Promise<number> => {
      mkdirSync(at, { recursive: true });
      const r = await execa('unshare', ['--pid', '--fork', '--mount-proc', 'sh', '-c', '"$1" "$2" || exit 1; sh -c \'echo "$$"\'', 'sh', bash, join(top, 'activate')], {
        reject: false, env: { CAIRN_ROOT: at, CAIRN_STORE_DIR: store.dir }, extendEnv: true,
      });
      expect(r.stderr).not.toMatch(/error|warning: (?!password file)/);
      expect(r.exitCode).toBe(0);
      return Number(r.stdout.trim().split('\n').pop()) - 2; // less the namespace's sh and the last one
    };
    const plainRoot = join(work, 'plain-root');
    const ownRoot = join(work, 'own-root');
    const plain = await counted('bash', plainRoot);
    const own = await counted(ownBash, ownRoot);
    // The same files, modes, owners and link targets (the machine id differs by design).
    const tree = (root: string): string[] => {
      const out: string[] = [];
      const walk = (rel: string): void => {
        for (const name of readdirSync(join(root, rel)).sort()) {
          const r = rel ? `${rel}/${name}` : name;
          const st = lstatSync(join(root, r));
          const what = st.isSymbolicLink() ? `-> ${readlinkSync(join(root, r))}` : st.isDirectory() ? 'dir' : r === 'etc/machine-id' ? 'id' : readFileSync(join(root, r), 'utf8');
          out.push(`${r} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`);
          if (st.isDirectory()) walk(r);
        }
      };
      walk('');
      return out;
    };
    // (The copies' stamps are recorded only where stat is a builtin.)
    expect(tree(ownRoot).filter((l) => !l.startsWith('etc/.cairn-copy-stamps '))).toEqual(tree(plainRoot));
    expect(tree(ownRoot)).toContain('etc/cairn-test/private 640 0:4 p\n');
    expect(tree(ownRoot)).toEqual(expect.arrayContaining(['tmp 1777 0:0 dir', 'var/tmp 1777 0:0 dir', 'var/empty 555 0:0 dir', 'root 700 0:0 dir']));
    expect(own).toBeLessThanOrEqual(Math.floor(plain / 2));
    // Again, nothing changed: links and copies that are right stay as they are, without a process.
    const before = tree(ownRoot);
    const again = await counted(ownBash, ownRoot);
    expect(tree(ownRoot)).toEqual(before);
    expect(again).toBeLessThanOrEqual(own);
    // The copies were left as they were (their change time would move with a new copy).
    const ctime = () => lstatSync(join(ownRoot, 'etc/cairn-test/private'), { bigint: true }).ctimeNs;
    const copiedAt = ctime();
    await counted(ownBash, ownRoot);
    expect(ctime()).toBe(copiedAt);
    // A copy changed by hand is made again; the builtins do not take it for the generation's.
    // Links that point elsewhere are replaced (the builtin ln has no -n).
    writeFileSync(join(ownRoot, 'etc/cairn-test/private'), 'changed\n');
    for (const l of ['etc/static', 'run/current-system']) {
      rmSync(join(ownRoot, l));
      symlinkSync('/nowhere', join(ownRoot, l));
    }
    await counted(ownBash, ownRoot);
    expect(readFileSync(join(ownRoot, 'etc/cairn-test/private'), 'utf8')).toBe('p\n');
    // The same root, but for the new copy's stamp: its change time (to the second) is the new copy's.
    const unstamped = (t: string[]) => t.filter((l) => !l.startsWith('etc/.cairn-copy-stamps '));
    expect(unstamped(tree(ownRoot))).toEqual(unstamped(before));
    const stamp = /cairn-test\/private\t\d+:\d+:(\d+):(\d+)\n/.exec(readFileSync(join(ownRoot, 'etc/.cairn-copy-stamps'), 'utf8'));
    expect(stamp?.slice(1)).toEqual([String(ctime() / 1_000_000_000n), '2']);
    console.log(`first activation: ${plain} processes with coreutils, ${own} with the builtins; again ${again}`);
  }, 180_000);
});
