/**
 * Packages benchmark: the closure of `systemd systemd-sysv udev kmod` unpacked from a warm
 * download cache into an empty store plus its `sw` tree, against debootstrap building the same
 * minimal system (downloads included, as it always does them), and the no-op rebuild.
 */
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { Store, buildEnv } from '../src/store/index.js';
import { lockPackages, realisePackages, fetchDebs, defaultRepositories } from '../src/debian/index.js';
import { DEFAULT_RELEASE } from '../src/debian/sources.js';

const PACKAGES = ['systemd', 'systemd-sysv', 'udev', 'kmod'];

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

/** Resolve/lock and fetch, then the timed unpack + sw build into a fresh store. */
async function cairnBuild(work: string): Promise<{ cold: number; noop: number; resolve: number; packages: number }> {
  process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-bench-debian-cache');
  mkdirSync(process.env.CAIRN_DEBIAN_CACHE, { recursive: true });
  const lockPath = join(work, 'cairn.lock');
  let t = process.hrtime.bigint();
  const { lock, repositories } = await lockPackages({ packages: PACKAGES }, { lockPath });
  const resolve = seconds(t);
  const bySuite = new Map(repositories.map((r) => [r.suite, r.uri]));
  // Warm the download cache (not timed: the comparison is about building, and debootstrap's own time includes downloads).
  await fetchDebs(lock.packages.map((p) => ({ ...p, uri: bySuite.get(p.suite)! })));

  const store = Store.open(join(work, 'home'));
  const build = async (): Promise<string> => {
    const { lock: l, repositories: r } = await lockPackages({ packages: PACKAGES }, { lockPath });
    const pkgs = await realisePackages(l, r, store);
    return store.build(buildEnv('sw', pkgs.map((p) => p.storePath)));
  };
  t = process.hrtime.bigint();
  await build();
  const cold = seconds(t);
  t = process.hrtime.bigint();
  await build();
  const noop = seconds(t);
  return { cold, noop, resolve, packages: lock.packages.length };
}

/** debootstrap of the same system from the host's configured mirror (installed with apt if absent). */
async function debootstrap(work: string): Promise<number | undefined> {
  if ((await execa('sh', ['-c', 'command -v debootstrap'], { reject: false })).exitCode !== 0) {
    const r = await execa('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'debootstrap'], { reject: false, env: { DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.exitCode !== 0) {
      console.log('debootstrap is not installed and could not be installed (needs root): skipping the comparison');
      return undefined;
    }
  }
  const mirror = defaultRepositories().find((r) => r.suite === DEFAULT_RELEASE)!.uri;
  const target = join(work, 'debootstrap');
  const t = process.hrtime.bigint();
  const r = await execa('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, DEFAULT_RELEASE, target, mirror], { reject: false, all: true });
  const s = seconds(t);
  if (r.exitCode !== 0) {
    console.log(`debootstrap failed (exit ${r.exitCode}): ${String(r.all).split('\n').slice(-3).join(' | ')}`);
    return undefined;
  }
  return s;
}

export async function run(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'cairn-bench-packages-'));
  try {
    const c = await cairnBuild(work);
    console.log(`closure of ${PACKAGES.join(' ')}: ${c.packages} packages`);
    console.log(`cairn resolve + lock (warm index cache): ${c.resolve.toFixed(2)} s`);
    console.log(`cairn unpack into an empty store + sw tree (warm download cache): ${c.cold.toFixed(2)} s`);
    console.log(`cairn no-op rebuild (lock present, paths valid): ${c.noop.toFixed(3)} s (target < 0.3 s)`);
    const d = await debootstrap(work);
    if (d !== undefined) {
      console.log(`debootstrap --variant=minbase --include=${PACKAGES.join(',')}: ${d.toFixed(2)} s`);
      console.log(`ratio debootstrap / cairn: ${(d / c.cold).toFixed(1)}x (target >= 3x)`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
