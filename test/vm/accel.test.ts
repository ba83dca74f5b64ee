import { describe, expect, it } from 'vitest';
import { chooseAccelerator, probeKernel, runProbe } from '../../src/vm/accel.js';
import { hasTool } from '../../src/host/tools.js';

describe.skipIf(!hasTool('qemu-system-x86_64'))('accelerator probe', () => {
  it('boots the probe kernel under TCG and reads its marker', async () => {
    expect(probeKernel().subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(await runProbe('tcg', 20_000)).not.toBeNull();
  });

  it('chooses an accelerator that runs guests, and says why', async () => {
    const choice = await chooseAccelerator();
    expect(['kvm', 'tcg']).toContain(choice.accel);
    expect(choice.reason.length).toBeGreaterThan(0);
    // Whatever was chosen must actually run a guest; KVM only when it beat TCG on the probe.
    const chosen = await runProbe(choice.accel, 20_000);
    expect(chosen).not.toBeNull();
    if (choice.accel === 'kvm') expect(choice.reason).toMatch(/^KVM works/);
  });

  it('honours CAIRN_ACCEL', async () => {
    process.env.CAIRN_ACCEL = 'tcg';
    try {
      expect(await chooseAccelerator()).toEqual({ accel: 'tcg', reason: 'CAIRN_ACCEL=tcg' });
    } finally {
      delete process.env.CAIRN_ACCEL;
    }
  });
});
