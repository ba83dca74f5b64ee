/**
 * Remote deploys with OpenSSH to a machine booted like hardware (OVMF, systemd-boot, writable
 * store): from the host, `cairn dry-activate|switch|rollback --target-host` copy the missing closure
 * and switch (the switch after dry-activate finds the closure there already); a switch whose firewall shuts
 * out new ssh connections is not confirmed, and the machine rolls itself back (magic rollback); a
 * deploy while another one's units run is refused; generations deleted from the host leave the
 * target's ESP; a user other than root deploys through sudo (--use-remote-sudo); a switch killed
 * with SIGKILL counts as failed and does not block the next deploy.
 */
import type { DriverContext, Machine } from '../../../src/testing/index.js';
import { SSH_OPTS, cairnOn, configFile, freePort, generation, run, up } from './deploy.js';

const two = configFile('two', generation('two'));
// The firewall no longer lets ssh in (established connections stay): nobody can confirm.
const locked = configFile('locked', generation('locked', { services: { openssh: { enable: true, openFirewall: false } } }));
// Its activation takes long enough to be killed in the middle.
const slow = configFile('slow', generation('slow', { system: { stateVersion: '0.1', activationScripts: { slow: 'sleep 300' } } }));

export default {
  name: 'remote deploys over ssh, magic rollback',
  nodes: { target: generation('one') },
  async testScript({ target: m }: Record<string, Machine>, driver: DriverContext) {
    const port = await freePort();
    await m.start();
    await up(m, port);
    const cairn = cairnOn(driver, port);
    const current = async () => (await m.succeed('readlink -f /run/current-system')).trim();
    const marker = async () => (await m.succeed('systemctl show -P Description marker.service')).trim();
    const first = await current();

    // A login other than root: refused, unless it goes through sudo (here for the dry run and its copy).
    const deployer = cairnOn(driver, port, 'deployer');
    const plain = await deployer('dry-activate', two);
    if (plain.code !== 1 || !plain.stderr.includes('logged in as deployer, but deploying needs root: log in as root, or add --use-remote-sudo')) {
      throw new Error(`a deploy as deployer without sudo: exit ${plain.code}\n${plain.stderr}`);
    }
    const dry = await deployer('dry-activate', two, '--use-remote-sudo');
    if (dry.code !== 0 || !/would stop marker\.service before activation, start it after: changed/.test(dry.stdout + dry.stderr)) throw new Error(`dry-activate: exit ${dry.code}\n${dry.stdout}${dry.stderr}`);
    if ((await current()) !== first) throw new Error('dry-activate changed the running system');
    // To run the new generation's plan, its missing paths went over first.
    if (!/copied [1-9]\d* store paths/.test(dry.stderr)) throw new Error(`dry-activate copied nothing:\n${dry.stderr}`);

    const logins = async () => Number((await m.succeed("journalctl -o cat | grep -c '^Accepted publickey for root' || true")).trim());
    const loginsBefore = await logins();
    const sw = await cairn('switch', two, '--json');
    if (sw.code !== 0) throw new Error(`switch: exit ${sw.code}\n${sw.stderr}`);
    // The switch's sessions (checks, copy, switch) share one login; the confirmation proves a new one works.
    const switchLogins = (await logins()) - loginsBefore;
    if (switchLogins !== 2) throw new Error(`the switch logged in ${switchLogins} times, not twice (one shared connection, one for the confirmation)`);
    const done = JSON.parse(sw.stdout) as { toplevel: string; generation: number; copied: number; confirmed: boolean };
    if (!(done.copied === 0 && done.confirmed && done.generation === 2)) throw new Error(`switch reported ${sw.stdout}`);
    if ((await current()) !== done.toplevel || (await marker()) !== 'generation two') throw new Error('the machine does not run generation 2');
    if (!(await m.succeed('ls /boot/loader/entries')).includes('cairn-generation-2+3.conf')) throw new Error('switch wrote no boot entry for generation 2');

    // While another deploy's units run (here a stand-in for a watchdog awaiting its confirmation),
    // a deploy is refused and changes nothing.
    await m.succeed('mkdir -p /run/cairn && : > /run/cairn/held.sh && systemd-run --quiet --unit=cairn-rollback-held sleep 600');
    const refused = await cairn('rollback');
    if (refused.code !== 1 || !refused.stderr.includes('another deploy to this machine is in progress (its units cairn-switch-held and cairn-rollback-held')) {
      throw new Error(`a deploy during another: exit ${refused.code}\n${refused.stderr}`);
    }
    if ((await current()) !== done.toplevel) throw new Error('the refused rollback changed the running system');
    await m.succeed('systemctl stop cairn-rollback-held');

    const back = await cairn('rollback');
    if (back.code !== 0 || (await current()) !== first || (await marker()) !== 'generation one') throw new Error(`rollback: exit ${back.code}, running ${await current()}`);

    const profileBefore = (await m.succeed('readlink /cairn/var/profiles/system')).trim();
    const cut = await cairn('switch', locked, '--confirm-timeout', '20');
    if (cut.code !== 1 || !/roll(s|ing)? (itself )?back/.test(cut.stderr)) throw new Error(`an unconfirmable switch: exit ${cut.code}\n${cut.stderr}`);
    // The machine comes back by itself: the previous generation runs, the profile points at it again, ssh works.
    await m.waitUntilSucceeds(`test "$(readlink -f /run/current-system)" = ${first}`);
    if ((await marker()) !== 'generation one') throw new Error(`after the magic rollback the marker says ${await marker()}`);
    const profileAfter = (await m.succeed('readlink /cairn/var/profiles/system')).trim();
    if (profileAfter !== profileBefore) throw new Error(`the profile is ${profileAfter} after the magic rollback, was ${profileBefore}`);
    await run('ssh', [...SSH_OPTS, '-p', String(port), '-o', 'ConnectTimeout=60', 'root@127.0.0.1', 'true']);

    // Generations deleted from here: the target's boot entries follow.
    const gens = await cairn('generations', 'list', '--json');
    const numbers = (JSON.parse(gens.stdout || '[]') as { number: number; current: boolean }[]).map((g) => `${g.number}${g.current ? '*' : ''}`);
    if (gens.code !== 0 || numbers.join(' ') !== '1* 2') throw new Error(`generations list: exit ${gens.code}, ${numbers.join(' ')}\n${gens.stderr}`);
    const del = await cairn('generations', 'delete', '2');
    if (del.code !== 0) throw new Error(`generations delete 2: exit ${del.code}\n${del.stderr}`);
    const left = (await m.succeed('ls /boot/loader/entries')).trim().split('\n');
    if (left.length !== 1 || !left[0]!.startsWith('cairn-generation-1')) throw new Error(`after deleting generation 2 the ESP holds ${left.join(' ')}`);

    // A switch killed without a word (SIGKILL, as the OOM killer kills) writes no result: its
    // watchdog answers for it once the unit is gone (a failed switch), so the deploy ends with exit
    // 1 instead of waiting for it, and the next deploy is not refused.
    const killing = cairn('switch', slow, '--confirm-timeout', '20');
    await m.waitUntilSucceeds('pgrep -x sleep -a | grep -q "sleep 300"');
    await m.succeed("systemctl kill --signal=KILL 'cairn-switch-*'");
    const killed = await killing;
    if (killed.code !== 1) throw new Error(`a killed switch: exit ${killed.code}\n${killed.stderr}`);
    if (!killed.stderr.includes('failed: it was killed before it ended')) throw new Error(`a killed switch does not say it was killed:\n${killed.stderr}`);
    await m.waitUntilSucceeds("! systemctl is-active --quiet 'cairn-rollback-*'");
    const after = await cairn('rollback');
    if (after.code !== 0 || (await current()) !== first) throw new Error(`a deploy after the killed one: exit ${after.code}, running ${await current()}\n${after.stderr}`);
  },
};
