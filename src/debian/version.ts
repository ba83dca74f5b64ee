/**
 * Debian version comparison, exactly as dpkg does it (deb-version(7)):
 * `[epoch:]upstream[-revision]`, compared field by field; within a field, runs of non-digits
 * compare character by character (letters before other characters, `~` before everything, even
 * the end of the string), and runs of digits compare numerically.
 */

/** The three parts of a Debian version. */
export interface ParsedVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/** Splits a version into epoch, upstream version and revision as dpkg does. */
export function parseVersion(version: string): ParsedVersion {
  const v = version.trim();
  const colon = v.indexOf(':');
  let epoch = 0;
  let rest = v;
  if (colon >= 0) {
    epoch = Number.parseInt(v.slice(0, colon), 10) || 0;
    rest = v.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash >= 0) return { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
  return { epoch, upstream: rest, revision: '' };
}

/** dpkg's weight of a character in the non-digit part: `~` lowest, then end/digit, letters, others. */
function order(code: number): number {
  if (code >= 48 && code <= 57) return 0; // digit (ends the non-digit run)
  if ((code >= 65 && code <= 90) || (code >= 97 && code <= 122)) return code;
  if (code === 126) return -1; // '~'
  if (Number.isNaN(code)) return 0; // end of string
  return code + 256;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** Compares one version field (upstream or revision) the way dpkg's verrevcmp does. */
function compareField(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(i < a.length ? a.charCodeAt(i) : Number.NaN);
      const bc = order(j < b.length ? b.charCodeAt(j) : Number.NaN);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a.charCodeAt(i) === 48) i++;
    while (b.charCodeAt(j) === 48) j++;
    while (i < a.length && isDigit(a.charCodeAt(i)) && j < b.length && isDigit(b.charCodeAt(j))) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < a.length && isDigit(a.charCodeAt(i))) return 1;
    if (j < b.length && isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/** Negative if a < b, 0 if equal, positive if a > b (as `dpkg --compare-versions`). */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  const u = compareField(pa.upstream, pb.upstream);
  if (u !== 0) return u;
  return compareField(pa.revision, pb.revision);
}

/** A relation operator of a dependency field. */
export type VersionOp = '<<' | '<=' | '=' | '>=' | '>>';

/** Whether `version` satisfies `op ref` (e.g. `>= 1.2`). Accepts the obsolete `<` and `>` as `<=`, `>=`. */
export function satisfiesVersion(version: string, op: VersionOp | '<' | '>', ref: string): boolean {
  const c = compareVersions(version, ref);
  switch (op) {
    case '<<': return c < 0;
    case '<=': case '<': return c <= 0;
    case '=': return c === 0;
    case '>=': case '>': return c >= 0;
    case '>>': return c > 0;
  }
}
