/**
 * Generations on a machine that boots like hardware (OVMF, systemd-boot, the store on its root):
 *   1 → 2 by switch-to-configuration switch: nginx reloaded (its reload triggers) serves B, a
 *     service added (started), one removed (stopped), one disabled (stopped and masked), one
 *     untouched (its start time stays);
 *     dry-activate printed exactly that plan; the ESP got generation 2's entry with boot tries.
 *   reboot: generation 2 boots and systemd-bless-boot marks its entry good (the counter goes).
 *   rollback to 1 live (nginx serves A again); reboot boots 1, the default; `bootctl set-oneshot`
 *     the other entry boots 2.
 *   3, whose boot fails (a unit boot-complete.target requires fails), made the default by `boot`
 *     with one try: it boots once, is abandoned, and the next boot is generation 2 again.
 */
import type { Machine } from '../../../src/testing/index.js';
import { setProfile } from './host.js';

const service = (text: string) => ({ description: text, wantedBy: ['multi-user.target'], script: `echo ${text}; exec sleep infinity` });
const generation = (page: string, services: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  networking: { hostName: 'switcher' },
  system: { stateVersion: '0.1' },
  virtualisation: { useBootLoader: true },
  environment: { systemPackages: ['curl'], etc: { [`www-${page}/index.html`]: { text: `page ${page}\n` } } },
  services: { nginx: { enable: true, virtualHosts: { switcher: { default: true, root: `/etc/www-${page}` } } } },
  ...extra,
  systemd: { services },
});
// A disabled unit is masked: stopped by the switch, and it cannot be started by hand either.
const services = { untouched: service('untouched'), added: service('added'), masked: { enable: false } };
const broken = {
  ...services,
  // A boot counts as good only once boot-complete.target is reached; this unit makes sure it is not.
  'health-check': { description: 'a failing health check', requiredBy: ['boot-complete.target'], before: ['boot-complete.target'], serviceConfig: { Type: 'oneshot' }, script: 'exit 1' },
};


