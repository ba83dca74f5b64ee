/**
 * A GRUB generation's `bin/install-bootloader`: grub.cfg on the boot partition lists exactly the
 * profile's generations (newest first, the current one the default, written by rename), kernels of
 * dropped generations go, the image's serial console stays on the entries, `--once N` sets GRUB's
 * next entry, and no systemd-boot files appear when GRUB is the only loader.
 *
 * As in bootloader.test.ts: the script runs chrooted in the system's /usr with the store at /cairn,
 * in a private user and mount namespace; the boot partition is a folder bind-mounted onto itself.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
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
const install = (system: BuiltSystem, ...args: string[]) => installBootloader(root, system, { args });

const esp = (rel = ''): string => join(root, 'esp', rel);
const cfg = (): string => readFileSync(esp('grub/grub.cfg'), 'utf8');
const ids = (): string[] => [...cfg().matchAll(/--id (\S+) \{/g)].map((m) => m[1]!);

beforeAll(async () => {
  if (!canChroot) return;
  work = mkdtempSync(join(tmpdir(), 'cairn-grub-install-test-'));
  root = join(work, 'root');
  store = Store.open(TEST_STORE_HOME);
  const conf = (name: string, extra = ''): string => {
    const f = join(work, `${name}.yaml`);
    writeFileSync(f, `networking:\n  hostName: ${name}\nsystem:\n  stateVersion: "0.1"\nboot:\n  loader:\n    grub:\n      enable: true\n${extra}`);
    return f;
  };
  systems.push(await buildSystem(await evalConfigFile(conf('grub-one')), { store }));
  systems.push(await buildSystem(await evalConfigFile(conf('grub-two', "      extraEntries: \"menuentry 'Firmware' {\\n  reboot\\n}\"\n  kernelParams: [quiet]\n")), { store }));
  makeRoot(root, systems[0]!);
}, 1_200_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!canChroot)('bin/install-bootloader with GRUB', () => {
  it('writes grub.cfg with the generation as the default, its kernel and initrd, and no systemd-boot files', async () => {
    const [one] = systems as [BuiltSystem];
    setProfile({ 1: one }, 1);
    const r = await install(one);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(ids()).toEqual(['cairn-generation-1']);
    expect(cfg()).toContain('set default=cairn-generation-1\n');
    expect(cfg()).toContain(`'init=${one.toplevel}/init' 'root=LABEL=root'`);
    const kernel = cfg().match(/^ {2}linux '\/(EFI\/cairn\/[^']+)'/m)![1]!;
    expect(existsSync(esp(kernel))).toBe(true);
    expect(readFileSync(esp('grub/grubenv'), 'utf8')).toHaveLength(1024);
    expect(existsSync(esp('EFI/BOOT'))).toBe(false);
    expect(existsSync(esp('loader/entries'))).toBe(false);
    expect(readdirSync(esp('grub')).some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('lists the generations newest first with the current one the default, after a rollback too, and prunes deleted ones', async () => {
    const [one, two] = systems as [BuiltSystem, BuiltSystem];
    mkdirSync(esp('loader'), { recursive: true });
    writeFileSync(esp('loader/cairn-extra-options'), 'console=ttyS1,9600\n');
    setProfile({ 1: one, 2: two }, 2);
    let r = await install(two);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(ids()).toEqual(['cairn-generation-2', 'cairn-generation-1']);
    expect(cfg()).toContain('set default=cairn-generation-2\n');
    expect(cfg()).toMatch(/'quiet' 'console=ttyS1,9600'\n/); // the image's console, added
    expect(cfg().trimEnd().endsWith("menuentry 'Firmware' {\n  reboot\n}")).toBe(true); // the installing generation's extra entries

    setProfile({ 1: one, 2: two }, 1);
    r = await install(one);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(ids()).toEqual(['cairn-generation-2', 'cairn-generation-1']);
    expect(cfg()).toContain('set default=cairn-generation-1\n');
    expect(cfg()).not.toContain('Firmware');

    const initrdOne = cfg().match(/--id cairn-generation-1 \{\n.*\n {2}initrd '\/(EFI\/cairn\/[^']+)'/)![1]!;
    setProfile({ 2: two }, 2);
    r = await install(two);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(ids()).toEqual(['cairn-generation-2']);
    const initrdTwo = cfg().match(/^ {2}initrd '\/(EFI\/cairn\/[^']+)'/m)![1]!;
    if (initrdOne !== initrdTwo) expect(existsSync(esp(initrdOne))).toBe(false);
  });

  it('--once N makes GRUB boot generation N at the next boot; an unknown generation is refused', async () => {
    const [one, two] = systems as [BuiltSystem, BuiltSystem];
    setProfile({ 1: one, 2: two }, 2);
    expect((await install(two)).exitCode).toBe(0);
    const r = await install(two, '--once', '1');
    expect(r.exitCode, r.stderr).toBe(0);
    const env = readFileSync(esp('grub/grubenv'), 'utf8');
    expect(env).toHaveLength(1024);
    expect(env.startsWith('# GRUB Environment Block\nnext_entry=cairn-generation-1\n#')).toBe(true);
    const bad = await install(two, '--once', '7');
    expect(bad.exitCode).toBe(3);
    expect(bad.stderr).toContain('generation 7 has no menu entry');
  });
});
