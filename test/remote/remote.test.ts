/**
 * Remote deploys without ssh: the target's scripts run locally by bash (localRunner) under a folder
 * standing for the target's root. Receiving a closure (whole paths, metadata, setuid modes, an
 * interrupted receive), generations and switch-to-configuration on the target, and magic rollback
 * with fake switch-to-configuration scripts that record their calls.
 */
import { describe, expect, it, afterEach, afterAll } from 'vitest';
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { CairnError, UsageError } from '../../src/errors.js';
import { referencesFirst, removeTree, Store, type Derivation } from '../../src/store/index.js';
import { localRunner, parseTarget, sshOptionsFromEnv, sshRunner, type RemoteRunner, type RunOptions } from '../../src/remote/ssh.js';
import { copyClosure } from '../../src/remote/copy.js';
import { shellQuote } from '../../src/shell.js';
import { remoteSwitch, type RemoteSwitchOptions } from '../../src/remote/switch.js';
import { remoteGenerations } from '../../src/remote/generations.js';
import '../store/fixtures/builders.js';

const repo = resolve(import.meta.dirname, '../..');

const CLI = resolve(import.meta.dirname, '../../bin/cairn.js');
const tree = (name: string, files: Record<string, unknown>, inputs: string[] = []): Derivation => ({ name, builder: 'test:tree', args: { files }, inputs });

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) removeTree(r);
});

/** The building machine's store, shared by the tests (paths are immutable; each test has its own target). */
let shared: Store | undefined;
const storeHome = mkdtempSync(join(tmpdir(), 'cairn-remote-store-'));
const tempStore = (): Store => (shared ??= Store.open(storeHome));
afterAll(() => removeTree(storeHome));

/** An empty cairn target: its root folder. */
function targetRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'cairn-remote-target-'));
  roots.push(root);
  for (const d of ['cairn/store', 'cairn/var/db/info', 'cairn/var/profiles', 'run']) mkdirSync(join(root, d), { recursive: true });
  return root;
}

const base = (p: string): string => p.slice('/cairn/store/'.length);

describe('target syntax', () => {
  it('takes USER@HOST and USER@HOST:PORT (IPv6 in brackets), and nothing else', () => {
    expect(parseTarget('root@web1')).toEqual({ user: 'root', host: 'web1', text: 'root@web1' });
    expect(parseTarget('root@10.0.0.5:2222')).toEqual({ user: 'root', host: '10.0.0.5', port: 2222, text: 'root@10.0.0.5:2222' });
    expect(parseTarget('deploy@host.example.org')).toMatchObject({ user: 'deploy', host: 'host.example.org' });
    expect(parseTarget('root@[::1]:22')).toMatchObject({ host: '::1', port: 22 });
    for (const bad of ['web1', 'root@', '@web1', 'root@web1:0', 'root@web1:99999', 'root@web1:x', '-oProxyCommand=x@h', 'root@-h', 'root@a b', 'a@b@c']) {
      expect(() => parseTarget(bad), bad).toThrow(UsageError);
    }
  });

  it('splits CAIRN_SSHOPTS on spaces', () => {
    expect(sshOptionsFromEnv({ CAIRN_SSHOPTS: ' -o StrictHostKeyChecking=no  -o UserKnownHostsFile=/dev/null -i /k ' })).toEqual([
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-i',
      '/k',
    ]);
    expect(sshOptionsFromEnv({})).toEqual([]);
  });

  it('orders paths references first', () => {
    const refs: Record<string, string[]> = { a: ['b', 'c', 'a'], b: ['c'], c: [], d: ['x'] };
    expect(referencesFirst(['a', 'b', 'c', 'd'], (p) => refs[p]!)).toEqual(['c', 'b', 'a', 'd']);
  });
});

/** A small closure: `lib` (a setuid file, a setgid folder, a link, a hard link) and `app`, which refers to it. */
async function smallClosure(store: Store): Promise<{ lib: string; app: string }> {
  const lib = await store.build(
    tree('lib-1.0', {
      'bin/su': { text: '#!/bin/sh\n', mode: 0o4755 },
      'bin/plain': { text: 'plain\n', mode: 0o755 },
      'share/readme': 'read me\n',
      'share/link': { link: 'readme' },
    }),
  );
  const app = await store.build(tree('app-1.0', { 'bin/app': { text: `#!/bin/sh\nexec ${lib}/bin/plain\n`, mode: 0o755 } }, [lib]));
  return { lib, app };
}

