import { createHash } from 'node:crypto';

/** Nix's base32 alphabet: digits and lowercase letters without e, o, u, t (avoids accidental words). */
export const BASE32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

/** Length of the hash part of a store path: 160 bits in base32. */
export const HASH_PART_LENGTH = 32;

/**
 * Encodes bytes the way Nix prints hashes: the last 5-bit group first, so a hash reads
 * the same as in Nix for the same bytes.
 */
export function toNixBase32(bytes: Uint8Array): string {
  const len = Math.ceil((bytes.length * 8) / 5);
  let out = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const lo = bytes[i]! >> j;
    const hi = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    out += BASE32_ALPHABET[(lo | hi) & 0x1f];
  }
  return out;
}

/** The 32-character hash part for a description: sha256, truncated to 160 bits. */
export function hashPart(description: string): string {
  const digest = createHash('sha256').update(description).digest();
  return toNixBase32(digest.subarray(0, 20));
}

/** A lookup table: is this byte one of the base32 characters? (Used by the reference scanner.) */
export const IS_BASE32: Uint8Array = (() => {
  const table = new Uint8Array(256);
  for (const c of BASE32_ALPHABET) table[c.charCodeAt(0)] = 1;
  return table;
})();
