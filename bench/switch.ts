/**
 * Switch benchmark: a running machine (test driver, direct boot) switches to a generation that
 * changes one service. Measured: the whole `switch-to-configuration switch` in the guest, the
 * changed service's own restart (its stop and its start, systemd's timestamps), the switch
 * without it, and a switch to the generation already running (the plan and activation alone).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Store } from '../src/store/index.js';
import { Machine } from '../src/testing/index.js';

const generation = (text: string) => ({
  networking: { hostName: 'bench' },
  system: { stateVersion: '0.1' },
  systemd: { services: { changing: { description: 'the service a switch changes', wantedBy: ['multi-user.target'], script: `echo ${text}; exec sleep infinity` } } },
});

export async function run(): Promise<void> {
  process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-bench-debian-cache');
  const work = mkdtempSync(join(tmpdir(), 'cairn-bench-switch-'));
  try {
    const config = join(work, 'one.json');
    writeFileSync(config, JSON.stringify(generation('one')));
    const store = Store.open(join(work, 'home'));
    const next = join(work, 'two.json');
    writeFileSync(next, JSON.stringify(generation('two')));
    const machine = new Machine({ name: 'bench', config, store, dir: join(work, 'bench'), alsoInStore: [next] });
    await machine.start();
    await machine.waitForUnit('multi-user.target');
    await machine.waitForUnit('changing.service');
    const first = (await machine.succeed('readlink -f /run/current-system')).trim();
    const [second] = machine.otherSystems as [string];
    /** Microseconds of a command in the guest (the test shell's round trip, a few ms, included). */
    const timed = async (cmd: string): Promise<number> => {
      const t = process.hrtime.bigint();
      await machine.succeed(`${cmd} >/dev/null`);
      return Number(process.hrtime.bigint() - t) / 1000;
    };
    const usec = async (prop: string): Promise<number> => Number((await machine.succeed(`systemctl show -P ${prop} changing.service`)).trim());
    const noop = await timed(`${first}/bin/switch-to-configuration switch`);
    const total = await timed(`${second}/bin/switch-to-configuration switch`);
    // Its stop (active → inactive) and its start (inactive → active); the switch's own work lies between.
    const restart = (await usec('InactiveEnterTimestampMonotonic')) - (await usec('ActiveExitTimestampMonotonic')) + (await usec('ActiveEnterTimestampMonotonic')) - (await usec('InactiveExitTimestampMonotonic'));
    const s = (us: number) => `${(us / 1e6).toFixed(2)} s`;
    console.log(`switch changing one service (TCG guest): ${s(total)} in all, the service's own restart ${s(restart)}, the switch without it ${s(total - restart)}`);
    console.log(`switch to the running generation (plan + activation only): ${s(noop)}; changing one service costs ${((total - restart) / noop).toFixed(2)}× that`);
    await machine.shutdown();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
