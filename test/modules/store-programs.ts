/**
 * Programs of Debian packages as cairn unpacks them into its store, run on the building machine
 * without installing anything there: each through the closure's own dynamic loader, with a library
 * path over the closure's store paths (never the host's libraries: the loader's cache is ignored).
 *
 * The store persists in the temporary folder across runs and the downloads are shared with the
 * other suites (CAIRN_DEBIAN_CACHE); both are content-addressed, so a stale entry cannot be wrong.
 */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { lockPackages, realisePackages } from '../../src/debian/index.js';
import { Store } from '../../src/store/index.js';
import { programRunner } from '../../src/build/checks.js';

process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
/** The store the build tests and these use; kept across runs. */
export const TEST_STORE_HOME = join(tmpdir(), 'cairn-test-store-home');

export interface StorePrograms {
  store: Store;
  /** Folder of one wrapper script per program, named after it (readable and runnable by everyone). */
  bin: string;
  /** The wrapper that runs a program of the closure, e.g. `path('sshd')`. */
  path(name: string): string;
  /** The files the loader maps for a program (`ld.so --list`), to check they all come from the store. */
  libraries(name: string): string[];
}

/**
 * Resolves `packages` against the archive, unpacks the closure into the test store and makes a
 * wrapper for each of `programs` (paths inside the packages, such as `usr/sbin/sshd`), run as
 * `cairn build` runs its checks (src/build/checks.ts).
 */
export async function storePrograms(packages: string[], programs: string[], opts: { absoluteArgv0?: boolean } = {}): Promise<StorePrograms> {
  mkdirSync(process.env.CAIRN_DEBIAN_CACHE!, { recursive: true });
  const store = Store.open(TEST_STORE_HOME);
  const { lock, repositories } = await lockPackages({ packages });
  const realised = await realisePackages(lock, repositories, store);
  const runner = programRunner(store, realised);
  const bin = mkdtempSync(join(tmpdir(), 'cairn-store-bin-'));
  chmodSync(bin, 0o755);
  const found = new Map<string, string>();
  for (const program of programs) {
    const file = runner.find(program);
    if (!file) throw new Error(`${program} is in none of the packages of ${packages.join(' ')}`);
    const name = program.split('/').pop()!;
    found.set(name, file);
    const [loader, argv] = runner.command(program, []);
    // A program that finds its files relative to itself (postgres: ../lib) is told where it is.
    if (opts.absoluteArgv0) argv[argv.indexOf('--argv0') + 1] = file;
    writeFileSync(join(bin, name), `#!/bin/sh\nexec ${[loader, ...argv].map((a) => `'${a}'`).join(' ')} "$@"\n`, { mode: 0o755 });
  }
  const path = (name: string): string => {
    if (!found.has(name)) throw new Error(`no wrapper for ${name}`);
    return join(bin, name);
  };
  const libraries = (name: string): string[] => {
    path(name);
    const r = spawnSync(runner.loader, ['--inhibit-cache', '--library-path', runner.libraryPath, '--list', found.get(name)!], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${runner.loader} --list ${found.get(name)}: ${r.stderr}`);
    // "\tlibc.so.6 => /path (0x…)", "\t/lib64/ld-linux-x86-64.so.2 => /path (0x…)"; the vDSO has no file.
    return [...r.stdout.matchAll(/=> (\S+) \(0x/g)].map((m) => m[1]!);
  };
  return { store, bin, path, libraries };
}
