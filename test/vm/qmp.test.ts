import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasTool } from '../../src/host/tools.js';
import { probeKernel } from '../../src/vm/accel.js';
import { QmpClient } from '../../src/vm/qmp.js';

async function waitFor(path: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`${path} did not appear`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!hasTool('qemu-system-x86_64'))('QMP client', () => {
  it('queries a paused machine, sees it run, and stops it with quit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-qmp-'));
    try {
      const kernel = join(dir, 'probe.elf');
      await writeFile(kernel, probeKernel());
      const sock = join(dir, 'qmp.sock');
      // -S: paused until `cont`, so the test sees both states.
      const qemu = execa('qemu-system-x86_64', ['-accel', 'tcg', '-machine', 'pc', '-m', '32', '-display', 'none', '-nodefaults', '-S', '-qmp', `unix:${sock},server=on,wait=off`, '-kernel', kernel], { reject: false });
      await waitFor(sock, 10_000);
      const qmp = await QmpClient.connect(sock);
      expect(await qmp.execute<{ status: string }>('query-status')).toMatchObject({ status: 'prelaunch' });
      await expect(qmp.execute('no-such-command')).rejects.toThrow(/QMP no-such-command/);
      await qmp.execute('cont');
      expect((await qmp.execute<{ running: boolean }>('query-status')).running).toBe(true);
      const events: string[] = [];
      qmp.onEvent((e) => events.push(e.event));
      await qmp.execute('quit');
      const r = await qemu;
      expect(r.exitCode).toBe(0);
      expect(events).toContain('SHUTDOWN');
      qmp.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