describe('copying a closure', () => {
  it('makes every path of the closure valid on the target, setuid modes applied, and sends only what is missing', async () => {
    const store = tempStore();
    const { lib, app } = await smallClosure(store);
    expect(store.pathInfo(app).references).toContain(lib);
    const root = targetRoot();
    const runner = localRunner(root);

    const first = await copyClosure(store, runner, [app]);
    expect(first.copied).toEqual([lib, app]); // references first
    for (const p of [lib, app]) {
      expect(JSON.parse(readFileSync(join(root, 'cairn/var/db/info', `${base(p)}.json`), 'utf8'))).toEqual(store.pathInfo(p));
      expect(lstatSync(join(root, p)).isDirectory()).toBe(true);
    }
    const su = statSync(join(root, lib, 'bin/su'));
    expect(su.isFile()).toBe(true);
    expect(su.mode & 0o7777).toBe(0o4755);
    expect(su.uid).toBe(0);
    expect(statSync(join(root, lib, 'bin/plain')).mode & 0o7777).toBe(0o555); // the store's canonical modes otherwise
    expect(readlinkSync(join(root, lib, 'share/link'))).toBe('readme');
    expect(readFileSync(join(root, app, 'bin/app'), 'utf8')).toContain(`${lib}/bin/plain`);
    expect(readdirSync(join(root, 'cairn/store')).filter((e) => e.startsWith('.'))).toEqual([]);
    expect(readdirSync(join(root, 'cairn/var/db/info')).filter((e) => e.startsWith('.'))).toEqual([]);

    expect((await copyClosure(store, runner, [app])).copied).toEqual([]);
    // A path whose metadata is gone is invalid: it is sent again and replaces the leftover entry.
    const infoFile = join(root, 'cairn/var/db/info', `${base(app)}.json`);
    removeTree(infoFile);
    expect((await copyClosure(store, runner, [app])).copied).toEqual([app]);
    expect(existsSync(infoFile)).toBe(true);
  });

  it('refuses a target that is not a cairn system, naming it', async () => {
    const store = tempStore();
    const { app } = await smallClosure(store);
    const root = mkdtempSync(join(tmpdir(), 'cairn-remote-target-'));
    roots.push(root);
    await expect(copyClosure(store, localRunner(root), [app])).rejects.toThrow(new RegExp(`checking the target on local folder ${root} failed: there is no ${root}/cairn/store: not a cairn system`));
  });

  it('leaves no half path when the stream breaks off or the session is killed, and the next receive clears what was left', async () => {
    const store = tempStore();
    const big = await store.build({ name: 'big', builder: 'test:many-files', args: { n: 400, size: 6000 }, inputs: [] });
    const root = targetRoot();
    const runner = localRunner(root);
    const storeEntries = (): string[] => readdirSync(join(root, 'cairn/store'));

    // The sender stops half-way: the receiver sees a short stream, keeps nothing and cleans up.
    const cut: RemoteRunner = {
      ...runner,
      run: (script: string, opts: RunOptions = {}) => {
        if (!(opts.input instanceof Readable)) return runner.run(script, opts);
        let seen = 0;
        const head = new Transform({
          transform(chunk: Buffer, _e, cb) {
            seen += chunk.length;
            if (seen > 600_000) {
              this.push(chunk.subarray(0, chunk.length - (seen - 600_000)));
              this.push(null);
              opts.input instanceof Readable && opts.input.unpipe();
              return cb();
            }
            cb(null, chunk);
          },
        });
        return runner.run(script, { ...opts, input: opts.input.pipe(head) });
      },
    };
    await expect(copyClosure(store, cut, [big])).rejects.toThrow(CairnError);
    expect(storeEntries()).toEqual([]);
    expect(readdirSync(join(root, 'cairn/var/db/info'))).toEqual([]);

    // The session is killed mid-stream (nothing can clean up): a temporary folder stays, no path.
    const abort = new AbortController();
    await expect(
      copyClosure(store, runner, [big], {
        signal: abort.signal,
        onProgress: (sent) => {
          if (sent > 1_000_000) abort.abort();
        },
      }),
    ).rejects.toThrow(CairnError);
    await delay(200);
    expect(storeEntries().filter((e) => e.startsWith('.receive-')).length).toBe(1);
    expect(storeEntries().filter((e) => !e.startsWith('.'))).toEqual([]);
    expect(readdirSync(join(root, 'cairn/var/db/info')).filter((e) => !e.startsWith('.'))).toEqual([]);

    // The next receive removes it and brings the path whole.
    expect((await copyClosure(store, runner, [big])).copied).toEqual([big]);
    expect(storeEntries()).toEqual([base(big)]);
    expect(readdirSync(join(root, big, 'd3')).length).toBe(40);
  });
});

