/**
 * A system that runs cairn (programs.cairn): cairn's store path and its place in the system, its
 * content hash and reproducibility, and cairn running inside the built system as on the machine.
 *
 * Store programs elsewhere run through the closure's loader on the host's file system; Debian's
 * Node reads its own modules from absolute /usr/share/nodejs paths, so here the system's /usr and
 * /etc are a chroot with the store at /cairn, in a private user and mount namespace (no root
 * needed). The store is the shared test store (packages come unpacked from earlier runs).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { execa } from 'execa';
import { Store, type Derivation } from '../../src/store/index.js';
import { buildSystem, findHostPaths, hostPathNeedles, runtimeFiles, runtimeHash, type BuiltSystem, type SelfArgs } from '../../src/build/index.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { debDerivation, defaultRepositories, lockPathFor, readLock } from '../../src/debian/index.js';
import { cairnVersion } from '../../src/paths.js';
import { TEST_STORE_HOME } from '../modules/store-programs.js';

const repo = resolve(import.meta.dirname, '../..');
const CLI = join(repo, 'dist/cli/cairn.js');
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

let work: string;
/** The built system's root: /usr, /etc and the store at /cairn, as on the machine. */
let root: string;
let store: Store;
let built: BuiltSystem;
let cairnPath: string;
let nodejs: { name: string; storePath: string };

const phys = (p: string): string => store.toPhysical(p);

beforeAll(async () => {
  expect(existsSync(CLI), `${CLI} is missing: \`npm run build\` makes the CLI bundle that is copied`).toBe(true);
  work = mkdtempSync(join(tmpdir(), 'cairn-self-test-'));
  root = join(work, 'root');
  const conf = join(root, 'conf');
  mkdirSync(conf, { recursive: true });
  copyFileSync(join(repo, 'examples', 'minimal.yaml'), join(conf, 'minimal.yaml'));
  // The archive named in the configuration, as a machine without /etc/apt needs it: the host's.
  const repositories = defaultRepositories().map((r) => `    - { suite: ${r.suite}, uri: "${r.uri}", keyring: ${KEYRING} }`);
  writeFileSync(join(conf, 'self.yaml'), ['imports: [./minimal.yaml]', 'programs:', '  cairn:', '    enable: true', 'packages:', '  repositories:', ...repositories, ''].join('\n'));
  store = Store.open(TEST_STORE_HOME);
  built = await buildSystem(await evalConfigFile(join(conf, 'self.yaml')), { store });
  cairnPath = built.closure.find((p) => /^\/cairn\/store\/[0-9a-z]{32}-cairn-\d/.test(p))!;
  nodejs = built.packages.find((p) => p.name === 'nodejs')!;

  for (const d of ['cairn', 'tmp', 'root']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  symlinkSync(`${built.sw}/usr`, join(root, 'usr'));
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${d}`, join(root, d));
  symlinkSync(`${built.toplevel}/etc`, join(root, 'etc'));
}, 1_200_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('programs.cairn.enable', () => {
  it('puts cairn on the PATH: a wrapper running Node from the store on cairn from the store', () => {
    expect(cairnPath).toMatch(new RegExp(`-cairn-${cairnVersion().replace(/\./g, '\\.')}$`));
    expect(nodejs).toBeDefined();
    expect(readlinkSync(phys(`${built.sw}/usr/bin/cairn`))).toBe(`${cairnPath}/bin/cairn`);
    expect(readFileSync(phys(`${cairnPath}/bin/cairn`), 'utf8')).toBe(`#!/bin/sh\nexec ${nodejs.storePath}/usr/bin/node ${cairnPath}/lib/cairn/bin/cairn.js "$@"\n`);
    expect(lstatSync(phys(`${cairnPath}/bin/cairn`)).mode & 0o111).not.toBe(0);
    // What a build drives on the machine: Node, gpgv with Debian's keys, dpkg-deb, xz.
    for (const f of ['usr/bin/node', 'usr/bin/gpgv', 'usr/bin/dpkg-deb', 'usr/bin/xz', KEYRING.slice(1)]) expect(existsSync(phys(`${built.sw}/${f}`)), f).toBe(true);
    // Its closure is itself and Node: nothing of the building machine's node_modules.
    expect(store.pathInfo(cairnPath).references).toEqual([cairnPath, nodejs.storePath].sort());
  });

  it('holds the CLI bundle, modules with their templates, images, scripts and the npm packages the bundle imports', () => {
    const lib = `${cairnPath}/lib/cairn`;
    const rels = runtimeFiles().map((f) => f.rel);
    for (const rel of rels) expect(existsSync(phys(`${lib}/${rel}`)), rel).toBe(true);
    for (const rel of ['package.json', 'bin/cairn.js', 'dist/cli/cairn.js', 'modules/services/openssh.ts', 'modules/services/openssh.sshd_config.mustache', 'images/raw-efi.json', 'scripts/activate/lib.sh', 'node_modules/esbuild/lib/main.js', 'node_modules/@esbuild/linux-x64/bin/esbuild']) {
      expect(existsSync(phys(`${lib}/${rel}`)), rel).toBe(true);
    }
    // tsc's output and what the bundle holds are not copied, nor esbuild's own command line.
    for (const rel of ['dist/src', 'node_modules/yargs', 'node_modules/esbuild/bin/esbuild']) expect(existsSync(phys(`${lib}/${rel}`)), rel).toBe(false);
    expect(store.pathInfo(cairnPath).narSize).toBeLessThan(40 << 20);
  });

  it("is named by the content of cairn's files", () => {
    const drv = store.pathInfo(cairnPath).deriver!;
    expect(drv.builder).toBe('cairn:self');
    expect((drv.args as SelfArgs).files).toBe(runtimeHash());
    expect(store.outputPath(drv)).toBe(cairnPath);
  });

  it('is the same path with the same contents from an empty store', async () => {
    const fresh = Store.open(join(work, 'fresh'));
    // Only its input, Debian's nodejs, unpacked again (from the download cache) and its main output split off.
    const locked = readLock(lockPathFor(join(root, 'conf', 'self.yaml')))!.packages.find((p) => p.name === 'nodejs')!;
    await fresh.build(debDerivation(locked));
    const nodeDrv = store.pathInfo(nodejs.storePath).deriver!;
    expect(await fresh.build(nodeDrv)).toBe(nodejs.storePath);
    const drv = store.pathInfo(cairnPath).deriver!;
    expect(await fresh.build(drv)).toBe(cairnPath);
    expect(fresh.pathInfo(cairnPath).narHash).toBe(store.pathInfo(cairnPath).narHash);
  }, 120_000);

  it('refuses files that do not match the hash the configuration was evaluated with', async () => {
    const drv = store.pathInfo(cairnPath).deriver!;
    const stale: Derivation = { ...drv, args: { ...(drv.args as SelfArgs), files: `sha256:${'0'.repeat(64)}` } };
    await expect(store.build(stale)).rejects.toThrow(/changed after the configuration was evaluated/);
  });

  it('names no path of the building machine', () => {
    expect(findHostPaths(store, [cairnPath], hostPathNeedles(store, join(root, 'conf', 'self.yaml')))).toEqual([]);
  });
});

