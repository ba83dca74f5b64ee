/**
 * Switching a running machine from generation 1 to 2 (switch-to-configuration inside the guest):
 * nginx's configuration changes (reloaded through its reload triggers, serving B), a service is added (started), one removed
 * (stopped), one untouched (not restarted: its start time stays); dry-activate printed that plan.
 */
import type { Machine } from '../../../src/testing/index.js';

const service = (text: string) => ({ description: text, wantedBy: ['multi-user.target'], script: `echo ${text}; exec sleep infinity` });
const generation = (page: string, services: Record<string, unknown>) => ({
  networking: { hostName: 'switcher' },
  system: { stateVersion: '0.1' },
  environment: { systemPackages: ['curl'], etc: { [`www-${page}/index.html`]: { text: `page ${page}\n` } } },
  services: { nginx: { enable: true, virtualHosts: { switcher: { default: true, root: `/etc/www-${page}` } } } },
  systemd: { services },
});

export default {
  name: 'switching generations',
  nodes: {
    switcher: {
      configuration: generation('A', { untouched: service('untouched'), removed: service('removed') }),
      alsoInStore: [generation('B', { untouched: service('untouched'), added: service('added') })],
    },
  },
  async testScript({ switcher }: Record<string, Machine>) {
    const gen2 = switcher.otherSystems[0]!;
    await switcher.start();
    for (const u of ['nginx.service', 'untouched.service', 'removed.service']) await switcher.waitForUnit(u);
    await switcher.waitForOpenPort(80);
    if ((await switcher.succeed('curl -fsS http://127.0.0.1/')) !== 'page A\n') throw new Error('generation 1 does not serve page A');
    const since = await switcher.succeed('systemctl show -P ActiveEnterTimestampMonotonic untouched.service');

    const dry = await switcher.succeed(`${gen2}/bin/switch-to-configuration dry-activate`);
    const plan = dry.split('\n').filter((l) => l.startsWith('would ') && !l.startsWith('would activate')).sort();
    const expected = ['would reload nginx.service: reloadTriggers changed', 'would start added.service: new, wanted by multi-user.target', 'would stop removed.service: removed'];
    if (JSON.stringify(plan) !== JSON.stringify(expected)) throw new Error(`dry-activate planned:\n${dry}`);
    if ((await switcher.succeed('readlink -f /run/current-system')).trim() === gen2) throw new Error('dry-activate activated');

    await switcher.succeed(`${gen2}/bin/switch-to-configuration switch`);
    if ((await switcher.succeed('readlink -f /run/current-system')).trim() !== gen2) throw new Error('/run/current-system is not generation 2');
    await switcher.waitUntilSucceeds('curl -fsS http://127.0.0.1/ | grep -qx "page B"', { timeout: 60 });
    await switcher.waitForUnit('added.service');
    await switcher.fail('systemctl is-active removed.service');
    const after = await switcher.succeed('systemctl show -P ActiveEnterTimestampMonotonic untouched.service');
    if (after !== since) throw new Error(`untouched.service was restarted (${since.trim()} -> ${after.trim()})`);
  },
};