/**
 * A fake toplevel: its switch-to-configuration makes itself the current system on switch and
 * test, then records `<name> <action>` in <root>/calls, and exits with <root>/exit-<name> (default 0).
 */
const fakeToplevel = (name: string): Derivation =>
  tree(name, {
    'bin/switch-to-configuration': {
      mode: 0o755,
      text: [
        '#!/bin/bash',
        'top="${0%/bin/switch-to-configuration}"',
        'root="${top%/cairn/store/*}"',
        'name="${top##*/}"; name="${name#*-}"',
        // The call is recorded once its effect is there: a test that saw the call may read the effect.
        'case "$1" in switch|test) ln -sfn "/cairn/store/${top##*/}" "$root/run/current-system" ;; esac',
        'echo "$name $1" >>"$root/calls"',
        'exit "$(cat "$root/exit-$name" 2>/dev/null || echo 0)"',
        '',
      ].join('\n'),
    },
  });

interface Machine {
  store: Store;
  root: string;
  runner: RemoteRunner;
  one: string;
  two: string;
  calls: () => string[];
  profile: () => string;
  links: () => string[];
  stateFiles: () => string[];
}

/** A target on generation 1 (toplevel `one`, also the running system), with `two` received but not yet a generation. */
async function machine(store: Store, runnerFor: (root: string) => RemoteRunner = localRunner): Promise<Machine> {
  const root = targetRoot();
  const runner = runnerFor(root);
  const one = await store.build(fakeToplevel('one'));
  const two = await store.build(fakeToplevel('two'));
  await copyClosure(store, runner, [one, two]);
  const profiles = join(root, 'cairn/var/profiles');
  symlinkSync(one, join(profiles, 'system-1-link'));
  symlinkSync('system-1-link', join(profiles, 'system'));
  symlinkSync(one, join(root, 'run/current-system'));
  const read = (f: string): string[] => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
  return {
    store,
    root,
    runner,
    one,
    two,
    calls: () => read(join(root, 'calls')),
    profile: () => readlinkSync(join(profiles, 'system')),
    links: () => readdirSync(profiles).filter((e) => e !== 'system').sort(),
    stateFiles: () => (existsSync(join(root, 'run/cairn')) ? readdirSync(join(root, 'run/cairn')).filter((e) => !e.endsWith('.log') && e !== 'deploy.lock') : []),
  };
}

/** The script switch.sh writes for a deploy with magic rollback (deploy.sh after its variables). */
function deployScript(m: Machine, vars: Record<string, string>): string {
  const all = { R: m.root, units: 'plain', rundir: '/run/cairn', profile: '/cairn/var/profiles/system', action: 'switch', toplevel: m.two, token: 't', timeout: '3', prev_link: '', new_link: '', prev_current: '', profile_changed: '0', watch: '1', ...vars };
  return ['set -uo pipefail', ...Object.entries(all).map(([k, v]) => `${k}=${shellQuote(v)}`), readFileSync(join(repo, 'scripts/remote/lib.sh'), 'utf8'), readFileSync(join(repo, 'scripts/remote/deploy.sh'), 'utf8')].join('\n');
}

/** A toplevel on the target whose switch-to-configuration notes its call (as `NAME ACTION`), then runs `then`. */
async function toplevelOn(m: Machine, name: string, then: string): Promise<string> {
  const top = await m.store.build(
    tree(name, {
      'bin/switch-to-configuration': { mode: 0o755, text: `#!/bin/bash\ntop="\${0%/bin/switch-to-configuration}"\necho "${name} $1" >>"\${top%/cairn/store/*}/calls"\n${then}\n` },
    }),
  );
  await copyClosure(m.store, m.runner, [top]);
  return top;
}

/**
 * A target whose deploy of generation 2 (profile already moved to it) was killed with SIGKILL,
 * its session gone: the deploy's script, and its watchdog to run.
 */
