/** Quoting for POSIX shells (generated scripts, commands run over SSH or a VM's console). */

/** `s` as one single-quoted shell word. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `s` as a shell word, quoted only where it needs to be (for command lines shown to people). */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : shellQuote(s);
}
