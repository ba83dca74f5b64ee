/**
 * Walking a store object: canonicalising it, hashing a canonical serialisation of it (like a NAR)
 * and scanning it for references to other store paths.
 */
import { createHash, type Hash } from 'node:crypto';
import { chmodSync, closeSync, lstatSync, lutimesSync, openSync, readdirSync, readlinkSync, readSync, utimesSync, type Stats } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { CairnError } from '../errors.js';
import { HASH_PART_LENGTH, IS_BASE32, toNixBase32 } from './hash.js';
import type { SetuidEntry } from './builders.js';

/** Every entry's mtime in the store: 1 s after the epoch, as in Nix (0 means "unknown" to some tools). */
export const CANONICAL_MTIME = 1;

/**
 * Finds the hash parts of candidate store paths in byte streams. Matches may straddle chunk
 * boundaries, so the last 31 bytes of each chunk are kept and scanned together with the next one.
 */
export class ReferenceScanner {
  readonly found = new Set<string>();
  private tail: Buffer = Buffer.alloc(0);

  constructor(private readonly candidates: ReadonlySet<string>) {}

  /** Starts a new, independent stream (a new file, name or symlink target). */
  reset(): void {
    this.tail = Buffer.alloc(0);
  }

  feed(chunk: Buffer): void {
    if (this.candidates.size === 0 || chunk.length === 0) return;
    if (this.tail.length > 0) {
      this.scan(Buffer.concat([this.tail, chunk.subarray(0, HASH_PART_LENGTH - 1)]));
    }
    this.scan(chunk);
    const keep = Math.min(chunk.length, HASH_PART_LENGTH - 1);
    this.tail = Buffer.from(chunk.subarray(chunk.length - keep));
  }

  /** One buffer: skips ahead past any non-base32 byte, as a hash part is 32 base32 bytes in a row. */
  private scan(buf: Buffer): void {
    const len = buf.length;
    let i = 0;
    while (i + HASH_PART_LENGTH <= len) {
      let j = HASH_PART_LENGTH - 1;
      while (j >= 0 && IS_BASE32[buf[i + j]!] === 1) j--;
      if (j >= 0) {
        i += j + 1;
        continue;
      }
      const h = buf.toString('latin1', i, i + HASH_PART_LENGTH);
      if (this.candidates.has(h)) this.found.add(h);
      i++;
    }
  }
}

export interface DumpOptions {
  /** Make the tree canonical on the way (mtimes, modes); only for trees this process is building. */
  canonicalise?: boolean;
  /** Hash parts to look for. */
  candidates?: ReadonlySet<string>;
}

export interface DumpResult {
  /** `sha256:` + Nix base32 of the serialisation's digest. */
  narHash: string;
  /** Bytes in the serialisation. */
  narSize: number;
  /** Hash parts of candidates that occur in the contents, names or symlink targets. */
  references: Set<string>;
  /** Files that carried setuid/setgid bits before canonicalisation (relative paths, original modes). */
  setuid: SetuidEntry[];
}

/**
 * Serialises a tree into a hash: every string and blob is length-prefixed, directory entries are
 * sorted bytewise, and of a file's mode only the executable bit counts (the rest is canonical anyway).
 */
class Serialiser {
  readonly hash: Hash = createHash('sha256');
  size = 0;
  private readonly num = Buffer.alloc(8);

  u64(n: number): void {
    this.num.writeBigUInt64LE(BigInt(n));
    this.hash.update(this.num);
    this.size += 8;
  }
  str(s: string | Buffer): void {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    this.u64(b.length);
    this.hash.update(b);
    this.size += b.length;
  }
  raw(b: Buffer): void {
    this.hash.update(b);
    this.size += b.length;
  }
}

const CHUNK = 1 << 20;

/**
 * Walks a store object (a directory, file or symlink), optionally canonicalising it, and returns its
 * content hash, size, the references found and the setuid files seen. Synchronous I/O is used for
 * speed on trees of many small files; the loop yields every few hundred entries so progress output
 * and other builds in this process keep moving.
 */
export async function dumpTree(root: string, opts: DumpOptions = {}): Promise<DumpResult> {
  const ser = new Serialiser();
  const scanner = new ReferenceScanner(opts.candidates ?? new Set());
  const setuid: SetuidEntry[] = [];
  const buf = Buffer.allocUnsafe(CHUNK);
  let entries = 0;

  const visit = async (path: string, rel: string): Promise<void> => {
    if (++entries % 256 === 0) await yieldToLoop();
    let st = lstatSync(path);
    if (st.isSymbolicLink()) {
      const target = readlinkSync(path, { encoding: 'buffer' });
      ser.str('link');
      ser.str(target);
      scanner.reset();
      scanner.feed(target);
      if (opts.canonicalise && st.mtimeMs !== CANONICAL_MTIME * 1000) lutimesSync(path, CANONICAL_MTIME, CANONICAL_MTIME);
    } else if (st.isFile()) {
      if (opts.canonicalise) st = canonicaliseFile(path, rel, st, setuid);
      ser.str('file');
      ser.str(st.mode & 0o111 ? 'x' : '');
      ser.u64(st.size);
      scanner.reset();
      const fd = openSync(path, 'r');
      try {
        let n: number;
        let total = 0;
        while ((n = readSync(fd, buf, 0, CHUNK, null)) > 0) {
          const chunk = buf.subarray(0, n);
          ser.raw(chunk);
          scanner.feed(chunk);
          total += n;
        }
        // A file that changes while we read it would make the hash lie about the size we recorded.
        if (total !== st.size) throw new CairnError(`${path} changed size while it was being hashed`);
      } finally {
        closeSync(fd);
      }
    } else if (st.isDirectory()) {
      if (opts.canonicalise && (st.mode & 0o700) !== 0o700) chmodSync(path, 0o755);
      const names = readdirSync(path, { encoding: 'buffer' }).sort(Buffer.compare);
      ser.str('dir');
      ser.u64(names.length);
      for (const name of names) {
        ser.str(name);
        scanner.reset();
        scanner.feed(name);
        const nameStr = name.toString();
        await visit(`${path}/${nameStr}`, rel === '' ? nameStr : `${rel}/${nameStr}`);
      }
      // Children first: only then may the directory lose its write bit and get its final mtime.
      if (opts.canonicalise) {
        if ((st.mode & 0o7777) !== 0o555) chmodSync(path, 0o555);
        utimesSync(path, CANONICAL_MTIME, CANONICAL_MTIME);
      }
    } else {
      throw new CairnError(`${path}: store paths can hold only files, directories and symlinks`);
    }
  };

  await visit(root, '');
  return { narHash: `sha256:${toNixBase32(ser.hash.digest())}`, narSize: ser.size, references: scanner.found, setuid };
}

/**
 * Gives a file mode 0444 or 0555 and mtime 1 s. A file that is already canonical is left alone:
 * it may be a hard link into another store path, and touching it would touch that path too.
 */
function canonicaliseFile(path: string, rel: string, st: Stats, setuid: SetuidEntry[]): Stats {
  const mode = st.mode & 0o7777;
  const want = mode & 0o111 ? 0o555 : 0o444;
  if (mode & 0o6000) setuid.push({ path: rel, mode });
  let changed = false;
  if (mode !== want) {
    chmodSync(path, want);
    changed = true;
  }
  if (st.mtimeMs !== CANONICAL_MTIME * 1000) {
    utimesSync(path, CANONICAL_MTIME, CANONICAL_MTIME);
    changed = true;
  }
  return changed ? lstatSync(path) : st;
}