async function killedDeploy(token: string, vars: Record<string, string>, switchBegan = false) {
  const m = await machine(tempStore());
  const rundir = join(m.root, 'run/cairn');
  mkdirSync(rundir, { recursive: true });
  const profiles = join(m.root, 'cairn/var/profiles');
  symlinkSync(m.two, join(profiles, 'system-2-link'));
  rmSync(join(profiles, 'system'));
  symlinkSync('system-2-link', join(profiles, 'system'));
  const all = { token, session_pid: String(await deadPid()), prev_link: 'system-1-link', new_link: 'system-2-link', profile_changed: '1', ...vars };
  writeFileSync(join(rundir, `${token}.sh`), deployScript(m, all));
  if (switchBegan) writeFileSync(join(rundir, `${token}.started`), '');
  return { m, watchdog: () => execa('bash', [join(rundir, `${token}.sh`), 'watchdog'], { reject: false, timeout: 15_000 }) };
}

/** The PID of a process that has ended (and been reaped). */
async function deadPid(): Promise<number> {
  const p = execa('true');
  await p;
  return p.pid!;
}

/** Output sink for the target's output. */
function sink(): Writable & { text: () => string } {
  let text = '';
  const w = new Writable({
    write(c, _e, cb) {
      text += String(c);
      cb();
    },
  }) as Writable & { text: () => string };
  w.text = () => text;
  return w;
}

const opts = (o: Partial<RemoteSwitchOptions>): RemoteSwitchOptions => ({ action: 'switch', confirmTimeout: 0, stdout: sink(), stderr: sink(), ...o });

/** The runner whose later connections fail, as after a switch that cut the network. */
const unreachableAfter = (runner: RemoteRunner, connections: number): RemoteRunner => {
  let n = 0;
  return {
    ...runner,
    run: (script, o) => (n++ < connections ? runner.run(script, o) : Promise.resolve({ exitCode: 255, stdout: '', stderr: 'ssh: connect to host x port 22: No route to host\n', connectionLost: true })),
  };
};

/**
 * Whether no process holds the target's deploy lock: a deploy's session, its watchdog and the
 * rollback its watchdog runs all hold it, so the next deploy is refused until they have ended.
 */
const unlocked = (root: string): boolean => spawnSync('flock', ['-n', join(root, 'run/cairn/deploy.lock'), 'true']).status === 0;

