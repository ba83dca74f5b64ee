/**
 * A generation's `bin/install-bootloader` (what switch-to-configuration switch|boot run): the ESP
 * lists exactly the profile's generations, new default entries get boot tries, names and counts of
 * existing entries survive, generations newer than the current one sort after it, kernels of
 * dropped generations go, an ESP without room is refused before anything is written, and an
 * image's extra options stay on the entries.
 *
 * The script runs as on the machine: in a chroot of the system's /usr with the store at /cairn, in a
 * private user and mount namespace (no root needed); the ESP is a folder bind-mounted onto itself
 * (a mount point, so the script accepts it) or a small tmpfs.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { Store } from '../../src/store/index.js';
import { buildSystem, type BuiltSystem } from '../../src/build/index.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { TEST_STORE_HOME } from '../modules/store-programs.js';
import { canChroot, installBootloader, makeRoot, setProfile as setProfileIn } from './install-root.js';

let work: string;
let root: string;
let store: Store;
const systems: BuiltSystem[] = [];

const setProfile = (gens: Record<number, BuiltSystem>, current: number): void => setProfileIn(root, gens, current);
const install = (system: BuiltSystem, esp = 'bind') => installBootloader(root, system, { esp });

const esp = (rel = ''): string => join(root, 'esp', rel);
const entries = (): string[] => readdirSync(esp('loader/entries')).sort();
const entry = (name: string): string => readFileSync(esp(`loader/entries/${name}`), 'utf8');

beforeAll(async () => {
  if (!canChroot) return;
  work = mkdtempSync(join(tmpdir(), 'cairn-bootloader-test-'));
  root = join(work, 'root');
  store = Store.open(TEST_STORE_HOME);
  const conf = (name: string, extra = ''): string => {
    const f = join(work, `${name}.yaml`);
    writeFileSync(f, `networking:\n  hostName: ${name}\nsystem:\n  stateVersion: "0.1"\n${extra}`);
    return f;
  };
  systems.push(await buildSystem(await evalConfigFile(conf('boot-one')), { store }));
  systems.push(await buildSystem(await evalConfigFile(conf('boot-two', 'boot:\n  kernelParams: [quiet]\n  loader:\n    systemd-boot:\n      timeout: 2\n')), { store }));
  makeRoot(root, systems[0]!);
}, 1_200_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!canChroot)('bin/install-bootloader', () => {
  it('writes the loader, the kernel and initrd once, and a counted entry for the new current generation', async () => {
    const [one] = systems as [BuiltSystem];
    setProfile({ 1: one }, 1);
    const r = await install(one);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout, r.stdout + r.stderr).toContain("/esp/EFI/BOOT/BOOTX64.EFI");
    expect(entries(), r.stdout + r.stderr).toEqual(["cairn-generation-1+3.conf"]);
    expect(entries()).toEqual(['cairn-generation-1+3.conf']);
    expect(entry('cairn-generation-1+3.conf')).toMatch(new RegExp(`^title cairn 0\\.1 \\(boot-one\\)\\nversion Generation 1\\nsort-key cairn\\n`));
    expect(entry('cairn-generation-1+3.conf')).toContain(`options init=${one.toplevel}/init root=LABEL=root`);
    expect(readdirSync(esp('EFI/cairn')).filter((f) => f.includes('vmlinuz'))).toHaveLength(1);
    expect(readFileSync(esp('loader/loader.conf'), 'utf8')).toBe('timeout 5\neditor no\nconsole-mode keep\n');
    expect(readdirSync(esp('loader/entries')).some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('keeps existing entries (and their counts), sorts newer generations after the current one, and prunes dropped ones', async () => {
    const [one, two] = systems as [BuiltSystem, BuiltSystem];
    // Generation 1 was blessed meanwhile (systemd-bless-boot drops the counter).
    rmSync(esp('loader/entries/cairn-generation-1+3.conf'));
    writeFileSync(esp('loader/entries/cairn-generation-1.conf'), 'stale text\n');
    setProfile({ 1: one, 2: two }, 2);
    let r = await install(two);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(entries()).toEqual(['cairn-generation-1.conf', 'cairn-generation-2+3.conf']);
    expect(entry('cairn-generation-1.conf')).toContain('version Generation 1'); // rewritten, same name
    expect(entry('cairn-generation-2+3.conf')).toMatch(/options .* quiet\n$/);
    expect(readFileSync(esp('loader/loader.conf'), 'utf8')).toContain('timeout 2'); // the installing generation's menu

    // Rollback: 1 is current again; 2 keeps its name (and count) but sorts after it.
    setProfile({ 1: one, 2: two }, 1);
    r = await install(one);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(entries()).toEqual(['cairn-generation-1.conf', 'cairn-generation-2+3.conf']);
    expect(entry('cairn-generation-2+3.conf')).toContain('sort-key cairn-newer\n');
    expect(entry('cairn-generation-1.conf')).toContain('sort-key cairn\n');

    // Generation 1 deleted: its entry and its initrd (not shared with 2) go.
    const initrdOne = readFileSync(esp('loader/entries/cairn-generation-1.conf'), 'utf8').match(/^initrd \/EFI\/cairn\/(.*)$/m)![1]!;
    const initrdTwo = entry('cairn-generation-2+3.conf').match(/^initrd \/EFI\/cairn\/(.*)$/m)![1]!;
    setProfile({ 2: two }, 2);
    r = await install(two);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(entries()).toEqual(['cairn-generation-2+3.conf']);
    expect(existsSync(esp(`EFI/cairn/${initrdTwo}`))).toBe(true);
    if (initrdOne !== initrdTwo) expect(existsSync(esp(`EFI/cairn/${initrdOne}`))).toBe(false);
  });

  it("adds an image's extra options (a serial console) unless the entry names that console", async () => {
    const [, two] = systems as [BuiltSystem, BuiltSystem];
    writeFileSync(esp('loader/cairn-extra-options'), 'console=ttyS1,9600\n');
    setProfile({ 2: two }, 2);
    let r = await install(two);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(entry('cairn-generation-2+3.conf')).toMatch(/^options .* quiet console=ttyS1,9600$/m);
    writeFileSync(esp('loader/cairn-extra-options'), 'console=ttyS0,115200\n');
    r = await install(two);
    expect(entry('cairn-generation-2+3.conf').match(/console=ttyS0/g)).toHaveLength(1); // the system's own console=ttyS0,115200
    rmSync(esp('loader/cairn-extra-options'));
  });

  it('refuses an ESP without room for the new kernel before writing anything (exit 3), and one that is not mounted', async () => {
    const [one] = systems as [BuiltSystem];
    setProfile({ 1: one }, 1);
    const r = await install(one, 'tmpfs:2m');
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/the ESP \(\/esp\) has \d+ MiB free, the new boot files need \d+ MiB: delete old generations/);
    expect(r.stdout.trim()).toBe(''); // nothing on it: no half-written entries or kernels

    const unmounted = await execa('unshare', ['-r', '-m', '-p', '-f', 'sh', '-c', 'mount --rbind "$0" "$1/cairn" && mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && exec chroot "$1" /usr/bin/env -i PATH=/usr/bin CAIRN_ESP=/esp CAIRN_PROFILE=/prof/system "$2"', TEST_STORE_HOME, root, `${one.toplevel}/bin/install-bootloader`], { reject: false });
    expect(unmounted.exitCode).toBe(3);
    expect(unmounted.stderr).toContain('/esp is not mounted');
  });
});

describe.skipIf(!canChroot)('bin/switch-to-configuration', () => {
  it('refuses to run while another switch holds the lock (exit 3, nothing written)', async () => {
    const [one] = systems as [BuiltSystem];
    mkdirSync(join(root, 'run'), { recursive: true });
    // A running system's /run (systemd's mark and cairn's lock), and another switch holding the lock on fd 7.
    const script =
      'mount --rbind "$0" "$1/cairn" && mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && mount -t tmpfs tmpfs "$1/run" && ' +
      'mkdir -p "$1/run/systemd/system" "$1/run/cairn" && mount --bind "$1/esp" "$1/esp" && ' +
      'chroot "$1" /usr/bin/env -i PATH=/usr/bin:/usr/sbin sh -c \'exec 7>>/run/cairn/switch.lock && flock -n 7 && exec "$0" boot\' "$2"';
    const before = readdirSync(esp()).sort();
    const r = await execa('unshare', ['-r', '-m', '-p', '-f', 'sh', '-c', script, TEST_STORE_HOME, root, `${one.toplevel}/bin/switch-to-configuration`], { reject: false });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toBe('switch-to-configuration: another switch is running on this machine; nothing was activated');
    expect(readdirSync(esp()).sort()).toEqual(before);
  });
});