export default {
  name: 'generations: switch, boot entries, rollback, boot counting',
  // Many reboots under OVMF: twice the driver's default.
  timeout: 1800,
  nodes: {
    switcher: {
      configuration: generation('A', { untouched: service('untouched'), removed: service('removed'), masked: service('masked') }),
      alsoInStore: [generation('B', services), generation('B', broken, { boot: { loader: { 'systemd-boot': { bootCounting: { tries: 1 } } } } })],
    },
  },
  async testScript({ switcher: m }: Record<string, Machine>) {
    const [gen2, gen3] = m.otherSystems as [string, string];
    const booted = async () => (await m.succeed('readlink -f /run/booted-system')).trim();
    /** What the loader saw and chose, for a failure message. */
    const loaderState = async () => (await m.execute('systemctl start boot.mount; ls /boot/loader/entries; cat /proc/cmdline; bootctl list --no-pager 2>&1 | head -40')).stdout;
    const expectBooted = async (want: string, what: string) => {
      const got = await booted();
      if (got !== want) throw new Error(`${what} booted ${got}, not ${want}\n${await loaderState()}`);
    };
    const entries = async () => {
      return (await m.succeed('ls /boot/loader/entries')).trim().split('\n').sort();
    };
    const up = () => m.waitForUnit('multi-user.target');
    const reboot = async () => {
      await m.reboot();
      await up();
    };
    await m.start();
    await up();
    // The ESP is an automount: local-fs.target (and so the boot) did not wait for its device;
    // the first look inside mounts it (a switch's install-bootloader is such a look).
    await m.succeed('systemctl is-active boot.automount');
    const localFs = (await m.succeed('systemctl list-dependencies --plain --no-legend local-fs.target')).split('\n').map((l) => l.trim());
    if (!localFs.includes('boot.automount') || localFs.includes('boot.mount')) throw new Error(`local-fs.target pulls in:\n${localFs.join('\n')}`);
    if ((await m.succeed('stat -f -c %T /boot/.')).trim() !== 'msdos') throw new Error('looking into /boot did not mount the ESP');
    for (const u of ['nginx.service', 'untouched.service', 'removed.service', 'masked.service']) await m.waitForUnit(u);
    await m.waitForOpenPort(80);
    if ((await m.succeed('curl -fsS http://127.0.0.1/')) !== 'page A\n') throw new Error('generation 1 does not serve page A');
    const first = await booted();
    if (JSON.stringify(await entries()) !== JSON.stringify(['cairn-generation-1.conf'])) throw new Error(`the image's ESP holds ${await entries()}`);
    const since = await m.succeed('systemctl show -P ActiveEnterTimestampMonotonic untouched.service');

    const dry = await m.succeed(`${gen2}/bin/switch-to-configuration dry-activate`);
    const plan = dry.split('\n').filter((l) => l.startsWith('would ') && !l.startsWith('would activate')).sort();
    const expected = ['would reload nginx.service: reloadTriggers changed', 'would start added.service: new, wanted by multi-user.target', 'would stop masked.service: masked', 'would stop removed.service: removed'];
    if (JSON.stringify(plan) !== JSON.stringify(expected)) throw new Error(`dry-activate planned:\n${dry}`);
    if ((await m.succeed('readlink -f /run/current-system')).trim() === gen2) throw new Error('dry-activate activated');

    await m.succeed(`${setProfile(2, gen2)} && ${gen2}/bin/switch-to-configuration switch`);
    if ((await m.succeed('readlink -f /run/current-system')).trim() !== gen2) throw new Error('/run/current-system is not generation 2');
    await m.waitUntilSucceeds('curl -fsS http://127.0.0.1/ | grep -qx "page B"');
    await m.waitForUnit('added.service');
    await m.fail('systemctl is-active removed.service');
    await m.fail('systemctl is-active masked.service');
    if ((await m.execute('systemctl is-enabled masked.service')).stdout.trim() !== 'masked') throw new Error('masked.service is not masked');
    await m.fail('systemctl start masked.service');
    const after = await m.succeed('systemctl show -P ActiveEnterTimestampMonotonic untouched.service');
    if (after !== since) throw new Error(`untouched.service was restarted (${since.trim()} -> ${after.trim()})`);
    const two = await entries();
    if (JSON.stringify(two) !== JSON.stringify(['cairn-generation-1.conf', 'cairn-generation-2+3.conf'])) throw new Error(`after the switch the ESP holds ${two}`);

    // The new default boots; once boot-complete.target is reached its entry is good (no counter).
    await reboot();
    await expectBooted(gen2, 'the reboot after the switch');
    await m.waitForUnit('systemd-bless-boot.service');
    await m.waitUntilSucceeds('test -e /boot/loader/entries/cairn-generation-2.conf');

    // Rollback, live: generation 1's switch with the profile pointing back at it.
    await m.succeed(`${setProfile(1, first)} && ${first}/bin/switch-to-configuration switch`);
    await m.waitUntilSucceeds('curl -fsS http://127.0.0.1/ | grep -qx "page A"');
    await reboot();
    await expectBooted(first, 'the reboot after the rollback');
    // The other entry, chosen for one boot.
    await m.succeed('bootctl set-oneshot cairn-generation-2.conf');
    await reboot();
    await expectBooted(gen2, 'the one-shot entry');

    // A generation that never completes a boot is abandoned: back to generation 2.
    await m.succeed(`${setProfile(2, gen2)} && ${gen2}/bin/switch-to-configuration boot`);
    await m.succeed(`${setProfile(3, gen3)} && ${gen3}/bin/switch-to-configuration boot`);
    if (!(await entries()).includes('cairn-generation-3+1.conf')) throw new Error(`boot did not add generation 3's entry: ${await entries()}`);
    await reboot();
    await expectBooted(gen3, 'the first boot after `boot` of generation 3');
    await m.waitUntilSucceeds('systemctl is-failed --quiet health-check.service');
    await m.fail('systemctl is-active --quiet boot-complete.target');
    await reboot();
    await expectBooted(gen2, 'the boot after generation 3 failed');
    if (!(await entries()).includes('cairn-generation-3+0-1.conf')) throw new Error(`generation 3's entry was not counted down: ${await entries()}`);
  },
};
