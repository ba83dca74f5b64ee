/**
 * The store: immutable, content-addressed paths under `<home>/store`, seen as `/cairn/store` by
 * built systems.
 *
 * On-disk layout (all on one filesystem, so renames are atomic):
 *   store/<hash>-<name>                 a store object (directory, file or symlink)
 *   store/.build-<token>-<n>            an object being built by process <token>
 *   store/.trash-<token>-<n>            an object being deleted
 *   store/.receive-<token>-<n>          objects being received from a deploying machine
 *                                       (scripts/remote/receive.sh, which does this sweep too)
 *   var/db/info/<hash>-<name>.json      its metadata (PathInfo)
 *   var/locks/<hash>-<name>.lock        held while it is built or deleted
 *   var/temproots/<token>               paths a running process uses (GC keeps them)
 *   var/gc.lock                         held while GC runs
 *   gcroots/, gcroots/auto/, profiles/  GC roots
 *
 * Validity rule: a path is valid exactly when its metadata file AND its store entry both exist.
 * A build writes (and fsyncs) the metadata first and renames the finished, canonical tree into
 * place last; deletion removes the metadata first. So a crash at any instant leaves either a
 * complete valid path, or an invalid one (metadata without entry, entry without metadata, or a
 * `.build-`/`.trash-` directory of a dead process), all of which later runs clear.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync, appendFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { writeFile } from 'node:fs/promises';
import { CairnError, isNoSpace } from '../errors.js';
import { cairnHome, LOGICAL_STORE } from '../paths.js';
import { getBuilder, registerBuilder, type SetuidEntry } from './builders.js';
import { derivationDescription, type Derivation } from './derivation.js';
import { hashPart } from './hash.js';
import { acquireLock, isAlive, lockHolder, processToken, sweepLocks, tryLockSync } from './lock.js';
import { dumpTree } from './nar.js';
import { fsyncDir, lexists, removeTree, syncFilesystem, writeFileAtomic } from './fsutil.js';
import { hashOf, isStoreBaseName, validateName } from './storepath.js';

/** Metadata of a valid store path. */
export interface PathInfo {
  /** Logical path, `/cairn/store/<hash>-<name>`. */
  path: string;
  /** `sha256:<base32>` of the canonical serialisation of the contents. */
  narHash: string;
  /** Size of that serialisation in bytes (≈ the contents' size). */
  narSize: number;
  /** Logical store paths whose hash parts occur in the contents (may include the path itself). */
  references: string[];
  /** The recipe that produced it. */
  deriver?: Derivation;
  /** Seconds since the epoch when it became valid. */
  registrationTime: number;
  /** Files the target system must give these modes (setuid/setgid); the building machine's store never has them. */
  setuid?: SetuidEntry[];
}

/** A store path split into its parts. */
export interface ParsedPath {
  /** `<hash>-<name>` */
  base: string;
  hash: string;
  /** Logical path of the store object itself (without any sub-path). */
  logical: string;
  /** What follows the store object, `''` or `/bin/sh`. */
  sub: string;
}

/**
 * Test-only crash points: `CAIRN_STORE_FAILPOINT=<point>` (or `<point>@<derivation name>`) makes
 * the process die there with SIGKILL, so tests can check the validity rule at every step.
 */
function failpoint(point: string, drvName: string): void {
  const want = process.env.CAIRN_STORE_FAILPOINT;
  if (want !== undefined && (want === point || want === `${point}@${drvName}`)) process.kill(process.pid, 'SIGKILL');
}

/** Failpoints, in the order a build reaches them (exported for tests). */
export const BUILD_FAILPOINTS = ['after-lock', 'after-builder', 'after-canonicalise', 'after-metadata', 'after-rename'] as const;

registerBuilder('cairn:text', async (ctx) => {
  const { text, executable } = ctx.drv.args as { text: string; executable?: boolean };
  await writeFile(ctx.out, text, { mode: executable ? 0o755 : 0o644 });
});

/**
 * Numbers this process's build directories. Process-wide, not per Store: one process may open a
 * store several times (concurrent VM test cases do) and its builds must not share a directory.
 */
