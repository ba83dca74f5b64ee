import { readFileSync } from 'node:fs';
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

/** The positions of a container's entries, if it has any: looked up once for a walk over its keys. */
export function entryLocations(container: object): ReadonlyMap<string, SourceLocation> | undefined {
  return entryPositions.get(container);
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

/**
 * The call sites of declarations made while a module function runs are not captured then: most
 * are never shown, and capturing a stack costs more than the rest of mkOption (a configuration
 * makes thousands). Each declaration keeps its place in the run instead; when one is first shown,
 * the function runs again (with stand-ins for config) capturing every site, and the same place
 * in that run gives it. A module's function gives the same declarations in the same order.
 */
class SiteRun {
  count = 0;
  private sites?: CallSite[];
  constructor(private readonly replay: (() => unknown) | undefined) {}
  site(index: number): CallSite | undefined {
    if (!this.sites) {
      const recorded: CallSite[] = [];
      const outer = sites;
      sites = recorded;
      try {
        this.replay?.();
      } catch {
        // The sites recorded before it failed.
      } finally {
        sites = outer;
      }
      this.sites = recorded;
    }
    return this.sites[index];
  }
}

/** A call site within a module function's run, captured when first read (see SiteRun). */
export class DeferredSite {
  constructor(
    private readonly run: SiteRun,
    private readonly index: number,
  ) {}
  get location(): SourceLocation | undefined {
    return this.run.site(this.index)?.location;
  }
}

/** The module function's run under way, or the sites being recorded by a run again. */
let sites: SiteRun | CallSite[] | undefined;

/**
 * Runs `fn`, a module function's run, with the call sites made in it deferred: `replay` runs the
 * function again when one is needed (none: they are never shown, and have no location).
 */
export function withDeferredSites<T>(replay: (() => unknown) | undefined, fn: () => T): T {
  const outer = sites;
  sites = new SiteRun(replay);
  try {
    return fn();
  } finally {
    sites = outer;
  }
}

/** Leaves any module function's run: what an option's computation declares is no part of it. */
export function leaveModuleRun(): unknown {
  const outer = sites;
  sites = undefined;
  return outer;
}

/** Back in the run left (the value leaveModuleRun gave). */
export function reenterModuleRun(outer: unknown): void {
  sites = outer as typeof sites;
}

/** Where the library function `fn` was called: captured now, or deferred within a module function's run. */
export function callSite(fn: Function): CallSite | DeferredSite {
  const s = sites;
  if (s === undefined) return new CallSite(fn);
  if (s instanceof SiteRun) return new DeferredSite(s, s.count++);
  const site = new CallSite(fn);
  s.push(site);
  return site;
}

function parseFirstFrame(stack: string): SourceLocation | null {
  for (const frame of stackFrames(stack)) {
    if (frame.file.startsWith('node:') || frame.file.includes('/node_modules/')) continue;
    return frame;
  }
  return null;
}

/** The positions of a V8 stack trace's frames, innermost first (frames without one are skipped). */
export function stackFrames(stack: string): SourceLocation[] {
  const frames: SourceLocation[] = [];
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?[^()\s]+?):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    if (!m) continue;
    let file = m[1]!;
    if (file.startsWith('file://')) file = decodeURIComponent(new URL(file).pathname);
    frames.push({ file, line: Number(m[2]), column: Number(m[3]) });
  }
  return frames;
}

/**
 * A location computed when first read: most are never shown. Its fields are getters of the class,
 * not its own: evaluations make a location per declaration and per definition, and an object with
 * accessors of its own costs several times as much to make. It is computed by a function shared by
 * all locations of its kind from two values it holds, not by a closure made for each. Where
 * modules see locations (`options.x.definitions`) they get plain copies (plainLocation).
 */
class LazyLocation<A, B> implements SourceLocation {
  #resolved?: SourceLocation;
  readonly #compute: (a: A, b: B) => SourceLocation;
  readonly #a: A;
  readonly #b: B;
  constructor(compute: (a: A, b: B) => SourceLocation, a: A, b: B) {
    this.#compute = compute;
    this.#a = a;
    this.#b = b;
  }
  #get(): SourceLocation {
    return (this.#resolved ??= this.#compute(this.#a, this.#b));
  }
  get file(): string {
    return this.#get().file;
  }
  get line(): number | undefined {
    return this.#get().line;
  }
  get column(): number | undefined {
    return this.#get().column;
  }
  toJSON(): SourceLocation {
    return plainLocation(this);
  }
}

/** A location computed from `a` and `b` by `compute` when first read (see LazyLocation). */
export function lazyLocation<A, B>(compute: (a: A, b: B) => SourceLocation, a: A, b: B): SourceLocation {
  return new LazyLocation(compute, a, b);
}

/** A location as a plain object of its own fields (a lazy one resolved). */
export function plainLocation(loc: SourceLocation): SourceLocation {
  return loc instanceof LazyLocation ? { file: loc.file, line: loc.line, column: loc.column } : loc;
}

const sourceLines = new Map<string, string[] | null>();

/**
 * Where an entry of a TypeScript/JavaScript module's object literal is written. JavaScript keeps no
 * positions for object literals, so this finds `key:` (or `get key(`) in the source, at or after
 * its parent's position: entry by entry down the literal, like the path of the option. A best
 * guess from the text, computed only when a message shows it; the file alone when nothing matches.
 */
export function keyLocation(parent: SourceLocation, key: string): SourceLocation {
  return lazyLocation(keyPosition, parent, key);
}

function keyPosition(parent: SourceLocation, key: string): SourceLocation {
  // Even the parent's file is read only when shown: finding it may decode a source map.
  return (/\.[cm]?[jt]sx?$/.test(parent.file) ? findKey(parent, key) : undefined) ?? { file: parent.file, line: parent.line, column: parent.column };
}

function findKey(parent: SourceLocation, key: string): SourceLocation | undefined {
  let lines = sourceLines.get(parent.file);
  if (lines === undefined) {
    try {
      lines = readFileSync(parent.file, 'utf8').split('\n');
    } catch {
      lines = null;
    }
    sourceLines.set(parent.file, lines);
  }
  if (!lines) return undefined;
  const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(^|[\\s{,(])((?:get\\s+)?(['"\`]?)${escaped}\\3\\s*[:(])`);
  const startLine = (parent.line ?? 1) - 1;
  for (let i = startLine; i < lines.length; i++) {
    const from = i === startLine && parent.line !== undefined ? (parent.column ?? 1) : 1;
    const m = re.exec(lines[i]!.slice(from - 1));
    if (m) return { file: parent.file, line: i + 1, column: from + m.index + m[1]!.length };
  }
  return undefined;
}
