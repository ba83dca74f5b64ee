import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Accelerator = 'kvm' | 'tcg';

export interface AcceleratorChoice {
  accel: Accelerator;
  /** Why: shown to the user ("KVM did not answer within 3 s: using TCG"). */
  reason: string;
}

const MARKER = 'cairn-probe-ok';

/**
 * A 32-bit multiboot ELF that prints MARKER on the first serial port and exits QEMU through the
 * isa-debug-exit device. Booting it goes through the same option-ROM path as a direct kernel
 * boot, which is where a half-working KVM hangs (/dev/kvm present, guest never runs).
 */
export function probeKernel(): Buffer {
  const load = 0x100000;
  const code: number[] = [];
  // Multiboot header: magic, flags 0, checksum.
  const magic = 0x1badb002;
  const header = Buffer.alloc(12);
  header.writeUInt32LE(magic, 0);
  header.writeUInt32LE(0, 4);
  header.writeUInt32LE((0x100000000 - magic) >>> 0, 8);
  code.push(...header);
  const entryOffset = code.length;
  code.push(0x66, 0xba, 0xf8, 0x03); // mov dx, 0x3f8 (COM1)
  for (const ch of Buffer.from(`${MARKER}\n`)) code.push(0xb0, ch, 0xee); // mov al, ch; out dx, al
  code.push(0xb0, 0x00, 0xe6, 0xf4); // mov al, 0; out 0xf4, al (isa-debug-exit: QEMU exits with 1)
  code.push(0xf4, 0xeb, 0xfd); // hlt; jmp back to hlt
  const body = Buffer.from(code);

  const ehsize = 52;
  const phsize = 32;
  const offset = ehsize + phsize;
  const elf = Buffer.alloc(offset);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0); // ELF, 32-bit, little-endian, version 1
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(3, 18); // EM_386
  elf.writeUInt32LE(1, 20); // EV_CURRENT
  elf.writeUInt32LE(load + offset + entryOffset, 24); // entry
  elf.writeUInt32LE(ehsize, 28); // program headers follow the ELF header
  elf.writeUInt16LE(ehsize, 40);
  elf.writeUInt16LE(phsize, 42);
  elf.writeUInt16LE(1, 44); // one program header
  elf.writeUInt16LE(40, 46); // section header entry size (no sections)
  // PT_LOAD: the whole file at `load`, readable and executable.
  elf.writeUInt32LE(1, ehsize + 0);
  elf.writeUInt32LE(0, ehsize + 4);
  elf.writeUInt32LE(load, ehsize + 8);
  elf.writeUInt32LE(load, ehsize + 12);
  elf.writeUInt32LE(offset + body.length, ehsize + 16);
  elf.writeUInt32LE(offset + body.length, ehsize + 20);
  elf.writeUInt32LE(5, ehsize + 24);
  elf.writeUInt32LE(0x1000, ehsize + 28);
  return Buffer.concat([elf, body]);
}

/** Runs the probe kernel under one accelerator: milliseconds until QEMU exited with the marker, or null. */
export async function runProbe(accel: Accelerator, timeoutMs: number, qemu = 'qemu-system-x86_64'): Promise<number | null> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-probe-'));
  try {
    const kernel = join(dir, 'probe.elf');
    await writeFile(kernel, probeKernel());
    const start = performance.now();
    const r = await execa(
      qemu,
      ['-accel', accel, '-machine', 'pc', '-m', '32', '-nographic', '-nodefaults', '-serial', 'stdio', '-no-reboot', '-kernel', kernel, '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04'],
      { reject: false, timeout: timeoutMs, stdin: 'ignore', forceKillAfterDelay: 1000 },
    );
    return String(r.stdout).includes(MARKER) ? performance.now() - start : null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

let cached: Promise<AcceleratorChoice> | undefined;

/**
 * KVM when it really works, TCG otherwise. `/dev/kvm` can exist and still be unusable: on some
 * nested hosts every exit to QEMU takes ~0.1 s, so the probe (a few dozen port writes) takes 3 s
 * under KVM against 0.2 s under TCG, and a Linux boot seems to hang. So the same probe runs under
 * both, and KVM is used only when it is faster. `CAIRN_ACCEL=kvm|tcg` skips the probe. The answer
 * is kept for the process.
 */
export function chooseAccelerator(opts: { timeoutMs?: number } = {}): Promise<AcceleratorChoice> {
  const forced = process.env.CAIRN_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return Promise.resolve({ accel: forced, reason: `CAIRN_ACCEL=${forced}` });
  cached ??= (async (): Promise<AcceleratorChoice> => {
    if (!existsSync('/dev/kvm')) return { accel: 'tcg', reason: 'no /dev/kvm: using TCG (software emulation)' };
    const tcg = await runProbe('tcg', opts.timeoutMs ?? 10_000);
    // KVM gets as long as TCG took (plus QEMU's start-up slack); slower than that is no help.
    const budget = Math.max(1000, 2 * (tcg ?? 1000));
    const kvm = await runProbe('kvm', budget);
    if (kvm !== null && (tcg === null || kvm < tcg)) return { accel: 'kvm', reason: `KVM works (probe ${Math.round(kvm)} ms, TCG ${tcg === null ? 'failed' : `${Math.round(tcg)} ms`})` };
    const why = kvm === null ? `a guest did not finish under KVM within ${(budget / 1000).toFixed(1)} s` : `KVM is slower than TCG here (probe ${Math.round(kvm)} ms vs ${Math.round(tcg!)} ms)`;
    return { accel: 'tcg', reason: `/dev/kvm is present but ${why}: using TCG (software emulation)` };
  })();
  return cached;
}

/** QEMU's major version from `qemu-system-x86_64 --version` ("QEMU emulator version 7.2.22 (…)"), or undefined. */
export function qemuMajor(versionText: string): number | undefined {
  const m = /QEMU emulator version (\d+)\./.exec(versionText);
  return m ? Number(m[1]) : undefined;
}

/**
 * Why a guest with more than one CPU under TCG may crash with this QEMU, or undefined. QEMU before
 * 8 (Debian 12's 7.2) now and then runs one CPU on a stale translation of code the guest kernel
 * has just patched on another: an `int3` oops and a kernel panic, seen in about one boot in five
 * with two CPUs. One CPU, or a newer QEMU, does not.
 */
export function tcgSmpRisk(accel: Accelerator, cpus: number, versionText: string): string | undefined {
  const major = qemuMajor(versionText);
  if (accel !== 'tcg' || cpus <= 1 || major === undefined || major >= 8) return undefined;
  return (
    `QEMU ${major} emulates this machine's ${cpus} CPUs (TCG), which now and then ends in a kernel oops ` +
    "(an int3 where the guest kernel has just patched its code): use QEMU 8 or newer (scripts/setup installs 10 on Debian 12), " +
    'or one CPU (--cpus 1, virtualisation.cores = 1)'
  );
}

let versionText: Promise<string> | undefined;
/** The installed QEMU's `--version` text (asked once per process; "" when it cannot be run). */
export function qemuVersionText(qemu = 'qemu-system-x86_64'): Promise<string> {
  versionText ??= execa(qemu, ['--version'], { reject: false }).then((r) => (r.exitCode === 0 ? String(r.stdout) : ''));
  return versionText;
}
