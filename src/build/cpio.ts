/**
 * The "newc" cpio format (SVR4 without checksums), the one the Linux kernel unpacks as an initramfs.
 *
 * cairn writes it itself instead of driving a `cpio` tool: the format is a 110-byte ASCII header,
 * the NUL-terminated name and the data, each padded to 4 bytes, and doing it here makes the archive
 * deterministic by construction (fixed mtimes, owner root, sorted entries, sequential inode numbers)
 * and removes a host dependency.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { CairnError } from '../errors.js';

/** One member of an archive. Paths are relative (`bin/busybox`), without a leading `/` or `./`. */
export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char' | 'block'; path: string; major: number; minor: number; mode?: number };

const MAGIC = '070701';
const HEADER_SIZE = 110;
const TRAILER = 'TRAILER!!!';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Options that affect every entry. */
export interface CpioOptions {
  /** Modification time written into every header (seconds since the epoch); default 0, so archives are reproducible. */
  mtime?: number;
}

/** Rounds up to a multiple of 4: newc pads both the header+name and the data to 4-byte boundaries. */
function pad4(n: number): number {
  return (n + 3) & ~3;
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new CairnError(`cpio: field value ${n} does not fit in 32 bits`);
  return n.toString(16).padStart(8, '0');
}

function normalisePath(p: string): string {
  const rel = p.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  if (rel === '' || rel.split('/').some((c) => c === '' || c === '.' || c === '..')) {
    throw new CairnError(`cpio: '${p}' is not a valid member path`);
  }
  return rel;
}

function modeOf(e: CpioEntry): number {
  switch (e.type) {
    case 'dir':
      return S_IFDIR | (e.mode ?? 0o755);
    case 'file':
      return S_IFREG | (e.mode ?? 0o644);
    case 'symlink':
      return S_IFLNK | 0o777;
    case 'char':
      return S_IFCHR | (e.mode ?? 0o600);
    case 'block':
      return S_IFBLK | (e.mode ?? 0o600);
  }
}

function header(fields: { ino: number; mode: number; nlink: number; mtime: number; size: number; rmajor: number; rminor: number; nameSize: number }): Buffer {
  const text =
    MAGIC +
    hex8(fields.ino) +
    hex8(fields.mode) +
    hex8(0) + // uid: root
    hex8(0) + // gid: root
    hex8(fields.nlink) +
    hex8(fields.mtime) +
    hex8(fields.size) +
    hex8(0) + // devmajor of the file system the file came from: meaningless here
    hex8(0) +
    hex8(fields.rmajor) +
    hex8(fields.rminor) +
    hex8(fields.nameSize) +
    hex8(0); // checksum: unused by newc
  return Buffer.from(text, 'ascii');
}

/** Appends one member (header, padded name, padded data) to `chunks`. */
function pushMember(chunks: Buffer[], name: string, data: Uint8Array, f: Omit<Parameters<typeof header>[0], 'nameSize' | 'size'>): void {
  const nameBytes = Buffer.from(name + '\0', 'utf8');
  chunks.push(header({ ...f, size: data.length, nameSize: nameBytes.length }));
  chunks.push(nameBytes);
  const afterName = pad4(HEADER_SIZE + nameBytes.length) - (HEADER_SIZE + nameBytes.length);
  if (afterName > 0) chunks.push(Buffer.alloc(afterName));
  if (data.length > 0) {
    chunks.push(Buffer.from(data.buffer, data.byteOffset, data.length));
    const afterData = pad4(data.length) - data.length;
    if (afterData > 0) chunks.push(Buffer.alloc(afterData));
  }
}

/**
 * An uncompressed newc archive of `entries`, sorted by path (so a parent always precedes its
 * children and the input order does not matter), owned by root, with one fixed mtime.
 * Missing parent directories are not invented: list them.
 */
export function writeCpio(entries: CpioEntry[], opts: CpioOptions = {}): Buffer {
  const mtime = opts.mtime ?? 0;
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const path = normalisePath(e.path);
    if (byPath.has(path)) throw new CairnError(`cpio: '${path}' is listed twice`);
    byPath.set(path, { ...e, path });
  }
  // Any order that puts parents first is valid for the kernel; sorting by components gives one
  // that is independent of the input order.
  const sorted = [...byPath.values()].sort((a, b) => compareComponents(a.path, b.path));
  const chunks: Buffer[] = [];
  let ino = 1;
  for (const e of sorted) {
    const data = e.type === 'file' ? e.data : e.type === 'symlink' ? Buffer.from(e.target, 'utf8') : new Uint8Array(0);
    const rmajor = e.type === 'char' || e.type === 'block' ? e.major : 0;
    const rminor = e.type === 'char' || e.type === 'block' ? e.minor : 0;
    pushMember(chunks, e.path, data, { ino: ino++, mode: modeOf(e), nlink: e.type === 'dir' ? 2 : 1, mtime, rmajor, rminor });
  }
  pushMember(chunks, TRAILER, new Uint8Array(0), { ino: 0, mode: 0, nlink: 1, mtime: 0, rmajor: 0, rminor: 0 });
  return Buffer.concat(chunks);
}

/** Orders paths component by component (`a` < `a/b` < `a-c`), like a sorted directory walk. */
function compareComponents(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i]! < pb[i]! ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** A parsed member, as `parseCpio` returns it (for tests and inspection). */
export interface ParsedCpioEntry {
  path: string;
  /** Full st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  ino: number;
  rmajor: number;
  rminor: number;
  data: Buffer;
}

/** Reads a newc archive back (stops at the trailer). Accepts gzip-compressed input too. */
export function parseCpio(input: Buffer): ParsedCpioEntry[] {
  const buf = input[0] === 0x1f && input[1] === 0x8b ? gunzipSync(input) : input;
  const out: ParsedCpioEntry[] = [];
  let off = 0;
  for (;;) {
    if (off + HEADER_SIZE > buf.length) throw new CairnError('cpio: archive ends without a trailer');
    const h = buf.toString('ascii', off, off + HEADER_SIZE);
    if (!h.startsWith(MAGIC)) throw new CairnError(`cpio: bad magic at offset ${off}`);
    const field = (i: number): number => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const nameSize = field(11);
    const size = field(6);
    const name = buf.toString('utf8', off + HEADER_SIZE, off + HEADER_SIZE + nameSize - 1);
    const dataStart = pad4(off + HEADER_SIZE + nameSize);
    if (name === TRAILER) return out;
    out.push({
      path: name,
      ino: field(0),
      mode: field(1),
      uid: field(2),
      gid: field(3),
      mtime: field(5),
      rmajor: field(9),
      rminor: field(10),
      data: buf.subarray(dataStart, dataStart + size),
    });
    off = pad4(dataStart + size);
  }
}

/**
 * gzip at the best ratio. Node's zlib writes no file name and a zero mtime into the gzip header,
 * so equal archives compress to equal bytes.
 */
export function gzipCpio(archive: Buffer): Buffer {
  return gzipSync(archive, { level: 9 });
}
