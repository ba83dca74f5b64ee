import { formatLocation, type SourceLocation } from './location.js';
import { Package } from './package.js';
import { Option } from './options.js';
import { isProperty, Thunk } from './properties.js';
import { isRef } from './refs.js';

/** An option path as users write it: `users.users.alice.uid`, quoting names that need it. */
export function showOption(loc: readonly string[]): string {
  let out = '';
  for (let i = 0; i < loc.length; i++) out += i === 0 ? showPart(loc[i]!) : `.${showPart(loc[i]!)}`;
  return out;
}

/** Names shown, by name: every submodule value shows its path, and paths share their names. */
const shownParts = new Map<string, string>();

function showPart(part: string): string {
  let shown = shownParts.get(part);
  if (shown === undefined) {
    shown = /^[A-Za-z_][A-Za-z0-9_'-]*$/.test(part) || /^<.*>$/.test(part) || /^\[.*\]$/.test(part) ? part : JSON.stringify(part);
    if (shownParts.size < 65536) shownParts.set(part, shown);
  }
  return shown;
}

/** A definition value shown in a message: compact JSON-like text, cut when long. */
export function showValue(v: unknown, max = 200): string {
  let text: string;
  try {
    text = render(v, 0);
  } catch {
    text = '<unprintable>';
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function render(v: unknown, depth: number): string {
  if (v instanceof Thunk) return '<lazy>';
  if (isRef(v)) return '<config reference>';
  if (isProperty(v)) return `<${v.constructor.name.toLowerCase()}>`;
  if (v instanceof Package) return `package ${v.name}`;
  // An option declaration where a value was expected: its internals would only confuse.
  if (v instanceof Option) return '<option declaration (mkOption)>';
  if (v === undefined) return 'undefined';
  if (typeof v === 'function') return '<function>';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v !== 'object' || v === null) return String(v);
  if (depth > 3) return Array.isArray(v) ? '[…]' : '{…}';
  if (Array.isArray(v)) return `[${v.map((x) => render(x, depth + 1)).join(', ')}]`;
  const entries = Object.keys(v).map((k) => {
    const d = Object.getOwnPropertyDescriptor(v, k)!;
    return `${/^[A-Za-z_][\w-]*$/.test(k) ? k : JSON.stringify(k)}: ${d.get ? '<lazy>' : render(d.value, depth + 1)}`;
  });
  return `{ ${entries.join(', ')} }`;
}

export interface ShownDefinition {
  loc: SourceLocation;
  value: unknown;
}

/** The "- In `file:line:col': value" lines of NixOS's messages. */
export function showDefs(defs: readonly ShownDefinition[], withValues = true): string {
  return defs.map((d) => `\n- In \`${formatLocation(d.loc)}'${withValues ? `: ${showValue(d.value)}` : ''}`).join('');
}

export const PRIORITY_HINT =
  'Use `!mkForce value` or `!mkDefault value` (YAML), or `lib.mkForce(value)` / `lib.mkDefault(value)` (TypeScript), to change the priority on any of these definitions.';

/** Edit distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate, if it is close enough to be what was meant. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  return nearest(word, candidates, 1)[0];
}

/** Up to `n` candidates close enough to be what was meant, nearest first (then by name, as NixOS sorts them). */
export function nearest(word: string, candidates: Iterable<string>, n: number): string[] {
  const limit = Math.max(2, Math.floor(word.length / 3));
  return [...candidates]
    .map((c) => ({ c, d: editDistance(word.toLowerCase(), c.toLowerCase()) }))
    // A name cut short (`ena` for `enable`) is close too.
    .filter((x) => x.d <= limit || (word.length >= 3 && x.c.toLowerCase().startsWith(word.toLowerCase())))
    .sort((x, y) => x.d - y.d || (x.c < y.c ? -1 : x.c > y.c ? 1 : 0))
    .slice(0, n)
    .map((x) => x.c);
}

/** NixOS's "Did you mean `a'?" / "Did you mean `a', `b' or `c'?". */
export function didYouMean(names: string[]): string {
  if (names.length === 0) return '';
  const q = names.map((x) => `\`${x}'`);
  return `Did you mean ${q.length === 1 ? q[0] : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`}?`;
}

/** The name Nix's builtins.typeOf gives a value, for messages in NixOS's words. */
export function nixTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'function') return 'lambda';
  if (typeof v === 'object') return 'set';
  return typeof v;
}
