/**
 * GRUB's menu for BIOS machines: `grub/grub.cfg` on the FAT boot partition (the one systemd-boot's
 * entries are on, mounted at `boot.loader.efi.efiSysMountPoint`), kernels and initrds shared with
 * systemd-boot under `EFI/cairn/`. Each toplevel carries its pieces, so that an image build (Node)
 * and a switch on the machine (`bin/install-bootloader`, shell) put the same file together:
 *
 *   boot/grub-head.cfg   settings (timeout, the default entry `@default@`, the one-shot entry)
 *   boot/grub-entry.cfg  the generation's menu entry, `@generation@` standing for its number
 *   boot/grub-extra.cfg  `boot.loader.grub.extraEntries`, as written
 *
 * grub.cfg = head (of the current generation), entries newest first, extra entries.
 */
import { CairnError } from '../errors.js';

/** Id of a generation's menu entry: what `default` and `next_entry` name. */
export function grubEntryId(gen: number | string): string {
  return `cairn-generation-${gen}`;
}

/**
 * One word for GRUB's shell-like script: single-quoted (nothing is special inside), a single quote
 * as `'\''`. Control characters are refused: a line break would end the command.
 */
export function grubQuote(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(text)) throw new CairnError(`${JSON.stringify(text)} cannot be written into grub.cfg: it holds a control character`);
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The settings at the top of grub.cfg. `@default@` is the current generation's entry id. */
export function grubHeadText(timeout: number | null): string {
  return [
    '# Written by cairn (install-bootloader); rewritten at every switch.',
    // A serial console the image set up for this machine (install-bootloader leaves it alone).
    'if [ -f "${prefix}/cairn-console.cfg" ]; then source "${prefix}/cairn-console.cfg"; fi',
    'set default=@default@',
    `set timeout=${timeout === null ? -1 : timeout}`,
    // One boot of another generation (`install-bootloader --once N`), then back to the default.
    'if [ -s "${prefix}/grubenv" ]; then',
    '  load_env --file "${prefix}/grubenv" next_entry',
    '  if [ -n "${next_entry}" ]; then',
    '    set default="${next_entry}"',
    '    set next_entry=',
    '    save_env --file "${prefix}/grubenv" next_entry',
    '  fi',
    'fi',
    '',
  ].join('\n');
}

/**
 * A generation's menu entry: `@generation@` for its number. Every word of the kernel command line
 * is quoted on its own, so a parameter or a label cannot end the entry or run a command.
 */
export function grubEntryText(label: string, kernel: string, initrd: string, cmdline: string[]): string {
  return [
    `menuentry ${grubQuote(`${label}, generation @generation@`)} --id ${grubEntryId('@generation@')} {`,
    `  linux ${grubQuote(kernel)} ${cmdline.map(grubQuote).join(' ')}`,
    `  initrd ${grubQuote(initrd)}`,
    '}',
    '',
  ].join('\n');
}

/**
 * Adds the image's serial console (`console=ttyS0,115200`) to an entry's `linux` line unless the
 * line names that console already: the rule install-bootloader applies to the entries it writes.
 */
export function grubEntryWithConsole(entry: string, extra: string | undefined): string {
  if (!extra) return entry;
  const tty = extra.split(',')[0]!;
  return entry.replace(/^(\s*linux .*)$/m, (line) => (line.includes(` '${tty}'`) || line.includes(` '${tty},`) ? line : `${line} ${grubQuote(extra)}`));
}

/** `grub/cairn-console.cfg` for a serial console such as `ttyS0,115200`: GRUB's menu shows there too. */
export function grubConsoleText(serialConsole: string): string {
  const m = /^(?:console=)?ttyS(\d+)(?:,(\d+))?/.exec(serialConsole);
  if (!m) return '';
  return [`serial --unit=${m[1]} --speed=${m[2] ?? '115200'}`, 'terminal_input serial console', 'terminal_output serial console', ''].join('\n');
}

/** An empty GRUB environment block: 1024 bytes, which GRUB's save_env rewrites in place. */
export function grubEnvBlock(vars: Record<string, string> = {}): string {
  const body = `# GRUB Environment Block\n${Object.entries(vars)
    .map(([k, v]) => `${k}=${v}\n`)
    .join('')}`;
  if (body.length > 1024) throw new CairnError('the GRUB environment block is larger than 1024 bytes');
  return body + '#'.repeat(1024 - body.length);
}

/** grub.cfg of the current generation's head, the entries (`[number, text]`, any order) and extra entries. */
export function grubCfgText(head: string, defaultGen: number, entries: [number, string][], extra: string): string {
  const sorted = [...entries].sort((a, b) => b[0] - a[0]);
  return [head.replaceAll('@default@', grubEntryId(defaultGen)), ...sorted.map(([n, t]) => t.replaceAll('@generation@', String(n))), extra].join('\n');
}