let buildCounter = 0;

export class Store {
  /** cairn's state directory (`$CAIRN_HOME`). */
  readonly home: string;
  /** Physical store directory. */
  readonly dir: string;
  readonly infoDir: string;
  readonly locksDir: string;
  readonly tempRootsDir: string;
  readonly gcLockPath: string;
  readonly gcrootsDir: string;
  readonly autoRootsDir: string;
  readonly profilesDir: string;

  private readonly tempRoots = new Set<string>();
  private tempRootsFile: string | undefined;
  private readonly inflight = new Map<string, Promise<string>>();
  private swept = false;

  private constructor(home: string) {
    this.home = resolve(home);
    this.dir = join(this.home, 'store');
    this.infoDir = join(this.home, 'var', 'db', 'info');
    this.locksDir = join(this.home, 'var', 'locks');
    this.tempRootsDir = join(this.home, 'var', 'temproots');
    this.gcLockPath = join(this.home, 'var', 'gc.lock');
    this.gcrootsDir = join(this.home, 'gcroots');
    this.autoRootsDir = join(this.gcrootsDir, 'auto');
    this.profilesDir = join(this.home, 'profiles');
  }

  /** Opens the store in `home` (default: cairnHome()), creating its directories if missing. */
  static open(home?: string): Store {
    const store = new Store(home ?? cairnHome());
    for (const d of [store.dir, store.infoDir, store.locksDir, store.tempRootsDir, store.autoRootsDir, store.profilesDir]) {
      mkdirSync(d, { recursive: true });
    }
    return store;
  }

  // ---- paths -------------------------------------------------------------------------------

  /** Maps a logical or physical path (possibly below a store object) to the physical one. */
  toPhysical(p: string): string {
    if (p === LOGICAL_STORE || p.startsWith(LOGICAL_STORE + '/')) return this.dir + p.slice(LOGICAL_STORE.length);
    if (p === this.dir || p.startsWith(this.dir + '/')) return p;
    throw new CairnError(`${p} is not in the store (${LOGICAL_STORE} or ${this.dir})`);
  }

  /** Maps a logical or physical path (possibly below a store object) to the logical one. */
  toLogical(p: string): string {
    if (p === this.dir || p.startsWith(this.dir + '/')) return LOGICAL_STORE + p.slice(this.dir.length);
    if (p === LOGICAL_STORE || p.startsWith(LOGICAL_STORE + '/')) return p;
    throw new CairnError(`${p} is not in the store (${LOGICAL_STORE} or ${this.dir})`);
  }

  /** Splits a path in the store into store object and sub-path; a CairnError if it is not one. */
  parse(p: string): ParsedPath {
    const logical = this.toLogical(p);
    const rest = logical.slice(LOGICAL_STORE.length + 1);
    const slash = rest.indexOf('/');
    const base = slash < 0 ? rest : rest.slice(0, slash);
    if (!isStoreBaseName(base)) throw new CairnError(`${p} is not a store path (expected ${LOGICAL_STORE}/<hash>-<name>)`);
    return { base, hash: hashOf(base), logical: `${LOGICAL_STORE}/${base}`, sub: slash < 0 ? '' : rest.slice(slash) };
  }

  /**
   * Resolves what a user typed to a store path: a logical or physical store path (a sub-path is
   * cut to its store object), or a symlink (chain) such as `./result` or a profile that leads into the store.
   */
  resolve(p: string): string {
    let cur = resolve(p);
    for (let hops = 0; hops < 40; hops++) {
      if (cur.startsWith(LOGICAL_STORE + '/') || cur.startsWith(this.dir + '/')) return this.parse(cur).logical;
      let target: string;
      try {
        target = readlinkSync(cur);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') throw new CairnError(`${p} does not exist`);
        throw new CairnError(`${p} is neither a store path nor a symlink into the store`);
      }
      cur = resolve(dirname(cur), target);
    }
    throw new CairnError(`${p}: too many levels of symlinks`);
  }

