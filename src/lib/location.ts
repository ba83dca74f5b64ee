import { relative, isAbsolute } from 'node:path';
import { originalLocation } from './sourcemap.js';

/** Where something was written: a file, and where known, its line and column (1-based). */
export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
}

/** `file:line:col`, with the file relative to the working directory when it lies below it. */
export function formatLocation(loc: SourceLocation): string {
  let file = loc.file;
  if (isAbsolute(file)) {
    const rel = relative(process.cwd(), file);
    if (!rel.startsWith('..') && !isAbsolute(rel)) file = rel;
  }
  if (loc.line === undefined) return file;
  return loc.column === undefined ? `${file}:${loc.line}` : `${file}:${loc.line}:${loc.column}`;
}

/**
 * Positions of the entries of containers that came from a file with positions (YAML), keyed by the
 * container object. Values keep their plain JavaScript shape; positions live beside them.
 */
const entryPositions = new WeakMap<object, Map<string, SourceLocation>>();

export function setEntryLocation(container: object, key: string, loc: SourceLocation): void {
  let map = entryPositions.get(container);
  if (!map) entryPositions.set(container, (map = new Map()));
  map.set(key, loc);
}

export function entryLocation(container: object, key: string): SourceLocation | undefined {
  return entryPositions.get(container)?.get(key);
}

/** Copies entry positions from one container to another (when a value is rebuilt). */
export function copyEntryLocations(from: object, to: object): void {
  const map = entryPositions.get(from);
  if (map) entryPositions.set(to, new Map(map));
}

/**
 * The location of the code that called into the library, read lazily from a captured stack:
 * capturing is cheap, formatting happens only when a message needs it.
 */
export class CallSite {
  private readonly holder: { stack?: string } = {};
  private resolved?: SourceLocation | null;
  constructor(skip: Function) {
    // Only the caller's frame is needed; a short trace keeps mkOption/mkDefault cheap.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 3;
    Error.captureStackTrace(this.holder, skip);
    Error.stackTraceLimit = limit;
  }
  get location(): SourceLocation | undefined {
    if (this.resolved === undefined) {
      const frame = parseFirstFrame(this.holder.stack ?? '');
      this.resolved = frame && originalLocation(frame);
    }
    return this.resolved ?? undefined;
  }
}

function parseFirstFrame(stack: string): SourceLocation | null {
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?[^()\s]+?):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    if (!m) continue;
    let file = m[1]!;
    if (file.startsWith('file://')) file = decodeURIComponent(new URL(file).pathname);
    if (file.startsWith('node:') || file.includes('/node_modules/')) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return null;
}
