/**
 * Programs of Debian packages as cairn unpacks them into its store, run on the building machine
 * without installing anything there: each through the closure's own dynamic loader, with a library
 * path over the closure's store paths (never the host's libraries: the loader's cache is ignored).
 *
 * The store persists in the temporary folder across runs and the downloads are shared with the
 * other suites (CAIRN_DEBIAN_CACHE); both are content-addressed, so a stale entry cannot be wrong.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { lockPackages, realisePackages } from '../../src/debian/index.js';
import { Store } from '../../src/store/index.js';

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

const LOADER = 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2';

/**
 * Resolves `packages` against the archive, unpacks the closure into the test store and makes a
 * wrapper for each of `programs` (paths inside the packages, such as `usr/sbin/sshd`).
 */
export async function storePrograms(packages: string[], programs: string[]): Promise<StorePrograms> {
  mkdirSync(process.env.CAIRN_DEBIAN_CACHE!, { recursive: true });
  const store = Store.open(TEST_STORE_HOME);
  const { lock, repositories } = await lockPackages({ packages });
  const realised = await realisePackages(lock, repositories, store);
  const dirs = realised.map((p) => store.toPhysical(p.storePath));
  const loader = dirs.map((d) => join(d, LOADER)).find(existsSync);
  if (!loader) throw new Error(`no dynamic loader (${LOADER}) in the closure of ${packages.join(' ')}`);
  // Multiarch libraries, and private ones such as sudo's /usr/libexec/sudo (its RUNPATH).
  const libPath = dirs.flatMap((d) => ['usr/lib/x86_64-linux-gnu', 'usr/libexec/sudo'].map((l) => join(d, l)).filter(existsSync)).join(':');
  const bin = mkdtempSync(join(tmpdir(), 'cairn-store-bin-'));
  chmodSync(bin, 0o755);
  const found = new Map<string, string>();
  for (const program of programs) {
    const file = dirs.map((d) => join(d, program)).find(existsSync);
    if (!file) throw new Error(`${program} is in none of the packages of ${packages.join(' ')}`);
    const name = program.split('/').pop()!;
    found.set(name, file);
    writeFileSync(join(bin, name), `#!/bin/sh\nexec '${loader}' --inhibit-cache --library-path '${libPath}' --argv0 '${name}' '${file}' "$@"\n`, { mode: 0o755 });
  }
  const path = (name: string): string => {
    if (!found.has(name)) throw new Error(`no wrapper for ${name}`);
    return join(bin, name);
  };
  const libraries = (name: string): string[] => {
    path(name);
    const r = spawnSync(loader, ['--inhibit-cache', '--library-path', libPath, '--list', found.get(name)!], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${loader} --list ${found.get(name)}: ${r.stderr}`);
    // "\tlibc.so.6 => /path (0x…)", "\t/lib64/ld-linux-x86-64.so.2 => /path (0x…)"; the vDSO has no file.
    return [...r.stdout.matchAll(/=> (\S+) \(0x/g)].map((m) => m[1]!);
  };
  return { store, bin, path, libraries };
}
