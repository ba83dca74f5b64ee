/**
 * grub.cfg as cairn writes it: every word quoted for GRUB's shell-like syntax, so a label or a
 * kernel parameter cannot end its menu entry or run a command; entries newest first with the
 * current generation the default; GRUB's own parser (grub-script-check, when installed) accepts it.
 */
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { grubCfgText, grubConsoleText, grubEntryText, grubEntryWithConsole, grubEnvBlock, grubHeadText, grubQuote } from '../../src/build/grub.js';

const haveCheck = existsSync('/usr/bin/grub-script-check');
const check = (text: string) => execa('grub-script-check', [], { input: text, reject: false });

describe('grubQuote', () => {
  it("single-quotes a word, a single quote as '\\''", () => {
    expect(grubQuote('root=LABEL=root')).toBe("'root=LABEL=root'");
    expect(grubQuote("it's")).toBe("'it'\\''s'");
    expect(grubQuote('$(reboot);}')).toBe("'$(reboot);}'");
  });
  it('refuses control characters (a line break would end the command)', () => {
    expect(() => grubQuote('a\nreboot')).toThrow(/control character/);
  });
});

describe('grub.cfg', () => {
  const hostile = "x';reboot;echo '}";
  const entry = grubEntryText(`cairn 0.1 (web ${hostile})`, '/EFI/cairn/k.efi', '/EFI/cairn/i.efi', ['init=/cairn/store/abc/init', 'root=LABEL=root', `p=${hostile}`, 'foo="a b"']);

  it('quotes the label and each kernel parameter', () => {
    expect(entry).toContain(`menuentry 'cairn 0.1 (web x'\\'';reboot;echo '\\''}), generation @generation@' --id cairn-generation-@generation@ {\n`);
    expect(entry).toContain(`  linux '/EFI/cairn/k.efi' 'init=/cairn/store/abc/init' 'root=LABEL=root' 'p=x'\\'';reboot;echo '\\''}' 'foo="a b"'\n`);
  });

  it('lists generations newest first, the current one the default, then the extra entries', () => {
    const cfg = grubCfgText(grubHeadText(3), 2, [
      [1, entry],
      [3, entry],
      [2, entry],
    ], "menuentry 'Reboot' {\n  reboot\n}\n");
    expect(cfg).toContain('set default=cairn-generation-2\nset timeout=3\n');
    const ids = [...cfg.matchAll(/--id (\S+) \{/g)].map((m) => m[1]);
    expect(ids).toEqual(['cairn-generation-3', 'cairn-generation-2', 'cairn-generation-1']);
    expect(cfg).toContain("generation 3'");
    expect(cfg.trimEnd().endsWith("menuentry 'Reboot' {\n  reboot\n}")).toBe(true);
    expect(grubHeadText(null)).toContain('set timeout=-1\n');
  });

  it.skipIf(!haveCheck)("parses with GRUB's own parser, and the hostile words stay inside their entry", async () => {
    const cfg = grubCfgText(grubHeadText(5), 1, [[1, entry]], '');
    const r = await check(cfg);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    // Unquoted, the same words would end the entry early: GRUB's parser says so.
    const unquoted = `menuentry 'a' {\n  linux /k p=${hostile}\n}\n`;
    expect((await check(unquoted)).exitCode).not.toBe(0);
  });

  it("adds the image's serial console unless the linux line names it", () => {
    const withTty = grubEntryWithConsole(entry, 'console=ttyS0,115200');
    expect(withTty).toMatch(/^ {2}linux .* 'console=ttyS0,115200'$/m);
    expect(grubEntryWithConsole(withTty, 'console=ttyS0,9600')).toBe(withTty);
    expect(grubConsoleText('ttyS1,9600')).toBe('serial --unit=1 --speed=9600\nterminal_input serial console\nterminal_output serial console\n');
  });

  it('makes a 1024-byte GRUB environment block', () => {
    const env = grubEnvBlock({ next_entry: 'cairn-generation-2' });
    expect(env.length).toBe(1024);
    expect(env.startsWith('# GRUB Environment Block\nnext_entry=cairn-generation-2\n#')).toBe(true);
  });
});