describe('runtimeHash', () => {
  /** A minimal cairn root: what runtimeFiles reads, and one npm package with a platform binary. */
  function fakeRoot(): string {
    const dir = mkdtempSync(join(work, 'root-'));
    const write = (rel: string, text: string, mode = 0o644) => {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), text, { mode });
    };
    write('package.json', '{"version":"1.0.0"}');
    write('bin/cairn.js', 'import "../dist/cli/cairn.js";', 0o755);
    write('dist/cli/cairn.js', 'export {}');
    write('dist/cli/runtime-packages.json', '["tool"]');
    for (const d of ['modules', 'images', 'scripts']) write(`${d}/a`, d);
    write('modules/b.mustache', 'template');
    write('node_modules/tool/package.json', '{"bin":{"tool":"./bin/tool"},"optionalDependencies":{"@tool/here":"1","@tool/elsewhere":"1"}}');
    write('node_modules/tool/bin/tool', '#!/bin/sh', 0o755);
    write('node_modules/tool/lib/main.js', 'main');
    write('node_modules/@tool/here/package.json', '{}');
    write('node_modules/@tool/here/bin/tool', 'ELF', 0o755);
    write('node_modules/unused/package.json', '{}');
    return dir;
  }

  it('covers the runtime files and the packages the bundle imports, without their command lines', () => {
    const dir = fakeRoot();
    expect(runtimeFiles(dir).map((f) => f.rel)).toEqual([
      'bin/cairn.js', 'dist/cli/cairn.js', 'dist/cli/runtime-packages.json', 'images/a', 'modules/a', 'modules/b.mustache',
      'node_modules/@tool/here/bin/tool', 'node_modules/@tool/here/package.json', 'node_modules/tool/lib/main.js', 'node_modules/tool/package.json',
      'package.json', 'scripts/a',
    ]);
  });

  it('changes with any content, name or executable bit', () => {
    const dir = fakeRoot();
    const before = runtimeHash(dir);
    expect(runtimeHash(dir)).toBe(before);
    writeFileSync(join(dir, 'modules/b.mustache'), 'changed');
    const edited = runtimeHash(dir);
    expect(edited).not.toBe(before);
    chmodSync(join(dir, 'modules/b.mustache'), 0o755);
    expect(runtimeHash(dir)).not.toBe(edited);
    rmSync(join(dir, 'modules/b.mustache'));
    writeFileSync(join(dir, 'modules/c.mustache'), 'changed');
    expect(runtimeHash(dir)).not.toBe(edited);
  });

  it('names the build step when the bundle is missing', () => {
    const dir = fakeRoot();
    rmSync(join(dir, 'dist'), { recursive: true });
    expect(() => runtimeHash(dir)).toThrow(/npm run build/);
  });
});

