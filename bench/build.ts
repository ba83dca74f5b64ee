/**
 * Build benchmark: the no-change rebuild of examples/server.yaml (in-process and as a `cairn
 * build` process), the full build of examples/minimal.yaml into an empty store from a warm
 * download cache, and the minimal system's closure against a debootstrap minbase root with a
 * kernel (the closest Debian-made equivalent), both measured here.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../src/paths.js';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { Store } from '../src/store/index.js';
import { defaultRepositories } from '../src/debian/index.js';
import { DEFAULT_RELEASE } from '../src/debian/sources.js';
import { buildSystem } from '../src/build/index.js';
import { evalConfigFile } from '../src/eval/index.js';

const repo = projectRoot;

export function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

/** Bytes on disk of some paths, hard links counted once (du does that across its arguments). */
export async function diskBytes(paths: string[]): Promise<number> {
  const r = await execa('du', ['-scb', ...paths]);
  return Number(r.stdout.trim().split('\n').pop()!.split('\t')[0]);
}

export const mb = (n: number): string => `${(n / 1e6).toFixed(0)} MB`;

/** debootstrap minbase + the systemd set + the kernel (+ `extra` packages, in folder `name`); its size without the apt cache. */
export async function debootstrapRoot(work: string, extra: string[] = [], name = 'debootstrap'): Promise<{ seconds: number; bytes: number; dir: string } | undefined> {
  if ((await execa('sh', ['-c', 'command -v debootstrap'], { reject: false })).exitCode !== 0) {
    console.log('debootstrap is not installed (scripts/setup installs it): skipping the comparison');
    return undefined;
  }
  // The release cairn builds by default, so both sides run the same packages.
  const mirror = defaultRepositories().find((r) => r.suite === DEFAULT_RELEASE)!.uri;
  const target = join(work, name);
  const t = process.hrtime.bigint();
  const include = ['systemd', 'systemd-sysv', 'udev', 'kmod', 'linux-image-amd64', ...extra].join(',');
  const r = await execa('debootstrap', ['--variant=minbase', `--include=${include}`, DEFAULT_RELEASE, target, mirror], { reject: false, all: true });
  const s = seconds(t);
  if (r.exitCode !== 0) {
    console.log(`debootstrap failed (exit ${r.exitCode}): ${String(r.all).split('\n').slice(-3).join(' | ')}`);
    return undefined;
  }
  rmSync(join(target, 'var/cache/apt/archives'), { recursive: true, force: true });
  return { seconds: s, bytes: await diskBytes([target]), dir: target };
}

export async function run(): Promise<void> {
  process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-bench-debian-cache');
  mkdirSync(process.env.CAIRN_DEBIAN_CACHE, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'cairn-bench-build-'));
  try {
    cpSync(join(repo, 'examples'), join(work, 'examples'), { recursive: true });
    const server = join(work, 'examples', 'server.yaml');
    const minimal = join(work, 'examples', 'minimal.yaml');

    // Warm: locks resolved and downloads cached (not timed). The no-change rebuilds then run in
    // the same cairn home as the timed process, so that its caches (validators, TypeScript
    // bundles) are as after any earlier build there.
    const warmStore = Store.open(join(work, 'warm'));
    const home = process.env.CAIRN_HOME;
    process.env.CAIRN_HOME = warmStore.home;
    try {
      await buildSystem(await evalConfigFile(server), { store: warmStore });
      await buildSystem(await evalConfigFile(minimal), { store: warmStore });

      let t = process.hrtime.bigint();
      await buildSystem(await evalConfigFile(server), { store: warmStore });
      const noopInProcess = seconds(t);
      const cli = join(repo, 'bin', 'cairn.js');
      t = process.hrtime.bigint();
      const r = await execa('node', [cli, 'build', server, '--no-link'], { reject: false, env: { CAIRN_HOME: warmStore.home } });
      const noopCli = seconds(t);
      if (r.exitCode !== 0) console.log(`cairn build failed: ${r.stderr}`);
      console.log(`no-change rebuild of examples/server.yaml: ${noopInProcess.toFixed(3)} s in-process, ${noopCli.toFixed(3)} s as a cairn process (target < 0.5 s)`);
    } finally {
      if (home === undefined) delete process.env.CAIRN_HOME;
      else process.env.CAIRN_HOME = home;
    }

    const fresh = Store.open(join(work, 'fresh'));
    const t = process.hrtime.bigint();
    const built = await buildSystem(await evalConfigFile(minimal), { store: fresh });
    const full = seconds(t);
    console.log(`full build of examples/minimal.yaml into an empty store (warm download cache): ${full.toFixed(2)} s, ${built.packages.length} packages`);

    const closure = built.closure.map((p) => fresh.toPhysical(p));
    const onDisk = await diskBytes(closure);
    const narSum = built.closure.reduce((n, p) => n + fresh.pathInfo(p).narSize, 0);
    // The kernel package, or (without hardware.enableAllHardware) the kernel with the modules the system can load.
    const kernelPaths = built.closure.filter((p) => /-(linux-image|linux-modules|vmlinuz)-\d/.test(p));
    const kernelBytes = kernelPaths.length > 0 ? await diskBytes(kernelPaths.map((p) => fresh.toPhysical(p))) : 0;
    console.log(`minimal closure: ${built.closure.length} paths, ${mb(onDisk)} on disk (hard links once; ${mb(narSum)} counted per path), of which the kernel and its modules ${mb(kernelBytes)}`);
    const d = await debootstrapRoot(work);
    if (d) {
      console.log(`debootstrap --variant=minbase --include=systemd,systemd-sysv,udev,kmod,linux-image-amd64: ${d.seconds.toFixed(1)} s, ${mb(d.bytes)} (apt's .deb cache removed)`);
      console.log(`ratio closure / debootstrap root: ${(onDisk / d.bytes).toFixed(2)}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
