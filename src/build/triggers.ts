/**
 * Files Debian's dpkg triggers would have made from what the packages ship, made at build time by
 * the system's own programs, into a layer of sw (so they change with /usr, never go stale):
 *   usr/lib/udev/hwdb.bin              udev's trigger: `systemd-hwdb update` over every package's hwdb.d
 *   usr/lib/systemd/catalog/database   systemd's: `journalctl --update-catalog` (activation links
 *                                      /var/lib/systemd/catalog/database, where journalctl reads it)
 *
 * Otherwise systemd-hwdb-update.service and systemd-journal-catalog-update.service make them on a
 * generation's first boot, ahead of udevd and sysinit.target: 6–12 s of a TCG boot. With them, the
 * first unit's conditions are false (it runs only when /usr/lib/udev/hwdb.bin is missing, or
 * /etc/udev/hwdb.bin or /etc/udev/hwdb.d exist), and activation marks /etc and /var updated.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { registerBuilder, removeTree, type Derivation, type Store } from '../store/index.js';
import { programRunner, type ProgramRunner, type StorePackage } from './checks.js';

const HWDB_D = 'usr/lib/udev/hwdb.d';
const HWDB_PROGRAM = 'usr/bin/systemd-hwdb';
const CATALOG_D = 'usr/lib/systemd/catalog';
const JOURNALCTL = 'usr/bin/journalctl';

/**
 * systemd-hwdb records each entry's source file as an absolute path under its --root. The scratch
 * root is padded to this length so the prefix can be overwritten in place (same length, so no offset
 * moves) with slashes: `//…//usr/lib/udev/hwdb.d/20-OUI.hwdb` names the file as the running
 * system sees it, and the bytes no longer depend on where the build ran.
 */
const ROOT_LENGTH = 160;

/** The triggers' derivation over a system's packages, or undefined when none ships their programs. */
export function triggersDerivation(store: Store, pkgs: StorePackage[]): Derivation | undefined {
  if (!pkgs.some((p) => [HWDB_PROGRAM, JOURNALCTL].some((f) => existsSync(join(store.toPhysical(p.storePath), f))))) return undefined;
  const sorted = [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { name: 'system-triggers', builder: 'cairn:triggers', args: { packages: sorted }, inputs: sorted.map((p) => p.storePath) };
}

/** Overwrites every occurrence of `root` (as a folder: followed by a slash) in `bin` with slashes; how many there were. */
export function unrootHwdb(bin: Buffer, root: string): number {
  const needle = Buffer.from(`${root}/`);
  const slashes = Buffer.alloc(root.length, '/');
  let count = 0;
  for (let i = bin.indexOf(needle); i !== -1; i = bin.indexOf(needle, i + needle.length)) {
    slashes.copy(bin, i);
    count++;
  }
  return count;
}

/** Copies the files of `rel` in every package (those `keep` accepts) into `root`/`rel`; their names. */
function gather(store: Store, packages: StorePackage[], rel: string, root: string, keep: (name: string) => boolean): string[] {
  const dir = join(root, rel);
  mkdirSync(dir, { recursive: true });
  const names: string[] = [];
  for (const p of packages) {
    const src = join(store.toPhysical(p.storePath), rel);
    if (!existsSync(src)) continue;
    for (const f of readdirSync(src).sort()) {
      if (!keep(f)) continue;
      copyFileSync(join(src, f), join(dir, f));
      names.push(f);
    }
  }
  return names;
}

async function run(runner: ProgramRunner, program: string, args: string[]): Promise<void> {
  const [file, argv] = runner.command(program, args);
  const r = await execa(file, argv, { reject: false, all: true, env: { LC_ALL: 'C' }, extendEnv: false });
  if (r.exitCode !== 0) throw new CairnError(`${program.split('/').pop()} ${args.join(' ')} failed (exit ${r.exitCode}): ${r.all}`);
}

registerBuilder('cairn:triggers', async (ctx) => {
  const { packages } = ctx.drv.args as { packages: StorePackage[] };
  const runner = programRunner(ctx.store, packages);
  const base = `${ctx.out}.triggers`;
  const pad = ROOT_LENGTH - base.length - 1;
  if (pad < 1 || pad > 255) throw new CairnError(`the store's folder (${ctx.store.dir}) is too long a path to compile udev's hardware database in reproducibly: the build folder ${base} must be shorter than ${ROOT_LENGTH - 1} characters`);
  const root = join(base, 'r'.repeat(pad));
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  // Merged /usr, as on the system: systemd 252 (Debian 12) reads and writes /lib/udev, 257 /usr/lib/udev.
  symlinkSync('usr/lib', join(root, 'lib'));
  try {
    if (runner.find(HWDB_PROGRAM)) {
      const names = gather(ctx.store, packages, HWDB_D, root, (f) => f.endsWith('.hwdb'));
      await run(runner, HWDB_PROGRAM, [`--root=${root}`, 'update', '--usr']);
      const bin = readFileSync(join(root, 'usr/lib/udev/hwdb.bin'));
      // Each file's name is stored once; a prefix left anywhere would make the bytes depend on the build's folder.
      const rewritten = unrootHwdb(bin, root);
      if (bin.includes(Buffer.from(root)) || (names.length > 0 && rewritten === 0)) throw new CairnError('systemd-hwdb recorded its build folder in hwdb.bin in a form cairn cannot take out');
      mkdirSync(join(ctx.out, 'usr/lib/udev'), { recursive: true });
      writeFileSync(join(ctx.out, 'usr/lib/udev/hwdb.bin'), bin, { mode: 0o444 });
      ctx.log(`hwdb.bin from ${names.length} files`);
    }
    if (runner.find(JOURNALCTL)) {
      const names = gather(ctx.store, packages, CATALOG_D, root, (f) => f.endsWith('.catalog'));
      await run(runner, JOURNALCTL, [`--root=${root}`, '--update-catalog']);
      mkdirSync(join(ctx.out, CATALOG_D), { recursive: true });
      const db = readFileSync(join(root, 'var/lib/systemd/catalog/database'));
      if (db.includes(Buffer.from(root))) throw new CairnError('journalctl recorded its build folder in the journal catalog');
      writeFileSync(join(ctx.out, CATALOG_D, 'database'), db, { mode: 0o444 });
      ctx.log(`journal catalog from ${names.length} files`);
    }
  } finally {
    removeTree(base);
  }
});
