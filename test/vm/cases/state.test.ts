/**
 * A machine's state disk survives a crash (QMP quit, no clean shutdown), and a unit that fails
 * makes waitForUnit fail at once with the unit's journal in the message. Also: files both ways,
 * a screenshot, keys typed on the console's keyboard, waits for files and ports.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Machine } from '../../../src/testing/index.js';

const scratch = mkdtempSync(join(tmpdir(), 'cairn-test-files-'));

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
    // A failed unit ends the wait at once, with its journal, not when the wait's limit runs out.
    const err = await machine.waitForUnit('broken.service').then(
      () => null,
      (e: Error) => e,
    );
    if (!err) throw new Error('waitForUnit(broken.service) succeeded');
    if (!err.message.includes('the unit failed') || !err.message.includes('broken: the disk is on fire')) throw new Error(`unexpected message: ${err.message}`);
    // Files both ways, any bytes, megabytes of them: more than the host's socket holds at once,
    // which a virtio console (rather than a port) lost part of when the host read it slower.
    const bytes = randomBytes(4 << 20);
    writeFileSync(join(scratch, 'in.bin'), bytes);
    await machine.copyToMachine(join(scratch, 'in.bin'), '/var/lib/copied/in.bin');
    await machine.succeed('cp /var/lib/copied/in.bin /var/lib/copied/out.bin');
    await machine.copyFromMachine('/var/lib/copied/out.bin', join(scratch, 'out.bin'));
    if (!readFileSync(join(scratch, 'out.bin')).equals(bytes)) throw new Error('a file copied in and out changed');
    // Waits on files and ports.
    await machine.succeed('(sleep 2; touch /run/later) >/dev/null 2>&1 &');
    await machine.waitForFile('/run/later');
    await machine.waitForClosedPort(8000);
    await machine.waitUntilFails('test -e /run/never');
    // The screen and the keyboard: a PNG of the display; typed keys reach a reader of tty1.
    await machine.screenshot(join(scratch, 'screen.png'));
    if (!readFileSync(join(scratch, 'screen.png')).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('screenshot is not a PNG');
    await machine.succeed('(timeout 120 head -n 1 /dev/tty1 > /run/typed) >/dev/null 2>&1 &');
    // Keys typed before the reader has tty1 open are lost: on a single vCPU the reader may not have
    // run yet when the shell has already answered.
    await machine.waitUntilSucceeds('for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = head ] && ls -l $d/fd 2>/dev/null | grep -q /dev/tty1 && exit 0; done; exit 1');
    await machine.sendChars('Cairn typed 42!\n');
    await machine.waitUntilSucceeds('grep -qx "Cairn typed 42!" /run/typed');
    await machine.crash();
    await machine.start();
    const kept = await machine.succeed('cat /var/lib/marker');
    if (kept.trim() !== 'kept') throw new Error(`after crash() and start(): ${JSON.stringify(kept)}`);
  },
};
