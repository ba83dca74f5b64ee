/**
 * cairn run inside a booted cairn machine (`programs.cairn`), under OVMF with the store on its
 * writable root and the ESP at /boot, fetching nothing (the lock the host made for generation 1 is
 * beside the configuration; every package the switch needs is in the machine's store, and the
 * kernel's and the initrd's build-only packages are not needed while those are unchanged):
 *   `cairn switch` builds generation 2 in the machine (one service changed, one added), makes it
 *     the profile's current one, activates it and writes its boot entry;
 *   `cairn generations list --json` and `diff 1 2` show it; `cairn rollback` brings 1 back live;
 *   `cairn generations delete 2` drops generation 2 and its boot entry.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverContext, Machine } from '../../../src/testing/index.js';
import { defaultRepositories, lockPathFor } from '../../../src/debian/index.js';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
// The machine has no /etc/apt: its configuration names the archive (the host's mirror) and keys.
const repositories = defaultRepositories().map((r) => ({ suite: r.suite, components: r.components, architecture: r.architecture, uri: r.uri, keyring: KEYRING }));

/** A service whose running text leaves its mark in /run. */
const service = (name: string, text: string) => ({ description: `${name}: ${text}`, wantedBy: ['multi-user.target'], script: `echo ${text} > /run/${name}; exec sleep infinity` });
const generation = (services: Record<string, unknown>) => ({
  networking: { hostName: 'selfhost' },
  system: { stateVersion: '0.1' },
  // What the driver adds to its machines (no vlans: nothing more), so generation 2 keeps the test shell.
  virtualisation: { vm: true, useBootLoader: true, memorySize: 2048, vlans: [] },
  testing: { enable: true },
  programs: { cairn: { enable: true } },
  packages: { repositories },
  systemd: { services },
});
const one = generation({ marker: service('marker', 'one') });
// Only units change: the same packages, so the lock and the machine's store cover the build.
const two = generation({ marker: service('marker', 'two'), added: service('added', 'added') });

// Generation 1's configuration as a file: its lock (`host.lock`) is written beside it by the build.
const dir = mkdtempSync(join(tmpdir(), 'cairn-test-self-'));
const hostConfig = join(dir, 'host.json');
writeFileSync(hostConfig, JSON.stringify(one, null, 2));

const PROFILE = '/cairn/var/profiles/system';
/** Guest commands that build (Node under TCG): minutes. */
const LONG = 1800;