async function until(what: string, check: () => boolean, seconds = 15): Promise<void> {
  for (let i = 0; i < seconds * 10; i++) {
    if (check()) return;
    await delay(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the ssh runner', () => {
  /**
   * A stand-in for ssh: records its arguments, then does what sshd does with the command: the
   * login shell runs the words after the destination, joined by spaces. Exit 255 for `unreachable`.
   */
  function fakeSsh(): { log: string; restore: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-fake-ssh-'));
    roots.push(dir);
    const log = join(dir, 'argv');
    writeFileSync(
      join(dir, 'ssh'),
      `#!/bin/bash\nprintf '%s\\n' "$@" >${log}\nwhile [ "$1" != -- ]; do shift; done\nshift\ndest="$1"; shift\n` +
        `[ "\${dest#*@}" = unreachable ] && { echo "ssh: connect to host unreachable port 22: No route to host" >&2; exit 255; }\nexec bash -c "$*"\n`,
    );
    chmodSync(join(dir, 'ssh'), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    return { log, restore: () => (process.env.PATH = path) };
  }

  it('runs a script through the login shell with BatchMode, a timeout, the port and CAIRN_SSHOPTS first', async () => {
    const ssh = fakeSsh();
    try {
      const runner = sshRunner(parseTarget('root@web1:2222'), ['-o', 'StrictHostKeyChecking=no', '-i', '/k']);
      const r = await runner.run(`printf '%s|' "it's" "$((1 + 2))" "$(cat)"; echo >&2 oops; exit 7`, { input: 'from stdin' });
      expect(r).toEqual({ exitCode: 7, stdout: "it's|3|from stdin|", stderr: 'oops\n', connectionLost: false });
      const argv = readFileSync(ssh.log, 'utf8').split('\n');
      expect(argv.slice(0, 4)).toEqual(['-o', 'StrictHostKeyChecking=no', '-i', '/k']);
      expect(argv).toEqual(expect.arrayContaining(['BatchMode=yes', 'ConnectTimeout=15', '-p', '2222', 'root@web1']));
      expect(argv.indexOf('root@web1')).toBe(argv.indexOf('--') + 1);
      // Sessions share one connection, kept open for the next; a fresh session opens its own.
      const socket = argv.find((a) => a.startsWith('ControlPath='));
      expect(socket).toMatch(/^ControlPath=.*cairn-ssh-[^/]+\/socket$/);
      expect(argv).toEqual(expect.arrayContaining(['ControlMaster=auto', 'ControlPersist=60']));
      await runner.run('true');
      expect(readFileSync(ssh.log, 'utf8').split('\n')).toContain(socket);
      await runner.run('true', { fresh: true });
      const fresh = readFileSync(ssh.log, 'utf8').split('\n');
      expect(fresh).toEqual(expect.arrayContaining(['ControlPath=none', 'ControlMaster=no']));
      expect(fresh).not.toContain(socket);
      await runner.close!();
      expect(existsSync(socket!.slice('ControlPath='.length).replace(/\/socket$/, ''))).toBe(false);
      const lost = await sshRunner(parseTarget('root@unreachable'), []).run('true');
      expect(lost).toMatchObject({ exitCode: 255, connectionLost: true });
      // Another user: the script goes through sudo, which must not ask for a password.
      await sshRunner(parseTarget('deploy@web1'), [], { sudo: true }).run("echo 'a b'");
      expect(readFileSync(ssh.log, 'utf8').split('\n').filter(Boolean).pop()).toBe(`sudo -n -- bash -c ${shellQuote("echo 'a b'")}`);
    } finally {
      ssh.restore();
    }
  });

  it('carries the receiver and a whole closure through it', async () => {
    const ssh = fakeSsh();
    try {
      const store = tempStore();
      const { lib, app } = await smallClosure(store);
      const root = targetRoot();
      // The ssh transport, with the target's root in a folder and no systemd.
      const runner: RemoteRunner = { ...sshRunner(parseTarget('root@web1'), []), root, units: 'plain' };
      expect((await copyClosure(store, runner, [app])).copied).toEqual([lib, app]);
      expect(statSync(join(root, lib, 'bin/su')).mode & 0o7777).toBe(0o4755);
      // A switch with its confirmation: three connections.
      const m = await machine(store, (r) => ({ ...sshRunner(parseTarget('root@web1'), []), root: r, units: 'plain' }));
      expect(await remoteSwitch(m.runner, opts({ toplevel: m.two, confirmTimeout: 5 }))).toMatchObject({ exitCode: 0, generation: 2, confirmed: true });
      expect(m.calls()).toEqual(['two switch']);
    } finally {
      ssh.restore();
    }
  });
});

describe('switching a target', () => {
  it('switch: a new generation by one rename, then its switch-to-configuration; the same toplevel again adds none', async () => {
    const m = await machine(tempStore());
    const err = sink();
    const r = await remoteSwitch(m.runner, opts({ toplevel: m.two, stderr: err }));
    expect(r).toMatchObject({ exitCode: 0, generation: 2, confirmed: null });
    expect(err.text()).toContain('generation 2 of /cairn/var/profiles/system');
    expect(m.profile()).toBe('system-2-link');
    expect(readlinkSync(join(m.root, 'cairn/var/profiles/system-2-link'))).toBe(m.two);
    expect(m.links()).toEqual(['system-1-link', 'system-2-link']);
    expect(m.calls()).toEqual(['two switch']);
    expect(m.stateFiles()).toEqual([]);
    expect((await remoteSwitch(m.runner, opts({ toplevel: m.two }))).generation).toBe(2);
    expect(m.links()).toEqual(['system-1-link', 'system-2-link']);
  });

  it('boot sets the profile only; activate and dry-activate leave it alone', async () => {
    const m = await machine(tempStore());
    expect((await remoteSwitch(m.runner, opts({ action: 'dry-activate', toplevel: m.two }))).exitCode).toBe(0);
    expect((await remoteSwitch(m.runner, opts({ action: 'test', toplevel: m.two }))).generation).toBeNull();
    expect(m.profile()).toBe('system-1-link');
    expect((await remoteSwitch(m.runner, opts({ action: 'boot', toplevel: m.two }))).generation).toBe(2);
    expect(m.profile()).toBe('system-2-link');
    expect(m.calls()).toEqual(['two dry-activate', 'two test', 'two boot']);
  });

  it('exit 3 (boot entries not written, nothing activated) puts the previous profile back', async () => {
    const m = await machine(tempStore());
    writeFileSync(join(m.root, 'exit-two'), '3\n');
    const err = sink();
    const r = await remoteSwitch(m.runner, opts({ toplevel: m.two, confirmTimeout: 1, stderr: err }));
    expect(r).toMatchObject({ exitCode: 3, confirmed: null });
    expect(err.text()).toContain('nothing was activated');
    expect(m.profile()).toBe('system-1-link');
    expect(m.links()).toEqual(['system-1-link']);
    await delay(1500); // the watchdog stood down: no rollback
    expect(m.calls()).toEqual(['two switch']);
  });

  it('rollback: the previous generation (or --to N) becomes the profile and is switched to', async () => {
    const m = await machine(tempStore());
    await remoteSwitch(m.runner, opts({ toplevel: m.two }));
    const err = sink();
    expect(await remoteSwitch(m.runner, opts({ generation: 'previous', stderr: err }))).toMatchObject({ exitCode: 0, generation: 1 });
    expect(err.text()).toContain('rolling back to generation 1');
    expect(m.profile()).toBe('system-1-link');
    expect(m.links()).toEqual(['system-1-link', 'system-2-link']); // kept, as a local rollback keeps it
    expect(await remoteSwitch(m.runner, opts({ generation: 2 }))).toMatchObject({ exitCode: 0, generation: 2 });
    expect(m.calls()).toEqual(['two switch', 'one switch', 'two switch']);
    const none = sink();
    expect((await remoteSwitch(m.runner, opts({ generation: 7, stderr: none }))).exitCode).toBe(1);
    expect(none.text()).toContain('/cairn/var/profiles/system has no generation 7');
    expect(m.profile()).toBe('system-2-link');
  });
});

describe("a target's generations", () => {
  it('lists them and deletes any but the current one', async () => {
    const m = await machine(tempStore());
    expect(await remoteSwitch(m.runner, opts({ toplevel: m.two }))).toMatchObject({ exitCode: 0, generation: 2 });
    const gens = await remoteGenerations(m.runner);
    expect(gens.map((g) => [g.number, g.current, g.toplevel])).toEqual([[1, false, m.one], [2, true, m.two]]);
    expect(Math.abs(gens[1]!.date - Date.now() / 1000)).toBeLessThan(60);
    await expect(remoteGenerations(m.runner, [2])).rejects.toThrow(/deleting generations 2 on local folder .* failed: generation 2 is the current one; switch to another first/);
    await expect(remoteGenerations(m.runner, [1, 7])).rejects.toThrow(/has no generation 7/);
    expect(m.links()).toEqual(['system-1-link', 'system-2-link']);
    expect((await remoteGenerations(m.runner, [1])).map((g) => g.number)).toEqual([2]);
    expect(m.links()).toEqual(['system-2-link']);
    expect(m.profile()).toBe('system-2-link');
  });
});

describe('magic rollback', () => {
  it('confirmed in time: nothing rolls back, the state on the target is cleared', async () => {
    const m = await machine(tempStore());
    const r = await remoteSwitch(m.runner, opts({ toplevel: m.two, confirmTimeout: 5 }));
    expect(r).toMatchObject({ exitCode: 0, generation: 2, confirmed: true });
    await until('the watchdog to end', () => m.stateFiles().length === 0);
    await delay(1500);
    expect(m.calls()).toEqual(['two switch']);
    expect(m.profile()).toBe('system-2-link');
  });

  it('switch, unconfirmed (the target became unreachable): the previous generation comes back, profile and running system', async () => {
    const m = await machine(tempStore());
    const started = Date.now();
    await expect(remoteSwitch(unreachableAfter(m.runner, 1), opts({ toplevel: m.two, confirmTimeout: 1 }))).rejects.toThrow(
      /cannot confirm the switch on local folder .* \(ssh: connect to host x port 22: No route to host\): unconfirmed, it rolls back to its previous generation by itself 1 s after the switch ended/,
    );
    await until('the rollback', () => m.calls().length === 2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(m.calls()).toEqual(['two switch', 'one switch']);
    expect(m.profile()).toBe('system-1-link');
    expect(m.links()).toEqual(['system-1-link']);
    expect(readlinkSync(join(m.root, 'run/current-system'))).toBe(m.one);
  });

  it('activate, unconfirmed: the previously running system is activated again, the profile untouched', async () => {
    const m = await machine(tempStore());
    await expect(remoteSwitch(unreachableAfter(m.runner, 1), opts({ action: 'test', toplevel: m.two, confirmTimeout: 1 }))).rejects.toThrow(/rolls back/);
    await until('the rollback', () => m.calls().length === 2);
    expect(m.calls()).toEqual(['two test', 'one test']);
    expect(m.profile()).toBe('system-1-link');
    expect(readlinkSync(join(m.root, 'run/current-system'))).toBe(m.one);
  });

  it('a confirmation after the deadline loses: the target rolls back and cairn says so', async () => {
    const m = await machine(tempStore());
    let n = 0;
    const slow: RemoteRunner = { ...m.runner, run: async (s, o) => (n++ === 1 ? (await delay(2500), m.runner.run(s, o)) : m.runner.run(s, o)) };
    await expect(remoteSwitch(slow, opts({ toplevel: m.two, confirmTimeout: 1 }))).rejects.toThrow(/after the 1 s deadline: it is rolling back/);
    await until('the rollback', () => m.calls().length === 2);
    expect(m.profile()).toBe('system-1-link');
  });

  it('one deploy at a time: another, while the first waits for its confirmation, is refused and changes nothing', async () => {
    const m = await machine(tempStore());
    // The first deploy's confirmation never comes: its watchdog waits 10 s, then rolls back. The
    // second deploy has to come within that time, also on a loaded machine.
    await expect(remoteSwitch(unreachableAfter(m.runner, 1), opts({ toplevel: m.two, confirmTimeout: 10 }))).rejects.toThrow(/rolls back/);
    const err = sink();
    expect(await remoteSwitch(m.runner, opts({ toplevel: m.two, stderr: err }))).toMatchObject({ exitCode: 1, generation: null });
    expect(err.text()).toMatch(/^another deploy to this machine is in progress: try again when it has ended$/m);
    expect(m.calls()).toEqual(['two switch']);
    expect(m.links()).toEqual(['system-1-link', 'system-2-link']);
    expect(unlocked(m.root)).toBe(false); // the first deploy's watchdog holds it
    await until('the rollback', () => m.calls().length === 2, 40);
    // The watchdog's script goes when it ends (the deploy's verdict stays, for a late confirmation).
    await until('the watchdog to end', () => !m.stateFiles().some((f) => f.endsWith('.sh')));
    expect(m.profile()).toBe('system-1-link');
    // The rollback's switch-to-configuration still holds the lock after the script is gone: the
    // next deploy waits for it to end (on a loaded machine it may still be running now).
    await until('the rollback to end', () => unlocked(m.root));

    // Once it has ended, the next deploy goes ahead; what a killed deploy left does not stop it.
    mkdirSync(join(m.root, 'run/cairn'), { recursive: true });
    writeFileSync(join(m.root, 'run/cairn/killed-deploy.sh'), 'set -uo pipefail\n');
    writeFileSync(join(m.root, 'run/cairn/killed-deploy.done'), '0\n');
    expect(await remoteSwitch(m.runner, opts({ toplevel: m.two }))).toMatchObject({ exitCode: 0, generation: 2 });
    expect(m.stateFiles().filter((f) => f.startsWith('killed-deploy'))).toEqual([]);
    expect(m.calls()).toEqual(['two switch', 'one switch', 'two switch']);
  });

  it("the watchdog of a deploy killed before its switch ended stops once the next deploy clears that deploy's script", async () => {
    const m = await machine(tempStore());
    const rundir = join(m.root, 'run/cairn');
    mkdirSync(rundir, { recursive: true });
    // What switch.sh writes for a deploy with magic rollback, whose switch never wrote its result.
    // Its session still runs (this process stands for it), so the watchdog waits for the result.
    writeFileSync(join(rundir, 'killed.sh'), deployScript(m, { token: 'killed', session_pid: String(process.pid) }));
    const watchdog = execa('bash', [join(rundir, 'killed.sh'), 'watchdog'], { reject: false });
    let ended = false;
    void watchdog.then(() => (ended = true));
    try {
      await delay(500);
      expect(ended).toBe(false); // waiting for the switch's result
      expect(await remoteSwitch(m.runner, opts({ toplevel: m.two }))).toMatchObject({ exitCode: 0, generation: 2 });
      await until('the stale watchdog to end', () => ended);
      expect((await watchdog).exitCode).toBe(0);
      expect(m.calls()).toEqual(['two switch']); // it rolled nothing back
    } finally {
      watchdog.kill('SIGKILL');
    }
  });

  it('a deploy killed (SIGKILL) before its switch began is undone by its watchdog, which then ends', async () => {
    // The session had made generation 2 the profile, then died without a word: no switch ran.
    const { m, watchdog } = await killedDeploy('gone', {});
    const r = await watchdog();
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('the deploy ended before its switch began (killed): undoing it');
    expect(m.profile()).toBe('system-1-link');
    expect(m.links()).toEqual(['system-1-link']);
    expect(m.calls()).toEqual([]);
    expect(m.stateFiles()).toEqual([]);
  });

  it('a switch killed (SIGKILL) before it wrote its result counts as failed: unconfirmed, the watchdog rolls back at the deadline', async () => {
    // The switch had begun (activate writes <token>.started first), then was killed.
    const { m, watchdog } = await killedDeploy('died', { timeout: '1' }, true);
    const r = await watchdog();
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('the switch ended without a result (killed): it counts as failed');
    expect(r.stderr).toContain('no confirmation within 1s: rolling back');
    expect(m.calls()).toEqual(['one switch']);
    expect(m.profile()).toBe('system-1-link');
    // The next deploy is not refused.
    expect(await remoteSwitch(m.runner, opts({ toplevel: m.two }))).toMatchObject({ exitCode: 0 });
  });

  it('a switch killed while cairn waits is confirmed (the target is reachable) and reported as failed, with why', async () => {
    const m = await machine(tempStore());
    // Its switch-to-configuration kills the deploy's activation (SIGKILL, as the OOM killer does):
    // nobody writes the result but the watchdog.
    const dies = await toplevelOn(m, 'dies', 'kill -KILL "$PPID"');
    const err = sink();
    expect(await remoteSwitch(m.runner, opts({ toplevel: dies, confirmTimeout: 3, stderr: err }))).toMatchObject({ exitCode: 1, generation: 2, confirmed: true });
    expect(err.text()).toMatch(/the switch on .+ failed: it was killed before it ended \(journalctl -u cairn-switch-[\w-]+\); confirmed: .+ is reachable and keeps the new generation/);
    expect(err.text()).not.toMatch(/^confirmed:/m);
    await until('the watchdog to end', () => m.stateFiles().length === 0);
    expect(m.profile()).toBe('system-2-link');
    expect(m.calls()).toEqual(['dies switch']);
  });

  it('the watchdog counts from the end of the switch, however long it takes', async () => {
    const m = await machine(tempStore());
    const slow = await toplevelOn(m, 'slow', 'sleep 4');
    expect(await remoteSwitch(m.runner, opts({ toplevel: slow, confirmTimeout: 3 }))).toMatchObject({ exitCode: 0, confirmed: true });
    await until('the watchdog to end', () => m.stateFiles().length === 0);
    expect(m.calls()).toEqual(['slow switch']);
  });
});

describe('cairn switch --target-host', () => {
  it('rejects a malformed target (exit 2) and names an unreachable one (exit 1), before building anything', async () => {
    const env = { ...process.env, CAIRN_HOME: mkdtempSync(join(tmpdir(), 'cairn-remote-home-')), CAIRN_SSHOPTS: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null' };
    roots.push(env.CAIRN_HOME);
    const bad = await execa('node', [CLI, 'switch', 'missing.yaml', '--target-host', 'web1'], { env, reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--target-host web1: expected USER@HOST or USER@HOST:PORT');
    for (const argv of [
      ['switch', 'missing.yaml'],
      ['activate', 'missing.yaml', '--confirm-timeout', '5'],
      ['rollback', '--to', '1'],
    ]) {
      const r = await execa('node', [CLI, ...argv, '--target-host', 'root@127.0.0.1:1'], { env, reject: false });
      expect(r.exitCode, argv.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/^error: checking the target: cannot reach root@127\.0\.0\.1:1 over ssh: .*Connection refused/m);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const noMagic = await execa('node', [CLI, 'boot', 'missing.yaml', '--target-host', 'root@127.0.0.1:1', '--no-magic-rollback'], { env, reject: false });
    expect(noMagic.exitCode).toBe(2); // magic rollback is for switch and activate only
    for (const argv of [['switch', 'missing.yaml'], ['rollback'], ['generations', 'list']]) {
      const sudo = await execa('node', [CLI, ...argv, '--use-remote-sudo'], { env, reject: false });
      expect(sudo.exitCode, argv.join(' ')).toBe(2);
      expect(sudo.stderr).toContain('--use-remote-sudo goes with --target-host USER@HOST');
    }
    // Only the commands that build a configuration install one into a mounted root.
    const rootless = await execa('node', [CLI, 'rollback', '--root', '/mnt'], { env, reject: false });
    expect(rootless.exitCode).toBe(2);
    expect(rootless.stderr).toMatch(/Unknown argument: root/);
  });
});
