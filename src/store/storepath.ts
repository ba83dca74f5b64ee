import { CairnError } from '../errors.js';
import { LOGICAL_STORE } from '../paths.js';
import { BASE32_ALPHABET, HASH_PART_LENGTH } from './hash.js';

/** Longest allowed name: Nix's limit, which keeps `<hash>-<name>` within common filename limits. */
export const MAX_NAME_LENGTH = 211;

/**
 * Nix's name characters plus `~`, which Debian versions use (`3.0.11-1~deb12u2`) and which is
 * harmless in file names and shells' word splitting. `:` (Debian epochs) stays out: it separates
 * entries of PATH-like variables.
 */
const NAME_RE = /^[A-Za-z0-9+._?=~-]+$/;
const HASH_RE = new RegExp(`^[${BASE32_ALPHABET}]{${HASH_PART_LENGTH}}$`);

/** Throws a CairnError unless `name` may be the name part of a store path. */
export function validateName(name: string): void {
  if (name.length === 0) throw new CairnError('invalid store path name: it is empty');
  if (name.length > MAX_NAME_LENGTH) {
    throw new CairnError(`invalid store path name '${name.slice(0, 40)}…': longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (name.startsWith('.')) throw new CairnError(`invalid store path name '${name}': it must not start with '.'`);
  if (!NAME_RE.test(name)) {
    throw new CairnError(`invalid store path name '${name}': only letters, digits and + . _ ? = ~ - are allowed`);
  }
}

/** Is `base` (one directory entry of the store) shaped like `<hash>-<name>`? */
export function isStoreBaseName(base: string): boolean {
  if (base.length < HASH_PART_LENGTH + 2 || base[HASH_PART_LENGTH] !== '-') return false;
  if (!HASH_RE.test(base.slice(0, HASH_PART_LENGTH))) return false;
  const name = base.slice(HASH_PART_LENGTH + 1);
  return name.length <= MAX_NAME_LENGTH && !name.startsWith('.') && NAME_RE.test(name);
}

/** The hash part of a store base name or logical path. */
export function hashOf(pathOrBase: string): string {
  const base = pathOrBase.startsWith(LOGICAL_STORE + '/') ? pathOrBase.slice(LOGICAL_STORE.length + 1) : pathOrBase;
  return base.slice(0, HASH_PART_LENGTH);
}

/** The name part (`<hash>-` removed) of a store base name or path. */
export function nameOf(pathOrBase: string): string {
  const base = pathOrBase.slice(pathOrBase.lastIndexOf('/') + 1);
  return base.slice(HASH_PART_LENGTH + 1);
}

/**
 * Splits a store name into package name and version the way diff-closures groups paths:
 * the version starts at the first `-` followed by a digit (`openssl-3.0.11-1` → openssl, 3.0.11-1).
 */
export function splitName(name: string): { pname: string; version: string } {
  const m = /-(?=[0-9])/.exec(name);
  if (!m) return { pname: name, version: '' };
  return { pname: name.slice(0, m.index), version: name.slice(m.index + 1) };
}