/** Whether this machine lets a normal process chroot inside its own user and mount namespace. */
const canChroot = spawnSync('unshare', ['-r', '-m', 'chroot', '/', 'true'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!canChroot)('cairn inside the built system (chroot, unshare -r -m)', () => {
  /** Runs a command of the system in its root, with the store at /cairn and an empty environment. */
  const inSystem = (args: string[]) =>
    execa('unshare', ['-r', '-m', 'sh', '-c', 'mount --rbind "$0" "$1/cairn" && root="$1" && shift && exec chroot "$root" /usr/bin/env -i PATH=/usr/bin:/usr/sbin HOME=/root "$@"', TEST_STORE_HOME, root, ...args], { reject: false });

  it("runs on the system's Node, Debian's", async () => {
    const node = await inSystem(['node', '--version']);
    expect(node.exitCode, node.stderr).toBe(0);
    expect(node.stdout).toBe(`v${/-nodejs-(\d+\.\d+\.\d+)/.exec(nodejs.storePath)![1]}`);
    const r = await inSystem(['cairn', '--version']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(cairnVersion());
  });

  it('finds its store at /cairn, with the metadata', async () => {
    const r = await inSystem(['cairn', 'store', 'path-info', '/usr/bin/cairn']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(cairnPath);
  });

  it('shows options with the places they are declared (source maps of its bundle)', async () => {
    const r = await inSystem(['cairn', 'option', 'networking.hostName']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Declared in:\n\s+.*modules\/networking\/hostname\.ts:\d+:\d+/);
  });

  it('evaluates YAML and TypeScript configurations (esbuild from the store)', async () => {
    writeFileSync(join(root, 'tmp', 'host.yaml'), 'networking:\n  hostName: selfhosted\n');
    writeFileSync(join(root, 'tmp', 'host.ts'), 'export default { networking: { hostName: "typescript" } };\n');
    const yaml = await inSystem(['cairn', 'eval', '/tmp/host.yaml', '--option', 'networking.hostName']);
    expect(yaml.exitCode, yaml.stderr).toBe(0);
    expect(yaml.stdout).toBe('selfhosted');
    const ts = await inSystem(['cairn', 'eval', '/tmp/host.ts', '--option', 'networking.hostName']);
    expect(ts.exitCode, ts.stderr).toBe(0);
    expect(ts.stdout).toBe('typescript');
  });

  it('builds the same toplevel from the same configuration and lock as the building machine', async () => {
    const r = await inSystem(['cairn', 'build', '/conf/self.yaml', '--no-link']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(built.toplevel);
  }, 300_000);

  it('says the archive must be configured when the machine has no apt sources', async () => {
    writeFileSync(join(root, 'tmp', 'no-repos.yaml'), 'networking:\n  hostName: norepos\n');
    const r = await inSystem(['cairn', 'build', '/tmp/no-repos.yaml', '--no-link']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^error: this machine has no apt sources \(\/etc\/apt\) .*packages\.repositories, each with its uri and keyring/m);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});
