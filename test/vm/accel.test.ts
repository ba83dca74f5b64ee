import { describe, expect, it } from 'vitest';
import { chooseAccelerator, probeKernel, qemuVersionText, runProbe, tcgSmpRisk } from '../../src/vm/accel.js';
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

describe('QEMU versions whose TCG crashes guests with several CPUs', () => {
  const v72 = 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 Fabrice Bellard';
  const v10 = 'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)';
  it('warns for QEMU 7 under TCG with more than one CPU, naming the ways out', () => {
    expect(tcgSmpRisk('tcg', 2, v72)).toMatch(/^QEMU 7 emulates this machine's 2 CPUs .*QEMU 8 or newer.*--cpus 1/);
  });
  it('is quiet with one CPU, under KVM, with QEMU 8 or newer, or when the version is unknown', () => {
    expect(tcgSmpRisk('tcg', 1, v72)).toBeUndefined();
    expect(tcgSmpRisk('kvm', 4, v72)).toBeUndefined();
    expect(tcgSmpRisk('tcg', 2, v10)).toBeUndefined();
    expect(tcgSmpRisk('tcg', 2, '')).toBeUndefined();
  });
  it.skipIf(!hasTool('qemu-system-x86_64'))("reads the installed QEMU's version", async () => {
    expect(await qemuVersionText()).toMatch(/^QEMU emulator version \d+\./);
  });
});