  /**
   * The physical file behind a path in the store, following symlinks: links inside store objects
   * name `/cairn/store/…`, which exists only inside a built system, so they are mapped here.
   */
  realFile(p: string): string {
    let cur = p.startsWith(LOGICAL_STORE + '/') ? p : this.toLogical(p);
    for (let hops = 0; hops < 40; hops++) {
      const phys = cur.startsWith(LOGICAL_STORE + '/') ? this.toPhysical(cur) : cur;
      let target: string;
      try {
        if (!lstatSync(phys).isSymbolicLink()) return phys;
        target = readlinkSync(phys);
      } catch {
        throw new CairnError(`${p} does not exist in the store`);
      }
      cur = resolve(dirname(cur), target);
    }
    throw new CairnError(`${p}: too many levels of symlinks`);
  }

  private infoPath(base: string): string {
    return join(this.infoDir, `${base}.json`);
  }

  private lockPath(base: string): string {
    return join(this.locksDir, `${base}.lock`);
  }

  /** The logical output path of a derivation (validates its name). */
  outputPath(drv: Derivation): string {
    validateName(drv.name);
    return `${LOGICAL_STORE}/${hashPart(derivationDescription(drv))}-${drv.name}`;
  }

  /** Is `p` (logical or physical) a complete store object: metadata and entry both present? */
  isValid(p: string): boolean {
    let parsed: ParsedPath;
    try {
      parsed = this.parse(p);
    } catch {
      return false;
    }
    if (parsed.sub !== '') return false;
    return existsSync(this.infoPath(parsed.base)) && lexists(join(this.dir, parsed.base));
  }

  /** Metadata of a valid path; a CairnError for anything else. */
  pathInfo(p: string): PathInfo {
    const parsed = this.parse(p);
    let text: string;
    try {
      text = readFileSync(this.infoPath(parsed.base), 'utf8');
    } catch {
      throw new CairnError(`${parsed.logical} is not a valid store path`);
    }
    if (!lexists(join(this.dir, parsed.base))) throw new CairnError(`${parsed.logical} is not a valid store path`);
    const info = parseInfo(text);
    if (typeof info === 'string') {
      throw new CairnError(`the metadata of ${parsed.logical} is damaged (${this.infoPath(parsed.base)}: ${info}); \`cairn store repair\` removes that path and what refers to it, for the next build to make them again`);
    }
    return info;
  }

  /** Why the metadata file of a path is damaged (truncated, not PathInfo), or undefined if it is not (or is missing). */
  damagedInfo(base: string): { file: string; problem: string } | undefined {
    const file = this.infoPath(base);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    const info = parseInfo(text);
    return typeof info === 'string' ? { file, problem: info } : undefined;
  }

  /** Every path reachable from `paths` through references, sorted. */
  closure(paths: string[]): string[] {
    const seen = new Set<string>();
    const todo = paths.map((p) => this.parse(p).logical);
    while (todo.length > 0) {
      const p = todo.pop()!;
      if (seen.has(p)) continue;
      seen.add(p);
      for (const r of this.pathInfo(p).references) if (!seen.has(r)) todo.push(r);
    }
    return [...seen].sort();
  }

  /** Logical paths of every valid store object. */
  validPaths(): string[] {
    return readdirSync(this.dir)
      .filter((e) => isStoreBaseName(e) && existsSync(this.infoPath(e)))
      .map((e) => `${LOGICAL_STORE}/${e}`)
      .sort();
  }

  // ---- temporary roots ---------------------------------------------------------------------

  /**
   * Marks paths as in use by this process until it exits, so a concurrent GC keeps them.
   * Protocol with GC: a root is written *before* checking validity, and then we wait for any GC
   * that is running to finish; a GC that starts later reads our file, so what we found valid stays.
   */
  async addTempRoots(paths: string[]): Promise<void> {
    const fresh = paths.map((p) => this.parse(p).logical).filter((p) => !this.tempRoots.has(p));
    if (fresh.length > 0) {
      if (!this.tempRootsFile) {
        const file = join(this.tempRootsDir, processToken());
        this.tempRootsFile = file;
        process.once('exit', () => {
          try {
            unlinkSync(file);
          } catch {
            // already gone
          }
        });
      }
      appendFileSync(this.tempRootsFile, fresh.map((p) => p + '\n').join(''));
      for (const p of fresh) this.tempRoots.add(p);
    }
    await this.waitForGc();
  }

