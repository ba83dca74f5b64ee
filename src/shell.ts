/** Quoting for POSIX shells (generated scripts, commands run over SSH or a VM's console). */

/** `s` as one single-quoted shell word. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `s` as the text of a one-line shell comment: control characters (a newline would end the comment) shown escaped. */
export function shellComment(s: string): string {
  return `# ${s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`;
}

/** `s` as a shell word, quoted only where it needs to be (for command lines shown to people). */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : shellQuote(s);
}
