/**
 * What a generation brings for its boot entry, as files of its toplevel, so that an image build
 * (Node) and a switch on the machine (`bin/install-bootloader`, shell, no Node) write the same
 * EFI system partition:
 *
 *   boot/entry.conf        the entry, `@generation@` standing for the generation's number
 *   boot/efi/<name>.efi    → the kernel and the initrd, under the names they get in EFI/cairn/
 *   boot/loader.conf       the menu settings (timeout, editor), without a default
 *   boot/systemd-boot.efi  → the loader, copied to EFI/BOOT/BOOTX64.EFI
 *   boot/grub-*.cfg        GRUB's pieces of grub.cfg, when `boot.loader.grub.enable` (src/build/grub.ts)
 *   bin/install-bootloader writes all of that for the generations of the system profile
 *
 * Kernel and initrd names carry their store path's hash: content-addressed, so generations that
 * share a kernel share one file on the ESP.
 */
import { hashOf } from '../store/index.js';
import { scriptText } from './activate.js';
import { grubEntryText, grubHeadText } from './grub.js';
import type { TreeEntry } from './tree.js';
import type { LoaderSettings } from '../toplevel/index.js';

export type { LoaderSettings };

/** Entry file name of a generation without a boot counter (counted ones add `+N` before `.conf`). */
export function entryName(gen: number): string {
  return `cairn-generation-${gen}.conf`;
}

/** The kernel command line of a generation: its init, its root, its own parameters. */
export function kernelCommandLine(init: string, rootDevice: string, params: string[]): string {
  return [`init=${init}`, `root=${rootDevice}`, ...params].join(' ');
}

/**
 * Adds a console parameter (an image format's serial console) unless the command line already
 * names that console device: the same rule as `bin/install-bootloader`'s extra options.
 */
export function withConsole(cmdline: string, console: string | undefined): string {
  if (!console) return cmdline;
  const tty = `console=${console.split(',')[0]}`;
  return cmdline.split(' ').some((p) => p === tty || p.startsWith(`${tty},`)) ? cmdline : `${cmdline} ${console.startsWith('console=') ? console : `console=${console}`}`;
}

/** `loader/loader.conf`: menu timeout, editor (off unless asked), and a default entry only when given. */
export function loaderConfText(settings: Pick<LoaderSettings, 'timeout' | 'editor'>, defaultEntry?: string): string {
  const timeout = settings.timeout === null ? 'menu-force' : String(settings.timeout);
  return [...(defaultEntry ? [`default ${defaultEntry}`] : []), `timeout ${timeout}`, `editor ${settings.editor ? 'yes' : 'no'}`, 'console-mode keep', ''].join('\n');
}

export interface GenerationBoot {
  label: string;
  kernel: { image: string; version: string };
  initrd: string;
  rootDevice: string;
  kernelParams: string[];
  /** The sw path whose bash and coreutils run install-bootloader. */
  sw: string;
  bash: string;
  loader: LoaderSettings;
  /** `boot.loader.grub.extraEntries`. */
  grubExtraEntries?: string;
}

/** The toplevel entries described in the file comment (and, with GRUB, in src/build/grub.ts). */
export function loaderFiles(b: GenerationBoot): Record<string, TreeEntry> {
  const kernelName = `${hashOf(b.kernel.image)}-vmlinuz-${b.kernel.version}.efi`;
  const initrdName = `${hashOf(b.initrd)}-initrd-${b.kernel.version}.efi`;
  const cmdline = kernelCommandLine('@out@/init', b.rootDevice, b.kernelParams);
  const sdboot = b.loader.efi !== null;
  const script = scriptText('install-bootloader.sh')
    .replace(/@bash@/g, b.bash)
    .replace(/@sw@/g, b.sw)
    .replace(/@esp@/g, b.loader.esp ?? '')
    .replace(/@tries@/g, String(b.loader.tries))
    .replace(/@limit@/g, String(b.loader.configurationLimit ?? 0))
    .replace(/@sdboot@/g, sdboot ? '1' : '0')
    .replace(/@grub@/g, b.loader.grub ? '1' : '0');
  const files: Record<string, TreeEntry> = {
    [`boot/efi/${kernelName}`]: { link: b.kernel.image },
    [`boot/efi/${initrdName}`]: { link: b.initrd },
    'bin/install-bootloader': { text: script, executable: true },
  };
  if (b.loader.efi !== null) {
    const entry = [
      `title ${b.label}`,
      'version Generation @generation@',
      'sort-key cairn',
      `linux /EFI/cairn/${kernelName}`,
      `initrd /EFI/cairn/${initrdName}`,
      `options ${cmdline}`,
      '',
    ].join('\n');
    files['boot/entry.conf'] = { text: entry };
    files['boot/loader.conf'] = { text: loaderConfText(b.loader) };
    files['boot/systemd-boot.efi'] = { link: b.loader.efi };
  }
  if (b.loader.grub) {
    files['boot/grub-head.cfg'] = { text: grubHeadText(b.loader.grub.timeout) };
    files['boot/grub-entry.cfg'] = { text: grubEntryText(b.label, `/EFI/cairn/${kernelName}`, `/EFI/cairn/${initrdName}`, cmdline.split(' ')) };
    files['boot/grub-extra.cfg'] = { text: b.grubExtraEntries ?? '' };
  }
  return files;
}