  private async waitForGc(): Promise<void> {
    let holder: string | undefined;
    while ((holder = lockHolder(this.gcLockPath)) !== undefined && holder !== processToken()) await delay(50);
  }

  // ---- building ----------------------------------------------------------------------------

  /** Builds a derivation unless its output is valid already; returns the logical output path. */
  build(drv: Derivation, log: (line: string) => void = () => {}): Promise<string> {
    let out: string;
    try {
      out = this.outputPath(drv);
    } catch (err) {
      return Promise.reject(err); // a bad name fails the promise, as every other build error does
    }
    let pending = this.inflight.get(out);
    if (!pending) {
      pending = this.realise(drv, out, log).finally(() => this.inflight.delete(out));
      this.inflight.set(out, pending);
    }
    return pending;
  }

  private async realise(drv: Derivation, out: string, log: (line: string) => void): Promise<string> {
    const builder = getBuilder(drv.builder);
    const inputs = drv.inputs.map((p) => this.parse(p));
    for (const input of inputs) {
      if (input.sub !== '') throw new CairnError(`derivation ${drv.name}: input ${input.logical}${input.sub} is not a store path (it has a sub-path)`);
    }
    await this.addTempRoots([out, ...drv.inputs]);
    if (this.isValid(out)) return out;
    for (const input of inputs) {
      if (!this.isValid(input.logical)) throw new CairnError(`derivation ${drv.name}: input ${input.logical} is not a valid store path (build it first)`);
    }
    this.sweepOnce();

    const { base, hash } = this.parse(out);
    const lock = await acquireLock(this.lockPath(base), {
      onWait: (holder) => log(`waiting for process ${holder.split('_')[0]}, which is building ${out}`),
    });
    try {
      failpoint('after-lock', drv.name);
      if (this.isValid(out)) return out;
      const final = join(this.dir, base);
      // Leftovers of an interrupted build or deletion of this very path: we hold its lock, so they are garbage.
      rmIfExists(this.infoPath(base));
      if (lexists(final)) this.trash(final);

      const tmp = join(this.dir, `.build-${processToken()}-${buildCounter++}`);
      let result;
      try {
        result = (await builder({ out: tmp, drv, store: this, log })) ?? {};
        failpoint('after-builder', drv.name);
        if (!lexists(tmp)) throw new CairnError(`builder '${drv.builder}' did not create the output of ${drv.name}`);
        const candidates = new Set([hash, ...this.closure(drv.inputs).map(hashOf)]);
        const dump = await dumpTree(tmp, { canonicalise: true, candidates });
        failpoint('after-canonicalise', drv.name);

        const setuid = new Map<string, SetuidEntry>();
        for (const e of [...dump.setuid, ...(result.setuid ?? [])]) {
          const rel = e.path.replace(/^\/+/, '');
          setuid.set(rel, { path: rel, mode: e.mode });
        }
        const refs = new Set(dump.references);
        const info: PathInfo = {
          path: out,
          narHash: dump.narHash,
          narSize: dump.narSize,
          references: [...this.closure(drv.inputs), out].filter((p) => refs.has(hashOf(p))).sort(),
          deriver: drv,
          registrationTime: Math.floor(Date.now() / 1000),
        };
        if (setuid.size > 0) info.setuid = [...setuid.values()].sort((a, b) => (a.path < b.path ? -1 : 1));

        syncFilesystem(tmp);
        writeFileAtomic(this.infoPath(base), JSON.stringify(info, null, 1) + '\n');
        failpoint('after-metadata', drv.name);
        renameSync(tmp, final);
        fsyncDir(this.dir);
        failpoint('after-rename', drv.name);
      } catch (err) {
        removeTree(tmp);
        if (isNoSpace(err)) throw new CairnError(`no space left on device while writing ${out} (into ${this.dir}); nothing of it was kept`, { cause: err });
        if (err instanceof CairnError && !err.message.includes(out)) {
          throw new CairnError(`building ${out}: ${err.message}`, { cause: err, exitCode: err.exitCode });
        }
        throw err;
      }
      return out;
    } finally {
      lock!.release();
    }
  }

