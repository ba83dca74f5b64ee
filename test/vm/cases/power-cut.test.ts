/**
 * Power cuts during remote switches: ten times, `cairn switch --target-host` to a new generation
 * starts and the machine is stopped hard (QMP quit) at a random moment of it (copying the
 * closure, writing boot entries, activating, confirming), one in each tenth of the switch's
 * time. Every time the next boot reaches multi-user.target in the old or the new generation; the
 * store holds no path without its metadata or metadata without its path, each path of the new
 * closure that is there has exactly the host's contents; every boot entry's kernel and initrd are
 * on the ESP; the profile resolves.
 */
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import type { DriverContext, Machine } from '../../../src/testing/index.js';
import { SSH_OPTS, configFile, freePort, generation, run, up } from './deploy.js';

const TRIALS = 10;

/** A listing of a store path's tree with each file's SHA-256, the same on the host and the guest. */
const digest = (path: string) =>
  `cd ${path.replace(/\/[^/]*$/, '')} && b=${path.replace(/^.*\//, '')} && { find "$b" -printf '%y %p %l\\n' | LC_ALL=C sort; find "$b" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; }`;

/** Problems of the guest's store, ESP and profile, one per line; empty when all is well. */
const CHECK = [
  'cd /cairn/store',
  'for p in *; do [ -e "/cairn/var/db/info/$p.json" ] || echo "no metadata: $p"; done',
  'for i in /cairn/var/db/info/*.json; do b="${i##*/}"; [ -e "/cairn/store/${b%.json}" ] || [ -L "/cairn/store/${b%.json}" ] || echo "metadata without path: $b"; done',
  'for e in /boot/loader/entries/*.conf; do for f in $(sed -n "s/^\\(linux\\|initrd\\) //p" "$e"); do [ -s "/boot$f" ] || echo "$e: $f missing"; done; done',
  '[ -e "$(readlink -f /cairn/var/profiles/system)/init" ] || echo "the profile does not resolve"',
].join('\n');

export default {
  name: 'power cuts during remote switches',
  // Ten switches, each cut short and booted again through the firmware: five times the driver's
  // default (it took 39 min on a 2-core machine beside the other cases, where each boot took 2-3 min).
  timeout: 4500,
  nodes: { target: generation('0') },
  async testScript({ target: m }: Record<string, Machine>, driver: DriverContext) {
    const port = await freePort();
    const [node, cli] = driver.cairn;
    const env = { ...process.env, CAIRN_HOME: driver.storeHome, CAIRN_SSHOPTS: SSH_OPTS.join(' ') };
    const cairn = async (...args: string[]) => (await run(node, [cli, ...args], { env, maxBuffer: 64 << 20 })).stdout;
    const current = async () => (await m.succeed('readlink -f /run/current-system')).trim();
    /** Starts a switch to `config` and returns when it ends (or is killed). */
    const switchTo = (config: string) => {
      const child = spawn(node, [cli, 'switch', config, '--target-host', `root@127.0.0.1:${port}`], { env, stdio: 'ignore' });
      return { child, done: new Promise<number | null>((r) => child.on('exit', (code) => r(code))) };
    };
    /** A toplevel's closure on the host (each toplevel's asked for once: the old one was the last trial's new one). */
    const closures = new Map<string, Promise<string[]>>();
    const closure = (top: string): Promise<string[]> => {
      if (!closures.has(top)) closures.set(top, cairn('store', 'path-info', '--closure', top).then((o) => o.trim().split('\n')));
      return closures.get(top)!;
    };
    await m.start();
    await up(m, port);

    // Trial 0, not cut: how long a switch takes (its build done first), the window the cuts fall in.
    const uncut = configFile('trial-0', generation('first'));
    await cairn('build', uncut, '--no-link');
    const t0 = Date.now();
    const first = switchTo(uncut);
    if ((await first.done) !== 0) throw new Error('the uncut switch failed');
    const window = Date.now() - t0;
    driver.log(`an uncut remote switch takes ${(window / 1000).toFixed(1)} s`);

    for (let trial = 1; trial <= TRIALS; trial++) {
      const config = configFile(`trial-${trial}`, generation(`trial ${trial}`));
      // Built first (not timed), so the cut falls in the copy and the switch, not in the host's build.
      const started = Date.now();
      const toplevel = (await cairn('build', config, '--no-link')).trim().split('\n').pop()!;
      const built = Date.now();
      const before = await current();
      // Stratified: trial k cuts at a random moment of the k-th tenth of the window, so the ten
      // cuts cover the whole switch every run (and the run's length varies less than with ten draws).
      const cutAfter = Math.floor(((trial - 1 + Math.random()) / TRIALS) * window * 1.1);
      const s = switchTo(config);
      await Promise.race([delay(cutAfter), s.done]);
      await m.crash();
      s.child.kill('SIGKILL');
      await s.done;

      const cut = Date.now();
      // Which trial, and where in the switch its cut fell, go with a boot that failed.
      await m.start().then(() => up(m, port)).catch((err: Error) => {
        err.message = `trial ${trial}, cut after ${(cutAfter / 1000).toFixed(1)} s of the switch's ${(window / 1000).toFixed(1)}: ${err.message}`;
        throw err;
      });
      const booted = Date.now();
      const now = await current();
      const secs = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
      driver.log(`trial ${trial}: cut after ${(cutAfter / 1000).toFixed(1)} s; booted ${now === toplevel ? 'the new' : now === before ? 'the old' : 'ANOTHER'} generation (build ${secs(started, built)} s, switch until the cut ${secs(built, cut)} s, boot ${secs(cut, booted)} s)`);
      if (now !== before && now !== toplevel) throw new Error(`trial ${trial}: the machine runs ${now}, neither the old ${before} nor the new ${toplevel}`);
      const problems = (await m.succeed(CHECK)).trim();
      if (problems) throw new Error(`trial ${trial} (cut after ${cutAfter} ms):\n${problems}`);
      // Each path the switch had to copy that made it over is the host's, byte for byte.
      const old = new Set(await closure(before));
      for (const p of (await closure(toplevel)).filter((x) => !old.has(x))) {
        const there = await m.execute(`{ test -e ${p} || test -L ${p}; } && ${digest(p)}`);
        if (there.status !== 0) continue;
        const here = await run('sh', ['-c', digest(p.replace('/cairn/store/', `${driver.storeHome}/store/`))]);
        if (here.stdout !== there.stdout) throw new Error(`trial ${trial}: ${p} differs from the host's copy`);
      }
    }
  },
};
