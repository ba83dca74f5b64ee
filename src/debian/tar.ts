/**
 * A streaming reader of tar headers (ustar, GNU long names, pax path records). cairn lets
 * `tar` extract a .deb's data archive, and reads the same stream with this to learn each
 * entry's full mode: an unprivileged extraction (and the store) drop setuid/setgid bits, so
 * they are recorded from the archive itself.
 */

/** One archive member as its header describes it. */
export interface TarEntry {
  /** Path without a leading `./` or `/`. */
  path: string;
  /** Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000). */
  mode: number;
  /** Type flag: '0' file, '1' hard link, '2' symlink, '5' directory, … */
  type: string;
  size: number;
  linkname: string;
}

function cstr(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
}

function octal(buf: Buffer, start: number, len: number): number {
  // GNU base-256 encoding for large values: high bit of the first byte set.
  if (buf[start]! & 0x80) {
    let v = buf[start]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + buf[start + i]!;
    return v;
  }
  const s = cstr(buf, start, len).trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

/** Parses pax extended header records (`<len> key=value\n`). */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number.parseInt(data.toString('ascii', pos, sp), 10);
    if (!(len > 0)) break;
    const rec = data.toString('utf8', sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** Feeds tar bytes in chunks; calls `onEntry` for each member (pax/GNU metadata records are folded in). */
export class TarLister {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of member data still to skip (or collect, for metadata records). */
  private skip = 0;
  private collecting: { kind: string; size: number; parts: Buffer[]; got: number } | undefined;
  private nextPath: string | undefined;
  private nextLink: string | undefined;
  private ended = false;

  constructor(private readonly onEntry: (e: TarEntry) => void) {}

  push(chunk: Buffer): void {
    if (this.ended) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.pending.length);
        if (this.collecting && this.collecting.got < this.collecting.size) {
          const take = Math.min(n, this.collecting.size - this.collecting.got);
          this.collecting.parts.push(Buffer.from(this.pending.subarray(0, take)));
          this.collecting.got += take;
        }
        this.pending = this.pending.subarray(n);
        this.skip -= n;
        if (this.skip > 0) return;
        if (this.collecting) this.finishMeta();
      }
      if (this.pending.length < 512) return;
      const h = this.pending.subarray(0, 512);
      this.pending = this.pending.subarray(512);
      if (h.every((b) => b === 0)) { this.ended = true; return; }
      this.header(h);
    }
  }

  private finishMeta(): void {
    const c = this.collecting!;
    this.collecting = undefined;
    const data = Buffer.concat(c.parts);
    if (c.kind === 'L') this.nextPath = cstr(data, 0, data.length);
    else if (c.kind === 'K') this.nextLink = cstr(data, 0, data.length);
    else {
      const recs = paxRecords(data);
      if (recs.has('path')) this.nextPath = recs.get('path');
      if (recs.has('linkpath')) this.nextLink = recs.get('linkpath');
    }
  }

  private header(h: Buffer): void {
    const type = String.fromCharCode(h[156] || 48);
    const size = octal(h, 124, 12);
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'L' || type === 'K' || type === 'x') {
      this.collecting = { kind: type, size, parts: [], got: 0 };
      this.skip = padded;
      if (padded === 0) this.finishMeta();
      return;
    }
    if (type === 'g') { this.skip = padded; return; } // global pax header: nothing cairn needs
    const magic = h.toString('ascii', 257, 262);
    let path = cstr(h, 0, 100);
    if (magic === 'ustar') {
      const prefix = cstr(h, 345, 155);
      if (prefix) path = `${prefix}/${path}`;
    }
    if (this.nextPath !== undefined) path = this.nextPath;
    const linkname = this.nextLink ?? cstr(h, 157, 100);
    this.nextPath = undefined;
    this.nextLink = undefined;
    path = path.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
    this.onEntry({ path, mode: octal(h, 100, 8) & 0o7777, type, size, linkname });
    // Links and directories carry no data even if a size is given.
    this.skip = type === '1' || type === '2' || type === '5' ? 0 : padded;
  }
}