  /**
   * Builds many derivations, each after those among them whose outputs it takes as inputs,
   * at most `jobs` at a time. Returns the output paths in the order given.
   */
  async buildAll(
    drvs: Derivation[],
    opts: { jobs?: number; onProgress?: (done: number, total: number, name: string, drv: Derivation) => void; log?: (line: string) => void } = {},
  ): Promise<string[]> {
    const outs = drvs.map((d) => this.outputPath(d));
    const byOut = new Map<string, Derivation>();
    outs.forEach((o, i) => byOut.set(o, drvs[i]!));
    const total = byOut.size;
    let done = 0;
    let running = 0;
    const queue: (() => void)[] = [];
    const jobs = Math.max(1, opts.jobs ?? availableParallelism());
    const slot = async <T>(fn: () => Promise<T>): Promise<T> => {
      if (running >= jobs) await new Promise<void>((r) => queue.push(r));
      running++;
      try {
        return await fn();
      } finally {
        running--;
        queue.shift()?.();
      }
    };
    const started = new Map<string, Promise<string>>();
    const visiting = new Set<string>();
    const ensure = (out: string): Promise<string> => {
      let p = started.get(out);
      if (p) return p;
      if (visiting.has(out)) throw new CairnError(`derivations form a cycle through ${out}`);
      visiting.add(out);
      const drv = byOut.get(out)!;
      const deps = drv.inputs.map((i) => this.parse(i).logical).filter((i) => byOut.has(i)).map(ensure);
      p = Promise.all(deps).then(() =>
        slot(async () => {
          const r = await this.build(drv, opts.log);
          opts.onProgress?.(++done, total, drv.name, drv);
          return r;
        }),
      );
      started.set(out, p);
      return p;
    };
    const all = [...byOut.keys()].map(ensure);
    // Wait for every build, so none is left running when one fails; then report the first failure.
    const settled = await Promise.allSettled(all);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return outs;
  }

  /** A store path holding one file with `text` (an executable one if asked). References must be valid store paths. */
  addText(name: string, text: string, opts: { references?: string[]; executable?: boolean } = {}): Promise<string> {
    const args: Record<string, unknown> = { text };
    if (opts.executable) args.executable = true;
    return this.build({ name, builder: 'cairn:text', args, inputs: opts.references ?? [] });
  }

  // ---- roots -------------------------------------------------------------------------------

  /**
   * Points `linkPath` (e.g. `./result`) at a store path (physical, so it can be used on this machine)
   * and registers it as an indirect GC root: the path stays as long as the link does.
   */
  addRoot(linkPath: string, storePath: string): void {
    const link = resolve(linkPath);
    const { logical } = this.parse(storePath);
    if (!this.isValid(logical)) throw new CairnError(`${logical} is not a valid store path`);
    let st;
    try {
      st = lstatSync(link);
    } catch {
      st = undefined;
    }
    if (st && !st.isSymbolicLink()) throw new CairnError(`${link} exists and is not a symlink; not replacing it`);
    const auto = join(this.autoRootsDir, hashPart(`cairn-auto-root:${link}`));
    replaceSymlink(auto, link);
    replaceSymlink(link, this.toPhysical(logical));
  }

  // ---- garbage -----------------------------------------------------------------------------

  /** Moves a store entry out of the way (one rename) and deletes it. */
  trash(physical: string): void {
    const trash = join(this.dir, `.trash-${processToken()}-${randomBytes(4).toString('hex')}`);
    renameSync(physical, trash);
    removeTree(trash);
  }

  private sweepOnce(): void {
    if (this.swept) return;
    this.swept = true;
    this.sweep();
  }

