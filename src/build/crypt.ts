/**
 * SHA-512 crypt (`$6$`), the scheme of glibc's crypt(3) and /etc/shadow, written from its
 * specification (Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512"). Used to hash the
 * plain-text password options when a system is built, so that only a hash reaches the store.
 */
import { createHash } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const sha512 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `n` bytes of `block` repeated. */
const repeatTo = (block: Buffer, n: number): Buffer => {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += block.length) block.copy(out, i, 0, Math.min(block.length, n - i));
  return out;
};

/** The byte triples of the final digest, in the order the scheme encodes them. */
const ORDER: [number, number, number][] = Array.from({ length: 21 }, (_, i) => [i, (i + 21) % 63, (i + 42) % 63]).map(([a, b, c], i) =>
  i % 3 === 0 ? [a!, b!, c!] : i % 3 === 1 ? [b!, c!, a!] : [c!, a!, b!],
);

export function sha512Crypt(password: string, salt: string, rounds = 5000): string {
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new Error('sha512Crypt: the salt must be 1 to 16 characters of [./0-9A-Za-z]');
  const pw = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt, 'ascii');
  const b = sha512(pw, s, pw);
  const a = createHash('sha512').update(pw).update(s);
  a.update(repeatTo(b, pw.length));
  for (let i = pw.length; i > 0; i >>= 1) a.update(i & 1 ? b : pw);
  let c = a.digest();
  const p = repeatTo(sha512(...Array<Buffer>(pw.length).fill(pw)), pw.length);
  const sBytes = repeatTo(sha512(...Array<Buffer>(16 + c[0]!).fill(s)), s.length);
  for (let r = 0; r < rounds; r++) {
    const h = createHash('sha512');
    h.update(r & 1 ? p : c);
    if (r % 3) h.update(sBytes);
    if (r % 7) h.update(p);
    h.update(r & 1 ? c : p);
    c = h.digest();
  }
  let out = '';
  const enc = (w: number, n: number) => {
    for (let i = 0; i < n; i++, w >>= 6) out += ITOA64[w & 0x3f];
  };
  for (const [x, y, z] of ORDER) enc((c[x]! << 16) | (c[y]! << 8) | c[z]!, 4);
  enc(c[63]!, 2);
  return `$6$${rounds === 5000 ? '' : `rounds=${rounds}$`}${salt}$${out}`;
}

/** A salt for `password` of account `name`: derived from both, so that the same configuration builds the same system. */
export function derivedSalt(name: string, password: string): string {
  const d = createHash('sha256').update(`cairn-password\0${name}\0${password}`).digest();
  return Array.from(d.subarray(0, 16), (x) => ITOA64[x & 0x3f]).join('');
}
