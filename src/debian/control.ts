/**
 * deb822 control data (Packages indices, Release files, .sources files, DEBIAN/control) and the
 * relationship fields of Debian packages (Depends, Provides, Conflicts, …).
 */
import { CairnError } from '../errors.js';
import type { VersionOp } from './version.js';

/** One deb822 paragraph. Keys keep the spelling of the file; use {@link field} for a case-insensitive read. */
export type Paragraph = Record<string, string>;

/**
 * Parses deb822 text into paragraphs. Continuation lines keep their text without the leading
 * space (a lone `.` stands for an empty line, as in Description and inline keys). Lines starting
 * with `#` are comments (allowed in .sources files, absent from archive indices).
 */
export function parseDeb822(text: string, source = 'control data'): Paragraph[] {
  const paragraphs: Paragraph[] = [];
  let current: Paragraph | undefined;
  let lastKey: string | undefined;
  let lineNo = 0;
  let pos = 0;
  const len = text.length;
  while (pos <= len) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    let line = text.slice(pos, end);
    pos = end + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const first = line.charCodeAt(0);
    if (line.length === 0 || (first !== 32 && first !== 9 && line.trim() === '')) {
      if (current) paragraphs.push(current);
      current = undefined;
      lastKey = undefined;
      if (end === len) break;
      continue;
    }
    if (first === 35 /* # */) continue;
    if (first === 32 || first === 9) {
      if (!current || lastKey === undefined) throw new CairnError(`${source}:${lineNo}: continuation line outside a field`);
      if (line.trim() === '') {
        // A whitespace-only line ends the paragraph in deb822.
        paragraphs.push(current);
        current = undefined;
        lastKey = undefined;
        continue;
      }
      const body = line.slice(1);
      current[lastKey] += '\n' + (body.trim() === '.' ? '' : body);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new CairnError(`${source}:${lineNo}: expected "Field: value", got ${JSON.stringify(line.slice(0, 80))}`);
    const key = line.slice(0, colon);
    current ??= {};
    current[key] = line.slice(colon + 1).trim();
    lastKey = key;
  }
  if (current) paragraphs.push(current);
  return paragraphs;
}

/** Reads a field case-insensitively (deb822 field names are case-insensitive). */
export function field(p: Paragraph, name: string): string | undefined {
  if (name in p) return p[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(p)) if (k.toLowerCase() === lower) return p[k];
  return undefined;
}

/** One alternative of a dependency: `name[:arch] [(op version)]`. */
export interface Relation {
  name: string;
  /** Architecture qualifier after `:` (`any`, `native` or an architecture name). */
  archQualifier?: string;
  op?: VersionOp;
  version?: string;
  /** `[arch …]` restriction list (source-package style; rare in binary indices). */
  archList?: string[];
}

/** A dependency field: an AND of OR-groups (`a | b, c`). */
export type RelationGroup = Relation[];

const relationRe = /^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?\s*(?:\[([^\]]*)\])?\s*(?:<[^>]*>\s*)*$/i;

/** Parses one alternative, e.g. `libc6 (>= 2.34)` or `python3:any`. */
export function parseRelation(text: string): Relation {
  const m = relationRe.exec(text.trim());
  if (!m) throw new CairnError(`cannot parse dependency ${JSON.stringify(text.trim())}`);
  const rel: Relation = { name: m[1]!.toLowerCase() };
  if (m[2]) rel.archQualifier = m[2].toLowerCase();
  if (m[3]) {
    // `<` and `>` are obsolete spellings of `<=` and `>=`.
    rel.op = (m[3] === '<' ? '<=' : m[3] === '>' ? '>=' : m[3]) as VersionOp;
    rel.version = m[4]!;
  }
  if (m[5]) rel.archList = m[5].trim().split(/\s+/);
  return rel;
}

/** Parses a Depends-style field into AND-of-OR groups; an absent or empty field gives []. */
export function parseRelations(text: string | undefined): RelationGroup[] {
  if (!text) return [];
  const groups: RelationGroup[] = [];
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    groups.push(part.split('|').map(parseRelation));
  }
  return groups;
}

/** Formats a relation back into Debian syntax, for error messages. */
export function formatRelation(r: Relation): string {
  return `${r.name}${r.archQualifier ? `:${r.archQualifier}` : ''}${r.op ? ` (${r.op} ${r.version})` : ''}`;
}

/** Formats an OR-group back into Debian syntax. */
export function formatGroup(g: RelationGroup): string {
  return g.map(formatRelation).join(' | ');
}