export default {
  name: 'cairn inside a cairn machine: switch, generations list/diff, rollback, delete',
  // cairn builds and switches inside the machine: three times the driver's default.
  timeout: 2700,
  nodes: { selfhost: hostConfig },
  async testScript({ selfhost: m }: Record<string, Machine>, driver: DriverContext) {
    try {
      await run(m, driver);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

async function run(m: Machine, driver: DriverContext): Promise<void> {
  const read = async (cmd: string) => (await m.succeed(cmd)).trim();
  /** Runs cairn: its stderr with its stdout; a failure throws with all of it. */
  const cairn = async (args: string, timeout?: number): Promise<string> => {
    const started = performance.now();
    await m.succeed(`cairn ${args} > /root/cairn.log 2>&1; echo $? > /root/cairn.status`, { timeout });
    // Read apart: the test shell keeps a command's output in /tmp, which a switch must leave alone, but may not.
    const [status, out] = [await read('cat /root/cairn.status'), await m.succeed('cat /root/cairn.log')];
    driver.log(`cairn ${args}: exit ${status} in ${((performance.now() - started) / 1000).toFixed(1)} s\n${out}`);
    if (status !== '0') throw new Error(`cairn ${args} failed in the machine (exit ${status}):\n${out}`);
    return out;
  };
  const current = () => read('readlink -f /run/current-system');
  const profile = () => read(`readlink ${PROFILE}`);
  const entries = async () => (await read('ls /boot/loader/entries')).split('\n').sort();
  /** The marker service is active, runs `text` (its unit's) and has left that mark (it may just have started). */
  const expectMarker = async (text: string, when: string) => {
    await m.waitForUnit('marker.service');
    const marked = await m.waitUntilSucceeds(`[ "$(cat /run/marker 2>/dev/null)" = ${text} ]`).then(
      () => true,
      () => false,
    );
    const description = await read('systemctl show -P Description marker.service');
    if (!marked || description !== `marker: ${text}`) {
      const state = (await m.execute('cat /run/marker; systemctl status --no-pager marker.service; journalctl --no-pager -n 20 -u marker.service')).stdout;
      throw new Error(`${when}: marker.service is "${description}" and left "${(await m.execute('cat /run/marker')).stdout.trim()}", not "${text}"\n${state}`);
    }
  };

  await m.start();
  await m.waitForUnit('multi-user.target');
  await expectMarker('one', 'generation 1');
  const first = await current();
  if ((await profile()) !== 'system-1-link') throw new Error(`the booted machine's profile is ${await profile()}`);
  if (JSON.stringify(await entries()) !== JSON.stringify(['cairn-generation-1.conf'])) throw new Error(`the image's ESP holds ${await entries()}`);

  // Generation 2's configuration and the lock generation 1 was built with, as a user writes them.
  const guestDir = join(dir, 'guest');
  mkdirSync(guestDir);
  // JSON is YAML too.
  writeFileSync(join(guestDir, 'host.yaml'), JSON.stringify(two, null, 2));
  await m.copyToMachine(join(guestDir, 'host.yaml'), '/root/conf/host.yaml');
  await m.copyToMachine(lockPathFor(hostConfig), '/root/conf/host.lock');
  const lockBefore = await read('sha256sum /root/conf/host.lock');
  // A switch on a running machine leaves /tmp alone (files in use there, services' private /tmp).
  await m.succeed('echo kept > /tmp/kept && ls -d /tmp/systemd-private-* > /root/private-tmp');

  // 1. switch: built in the machine, generation 2 current, activated, its boot entry on the ESP.
  const sw = await cairn('switch /root/conf/host.yaml', LONG);
  if (!/\d+ packages from \/root\/conf\/host\.lock/.test(sw)) throw new Error(`the switch did not build from the lock:\n${sw}`);
  if ((await read('sha256sum /root/conf/host.lock')) !== lockBefore) throw new Error('the switch rewrote the lock');
  // The kernel and the initrd did not change: their build-only packages (the kernel package's
  // 400 MB of modules, busybox) were not fetched into the machine.
  const buildOnly = await read("ls /cairn/store | grep -E -- '-(linux-image-[0-9]|busybox-static-)' || true");
  if (buildOnly !== '') throw new Error(`the switch put build-only packages into the machine's store:\n${buildOnly}`);
  if ((await profile()) !== 'system-2-link') throw new Error(`after the switch the profile is ${await profile()}\n${sw}`);
  const tmp = await m.execute('cat /tmp/kept && ls -d $(cat /root/private-tmp)');
  if (tmp.status !== 0) throw new Error(`the switch deleted files in /tmp:\n${tmp.stdout}\n${(await m.execute('ls -la /tmp')).stdout}`);
  const second = await read(`readlink -f ${PROFILE}`);
  if (second === first) throw new Error(`the switch built generation 1's toplevel again (${first})`);
  if ((await current()) !== second) throw new Error(`/run/current-system is ${await current()}, not generation 2 (${second})\n${sw}`);
  await expectMarker('two', 'after the switch');
  await m.waitForUnit('added.service');
  if ((await read('cat /run/added')) !== 'added') throw new Error('added.service did not run its text');
  const afterSwitch = await entries();
  if (!(afterSwitch.length === 2 && afterSwitch[0] === 'cairn-generation-1.conf' && /^cairn-generation-2(\+3)?\.conf$/.test(afterSwitch[1]!))) {
    throw new Error(`after the switch the ESP holds ${afterSwitch.join(', ')}\n${sw}`);
  }
  const entry2 = afterSwitch[1]!;
  const entryText = await read(`cat /boot/loader/entries/${entry2}`);
  if (!entryText.includes(second.replace(/^\/cairn\/store\//, ''))) throw new Error(`generation 2's entry does not boot its toplevel ${second}:\n${entryText}`);

  // 2. The generations as cairn lists and compares them.
  const listed = JSON.parse(await cairn('generations list --json')) as { number: number; toplevel: string; current: boolean }[];
  const summary = listed.map((g) => `${g.number}${g.current ? '*' : ''} ${g.toplevel}`).join('\n');
  if (!(listed.length === 2 && listed[0]!.number === 1 && !listed[0]!.current && listed[0]!.toplevel === first && listed[1]!.number === 2 && listed[1]!.current && listed[1]!.toplevel === second)) {
    throw new Error(`generations list --json:\n${summary}`);
  }
  const diff = await cairn('generations diff 1 2');
  /** The indented lines under a heading (`units:`, `/etc:`) of the diff. */
  const section = (heading: string) => {
    const lines = diff.split('\n');
    const at = lines.indexOf(heading);
    if (at < 0) return [];
    const end = lines.findIndex((l, i) => i > at && !l.startsWith('  '));
    return lines.slice(at + 1, end < 0 ? undefined : end).sort();
  };
  const units = section('units:');
  if (JSON.stringify(units) !== JSON.stringify(['  + added.service', '  ~ marker.service'])) throw new Error(`generations diff 1 2:\n${diff}`);
  if (/^packages:/m.test(diff)) throw new Error(`generations diff 1 2 shows package changes:\n${diff}`);
  if (!section('/etc:').includes('  + systemd/system/added.service')) throw new Error(`generations diff 1 2 shows no new unit file in /etc:\n${diff}`);

  // 3. rollback: generation 1 live again.
  await cairn('rollback');
  if ((await profile()) !== 'system-1-link') throw new Error(`after the rollback the profile is ${await profile()}`);
  if ((await current()) !== first) throw new Error(`after the rollback /run/current-system is ${await current()}, not ${first}`);
  await expectMarker('one', 'after the rollback');
  await m.fail('systemctl is-active added.service');

  // 4. delete: generation 2 and its boot entry go.
  await cairn('generations delete 2');
  if ((await m.execute(`test -e ${PROFILE}-2-link`)).status === 0) throw new Error(`${PROFILE}-2-link is still there`);
  const afterDelete = await entries();
  if (JSON.stringify(afterDelete) !== JSON.stringify(['cairn-generation-1.conf'])) throw new Error(`after deleting generation 2 the ESP holds ${afterDelete.join(', ')}`);
  const left = JSON.parse(await cairn('generations list --json')) as { number: number; current: boolean }[];
  if (!(left.length === 1 && left[0]!.number === 1 && left[0]!.current)) throw new Error(`after the delete: ${JSON.stringify(left)}`);
}
