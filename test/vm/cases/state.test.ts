/**
 * A machine's state disk survives a crash (QMP quit, no clean shutdown), and a unit that fails
 * makes waitForUnit fail at once with the unit's journal in the message.
 */
import type { Machine } from '../../../src/testing/index.js';

export default {
  name: 'state disk and failing units',
  nodes: {
    machine: {
      networking: { hostName: 'machine' },
      system: { stateVersion: '0.1' },
      systemd: {
        services: {
          broken: {
            description: 'A service that fails',
            wantedBy: ['multi-user.target'],
            serviceConfig: { Type: 'oneshot' },
            script: 'echo "broken: the disk is on fire" >&2; exit 3',
          },
        },
      },
    },
  },
  async testScript({ machine }: Record<string, Machine>) {
    await machine.start();
    await machine.succeed('echo kept > /var/lib/marker && sync');
    const t = Date.now();
    const err = await machine.waitForUnit('broken.service', { timeout: 240 }).then(
      () => null,
      (e: Error) => e,
    );
    if (!err) throw new Error('waitForUnit(broken.service) succeeded');
    if (!err.message.includes('the unit failed') || !err.message.includes('broken: the disk is on fire')) throw new Error(`unexpected message: ${err.message}`);
    if (Date.now() - t > 120_000) throw new Error(`waitForUnit took ${(Date.now() - t) / 1000} s to see the failure`);
    await machine.crash();
    await machine.start();
    const kept = await machine.succeed('cat /var/lib/marker');
    if (kept.trim() !== 'kept') throw new Error(`after crash() and start(): ${JSON.stringify(kept)}`);
  },
};
