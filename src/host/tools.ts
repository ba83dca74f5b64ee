import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A host program or file cairn relies on, and the Debian package that provides it. */
export interface HostTool {
  /** A program on PATH, or an absolute file. */
  name: string;
  package: string;
  /** What cairn uses it for. */
  purpose: string;
  /** Needed to build a system (cairn build, cairn switch), not only images and VMs: a system that runs cairn has it. */
  build?: true;
}

/** Everything cairn drives on the building machine (the engine's own dependencies come from npm). */
export const HOST_TOOLS: readonly HostTool[] = [
  { name: 'gpgv', package: 'gpgv', purpose: 'verifies the archive signature (InRelease)', build: true },
  { name: '/usr/share/keyrings/debian-archive-keyring.gpg', package: 'debian-archive-keyring', purpose: "Debian's archive keys", build: true },
  { name: 'dpkg-deb', package: 'dpkg', purpose: 'unpacks .deb files', build: true },
  { name: 'xz', package: 'xz-utils', purpose: 'decompresses package indices', build: true },
  { name: 'tar', package: 'tar', purpose: 'unpacks package data', build: true },
  { name: 'depmod', package: 'kmod', purpose: 'kernel module dependencies for the initrd', build: true },
  { name: 'mkfs.ext4', package: 'e2fsprogs', purpose: 'root file systems without mounting' },
  { name: 'e2fsck', package: 'e2fsprogs', purpose: 'checks built file systems' },
  { name: 'debugfs', package: 'e2fsprogs', purpose: 'sets owners, times and setuid modes in built file systems' },
  { name: 'dumpe2fs', package: 'e2fsprogs', purpose: 'lists the inodes of built file systems' },
  { name: 'mkfs.vfat', package: 'dosfstools', purpose: 'EFI system partitions' },
  { name: 'fsck.vfat', package: 'dosfstools', purpose: 'checks EFI system partitions' },
  { name: 'mcopy', package: 'mtools', purpose: 'fills EFI system partitions without mounting' },
  { name: 'sfdisk', package: 'fdisk', purpose: 'GPT partition tables in image files' },
  { name: 'fakeroot', package: 'fakeroot', purpose: 'root-owned files in images built as a normal user' },
  { name: 'qemu-system-x86_64', package: 'qemu-system-x86', purpose: 'runs systems (cairn vm, cairn test)' },
  { name: 'qemu-img', package: 'qemu-utils', purpose: 'qcow2 images' },
  { name: '/usr/share/OVMF/OVMF_CODE_4M.fd', package: 'ovmf', purpose: 'UEFI firmware for VMs' },
  { name: '/usr/share/OVMF/OVMF_VARS_4M.fd', package: 'ovmf', purpose: 'UEFI variable store template' },
  { name: 'grub-mkimage', package: 'grub-pc-bin', purpose: "GRUB's core image for BIOS disk images (raw-bios, raw-hybrid)" },
  { name: '/usr/lib/grub/i386-pc/boot.img', package: 'grub-pc-bin', purpose: "GRUB's boot sector and i386-pc modules" },
  { name: 'ssh', package: 'openssh-client', purpose: 'remote deploys and VM tests' },
  { name: 'age', package: 'age', purpose: 'encrypts and decrypts secrets (cairn secrets edit, rekey)' },
];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether a tool is present: an absolute file exists, or a program is found on PATH. */
export function hasTool(name: string, path = process.env.PATH ?? ''): boolean {
  if (name.startsWith('/')) return existsSync(name);
  // Tools in sbin are found even when a normal user's PATH lacks those folders.
  const dirs = [...path.split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.some((d) => d && isExecutable(join(d, name)));
}

export interface ToolReport {
  tool: HostTool;
  present: boolean;
}

export function checkHostTools(tools: readonly HostTool[] = HOST_TOOLS): ToolReport[] {
  return tools.map((tool) => ({ tool, present: hasTool(tool.name) }));
}

/** The one command that installs every missing tool, or undefined when nothing is missing. */
export function installCommand(reports: readonly ToolReport[]): string | undefined {
  const pkgs = [...new Set(reports.filter((r) => !r.present).map((r) => r.tool.package))].sort();
  if (pkgs.length === 0) return undefined;
  return `${process.getuid?.() === 0 ? '' : 'sudo '}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}