  /**
   * Clears what crashed processes left behind: their build and trash directories, metadata
   * without a store entry (when nobody holds that path's lock), stale locks and temp-root files.
   */
  sweep(): number {
    let removed = 0;
    for (const entry of readdirSync(this.dir)) {
      const m = /^\.(?:build|trash|receive)-(\d+_\d+)-/.exec(entry);
      if (m && !isAlive(m[1]!)) {
        removeTree(join(this.dir, entry));
        removed++;
      }
    }
    removed += sweepLocks(this.locksDir);
    for (const entry of readdirSync(this.infoDir)) {
      const tmp = /^\.tmp-(\d+_\d+)-/.exec(entry);
      if (tmp) {
        if (!isAlive(tmp[1]!)) removed += rmIfExists(join(this.infoDir, entry));
        continue;
      }
      if (!entry.endsWith('.json')) continue;
      const base = entry.slice(0, -5);
      if (lexists(join(this.dir, base))) continue;
      const lock = tryLockSync(this.lockPath(base));
      if (!lock) continue; // being built right now
      try {
        if (!lexists(join(this.dir, base))) removed += rmIfExists(join(this.infoDir, entry));
      } finally {
        lock.release();
      }
    }
    for (const entry of readdirSync(this.tempRootsDir)) {
      if (!isAlive(entry)) removed += rmIfExists(join(this.tempRootsDir, entry));
    }
    return removed;
  }

  /** Locks a store path for deletion without waiting; undefined if a live process holds it. */
  tryLockPath(base: string): { release(): void } | undefined {
    return tryLockSync(this.lockPath(base));
  }

  /** Deletes one store object: metadata first (so it is invalid from then on), then the entry. */
  deletePath(base: string): void {
    rmIfExists(this.infoPath(base));
    fsyncDir(this.infoDir);
    const final = join(this.dir, base);
    if (lexists(final)) this.trash(final);
  }

  /** Reads the temp-root files of live processes and the paths live processes hold locks on. */
  liveTempRoots(): Set<string> {
    const roots = new Set<string>();
    for (const entry of readdirSync(this.tempRootsDir)) {
      if (!isAlive(entry)) continue;
      let text = '';
      try {
        text = readFileSync(join(this.tempRootsDir, entry), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) if (line) roots.add(line);
    }
    for (const entry of readdirSync(this.locksDir)) {
      if (entry.endsWith('.lock') && lockHolder(join(this.locksDir, entry))) roots.add(`${LOGICAL_STORE}/${entry.slice(0, -5)}`);
    }
    return roots;
  }
}

/**
 * Orders paths so that each comes after those of its references that are among them (depth first,
 * in name order, so the order is stable): the order in which paths can become valid one by one.
 */
export function referencesFirst(paths: Iterable<string>, referencesOf: (p: string) => string[]): string[] {
  const among = new Set(paths);
  const order: string[] = [];
  const visited = new Set<string>();
  const visit = (p: string): void => {
    if (visited.has(p)) return;
    visited.add(p);
    for (const r of referencesOf(p)) if (among.has(r) && r !== p) visit(r);
    order.push(p);
  };
  for (const p of [...among].sort()) visit(p);
  return order;
}

/**
 * A metadata file's PathInfo, or what is wrong with it. Files are written atomically, so damage
 * comes from outside: a disk that lost data, a file system repaired after a crash, an editor.
 */
function parseInfo(text: string): PathInfo | string {
  let info: PathInfo;
  try {
    info = JSON.parse(text) as PathInfo;
  } catch (err) {
    return text.trim() === '' ? 'empty' : `not JSON (${(err as Error).message})`;
  }
  if (typeof info !== 'object' || info === null || typeof info.path !== 'string' || typeof info.narHash !== 'string' || typeof info.narSize !== 'number' || !Array.isArray(info.references)) {
    return 'not store path metadata (path, narHash, narSize or references missing)';
  }
  return info;
}

function rmIfExists(p: string): number {
  try {
    unlinkSync(p);
    return 1;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Creates or atomically replaces a symlink. */
function replaceSymlink(link: string, target: string): void {
  mkdirSync(dirname(link), { recursive: true });
  const tmp = `${link}.tmp-${processToken()}-${randomBytes(4).toString('hex')}`;
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}
