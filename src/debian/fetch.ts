/**
 * Downloading .debs into the cache: several at once, resuming an interrupted download from its
 * `.part` file (HTTP Range), and verifying the SHA-256 the signed index promised before the file
 * is renamed to `debs/<sha256>.deb`. A file that does not match is deleted and refused.
 *
 * Several cairn processes may share the cache (CI runners, fleet deploys building many
 * configurations at once): each download holds `debs/<sha256>.deb.lock`, so only one process
 * writes a `.part` at a time, and one that waited finds the finished file and uses it.
 */
import { existsSync, mkdirSync, statSync, rmSync, renameSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CairnError } from '../errors.js';
import { acquireLock } from '../store/lock.js';
import { debCachePath, debianCacheDir, sha256File } from './cache.js';

/** One .deb to download: what it is and the repository base URI to get it from. */
export interface DebDownload {
  name: string;
  version: string;
  filename: string;
  sha256: string;
  size: number;
  /** Repository base URI; the file is at `<uri>/<filename>`. */
  uri: string;
}

export interface FetchOptions {
  /** Parallel downloads (default 6). */
  jobs?: number;
  cacheDir?: string;
  /** Show a progress line on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

/** Progress shared by the parallel downloads, drawn on one terminal line. */
class Progress {
  private done = 0;
  private bytes = 0;
  private last = 0;
  constructor(private readonly total: number, private readonly totalBytes: number, private readonly enabled: boolean) {}
  add(n: number): void {
    this.bytes += n;
    this.draw();
  }
  finished(): void {
    this.done++;
    this.draw(true);
  }
  private draw(force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const mb = (b: number): string => (b / 1e6).toFixed(1);
    process.stderr.write(`\r\x1b[Kdownloading packages: ${this.done}/${this.total}, ${mb(this.bytes)}/${mb(this.totalBytes)} MB`);
  }
  end(): void {
    if (this.enabled && this.total > 0) process.stderr.write('\r\x1b[K');
  }
}

/** Streams `<uri>/<filename>` into `part`, continuing from what it already holds when the server allows. */
async function downloadToPart(d: DebDownload, part: string, progress: Progress): Promise<void> {
  const url = `${d.uri}/${d.filename}`;
  let have = existsSync(part) ? statSync(part).size : 0;
  if (have > d.size) { rmSync(part); have = 0; }
  if (have === d.size) return;
  let res: Response;
  try {
    res = await fetch(url, have > 0 ? { headers: { Range: `bytes=${have}-` } } : {});
  } catch (err) {
    throw new CairnError(`cannot download ${d.name} ${d.version} from ${url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, { cause: err });
  }
  if (res.status === 416 && have > 0) { rmSync(part); return downloadToPart(d, part, progress); }
  if (!res.ok || !res.body) throw new CairnError(`cannot download ${d.name} ${d.version} from ${url}: HTTP ${res.status} ${res.statusText}`);
  // 200 to a Range request means the server sends the whole file: start over.
  const append = res.status === 206 && have > 0;
  if (!append) have = 0;
  progress.add(have);
  const fh = await open(part, append ? 'a' : 'w', 0o644);
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await fh.write(chunk);
      progress.add(chunk.length);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Verifies a complete `.part` and moves it into the cache; a mismatch deletes it and throws. */
async function commit(d: DebDownload, part: string, final: string): Promise<void> {
  const size = statSync(part).size;
  const sha = await sha256File(part);
  if (size !== d.size || sha !== d.sha256) {
    rmSync(part, { force: true });
    throw new CairnError(`downloaded ${d.filename} (${d.name} ${d.version}) does not match the signed index: SHA-256 ${sha}, ${size} bytes, expected ${d.sha256}, ${d.size} bytes; refusing it`);
  }
  renameSync(part, final);
}

/** Whether the cache holds the whole file (its hash is checked where it is used, by the deb builder). */
function complete(final: string, d: DebDownload): boolean {
  try {
    return statSync(final).size === d.size;
  } catch {
    return false; // absent, or removed meanwhile as damaged
  }
}

/** Ensures one .deb is in the cache, resuming and retrying network failures a few times. */
async function fetchOne(d: DebDownload, cacheDir: string, progress: Progress): Promise<string> {
  const final = debCachePath(d.sha256, cacheDir);
  if (complete(final, d)) return final;
  mkdirSync(dirname(final), { recursive: true });
  // The .part belongs to whoever holds the lock; a holder that died leaves a stale lock, which is broken.
  const lock = (await acquireLock(`${final}.lock`))!;
  try {
    if (complete(final, d)) return final; // another process finished it while we waited
    const part = `${final}.part`;
    for (let attempt = 1; ; attempt++) {
      try {
        await downloadToPart(d, part, progress);
        break;
      } catch (err) {
        if (attempt >= 3 || (err instanceof CairnError && /HTTP 4\d\d/.test(err.message))) throw err;
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
    await commit(d, part, final);
    return final;
  } finally {
    lock.release();
  }
}

/**
 * Downloads the .debs missing from the cache, `jobs` at a time; returns sha256 → cache path.
 * Every file returned has the SHA-256 the signed index (or lock) names.
 */
export async function fetchDebs(items: DebDownload[], opts: FetchOptions = {}): Promise<Map<string, string>> {
  const cacheDir = opts.cacheDir ?? debianCacheDir();
  const unique = [...new Map(items.map((d) => [d.sha256, d])).values()];
  const missing = unique.filter((d) => !existsSync(debCachePath(d.sha256, cacheDir)));
  const progress = new Progress(missing.length, missing.reduce((s, d) => s + d.size, 0), opts.progress ?? Boolean(process.stderr.isTTY));
  const out = new Map<string, string>();
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < unique.length && errors.length === 0) {
      const d = unique[next++]!;
      try {
        out.set(d.sha256, await fetchOne(d, cacheDir, progress));
        progress.finished();
      } catch (err) {
        errors.push(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.jobs ?? 6) }, worker));
  } finally {
    progress.end();
  }
  if (errors.length > 0) throw errors[0];
  return out;
}
