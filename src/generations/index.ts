/**
 * Generations: a profile is a folder of links `system-N-link` → toplevel, and `system` →
 * the current `system-N-link`. A new generation is a new link and one rename of `system`, so a
 * reader (or a crash) sees the old profile or the new one. Links under the store's `profiles/`
 * are GC roots. Also the comparison of two generations: packages, units, /etc, kernel, size.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, lutimesSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { SYSTEM_PROFILE, onCairnSystem } from '../paths.js';
import { fsyncDir } from '../store/fsutil.js';
import type { Store } from '../store/index.js';
import { configurationHash as recordedConfigurationHash, readBootspec, type Bootspec } from '../toplevel/index.js';

export interface Generation {
  number: number;
  /** Logical store path of the toplevel. */
  toplevel: string;
  /** When the generation was made (its link's time), seconds since the epoch. */
  date: number;
  current: boolean;
  label: string;
  kernelVersion: string | null;
  /** sha256 of the toplevel's configuration record. */
  configurationHash: string;
}

const LINK = /^(.+)-(\d+)-link$/;

/** A toplevel's bootspec, or null for one that cannot boot (no kernel): it still lists and compares. */
function bootspecIfAny(store: Store, toplevel: string): Bootspec | null {
  try {
    return readBootspec(store, toplevel);
  } catch {
    return null;
  }
}

/** The profile's folder and name from a path such as `~/.local/share/cairn/profiles/system`. */
function split(profile: string): { dir: string; name: string } {
  const p = resolve(profile);
  return { dir: resolve(p, '..'), name: p.slice(p.lastIndexOf('/') + 1) };
}

/** The generations of a profile, oldest first. */
export function listGenerations(store: Store, profile: string): Generation[] {
  const { dir, name } = split(profile);
  if (!existsSync(dir)) return [];
  let current: string | undefined;
  try {
    current = readlinkSync(join(dir, name));
  } catch {
    current = undefined;
  }
  const gens: Generation[] = [];
  for (const entry of readdirSync(dir)) {
    const m = LINK.exec(entry);
    if (!m || m[1] !== name) continue;
    const link = join(dir, entry);
    const toplevel = store.resolve(link);
    const spec = bootspecIfAny(store, toplevel);
    // '' for a toplevel not built by cairn.
    const configurationHash = recordedConfigurationHash(store, toplevel) ?? '';
    gens.push({
      number: Number(m[2]),
      toplevel,
      date: Math.floor(lstatSync(link).mtimeMs / 1000),
      current: entry === current,
      label: spec?.label ?? toplevel,
      kernelVersion: spec?.kernelVersion ?? null,
      configurationHash,
    });
  }
  return gens.sort((a, b) => a.number - b.number);
}

/** Replaces a link in one rename (temporary name in the same folder, then rename, then fsync the folder). */
function setLink(dir: string, name: string, target: string): void {
  const tmp = join(dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  symlinkSync(target, tmp);
  renameSync(tmp, join(dir, name));
  fsyncDir(dir);
}

/**
 * Makes `toplevel` the profile's current generation: a new `name-N-link` unless the newest
 * generation is that toplevel already. Returns the generation's number. Links name the physical
 * path, so they resolve on this machine (and keep the path alive for GC); `logical` links name
 * the path as the machine sees it, for the profile of a root another machine boots (--root).
 */
export function addGeneration(store: Store, profile: string, toplevel: string, opts: { logical?: boolean } = {}): number {
  const { dir, name } = split(profile);
  mkdirSync(dir, { recursive: true });
  const top = store.parse(toplevel).logical;
  if (!store.isValid(top)) throw new CairnError(`${top} is not a valid store path`);
  const gens = listGenerations(store, profile);
  const newest = gens[gens.length - 1];
  let n: number;
  if (newest && newest.toplevel === top) n = newest.number;
  else {
    n = (newest?.number ?? 0) + 1;
    setLink(dir, `${name}-${n}-link`, opts.logical ? top : store.toPhysical(top));
  }
  setLink(dir, name, `${name}-${n}-link`);
  return n;
}

/** Points the profile at an existing generation (a rollback), in one rename. */
export function setCurrentGeneration(store: Store, profile: string, n: number): void {
  const { dir, name } = split(profile);
  if (!listGenerations(store, profile).some((g) => g.number === n)) throw new CairnError(`${profile} has no generation ${n}`);
  setLink(dir, name, `${name}-${n}-link`);
}

export interface DeleteSelection {
  numbers?: number[];
  /** Delete generations made more than this many seconds ago. */
  olderThanSeconds?: number;
  /** Keep only the newest N. */
  keep?: number;
}

/** Which of a profile's generations a selection deletes (never the current one), ascending. */
export function selectGenerations(gens: Pick<Generation, 'number' | 'date' | 'current'>[], profile: string, sel: DeleteSelection, now = Date.now() / 1000): number[] {
  const doomed = new Set<number>();
  for (const n of sel.numbers ?? []) {
    const g = gens.find((x) => x.number === n);
    if (!g) throw new CairnError(`${profile} has no generation ${n}`);
    if (g.current) throw new CairnError(`generation ${n} is the current one; switch to another first`);
    doomed.add(n);
  }
  if (sel.olderThanSeconds !== undefined) for (const g of gens) if (now - g.date > sel.olderThanSeconds && !g.current) doomed.add(g.number);
  if (sel.keep !== undefined) for (const g of gens.slice(0, Math.max(0, gens.length - sel.keep))) if (!g.current) doomed.add(g.number);
  return [...doomed].sort((a, b) => a - b);
}

/** Deletes generations (never the current one); returns the numbers deleted. `store gc` then reclaims their paths. */
export function deleteGenerations(store: Store, profile: string, sel: DeleteSelection, now = Date.now() / 1000): number[] {
  const { dir, name } = split(profile);
  const doomed = selectGenerations(listGenerations(store, profile), profile, sel, now);
  for (const n of doomed) rmSync(join(dir, `${name}-${n}-link`), { force: true });
  if (doomed.length) fsyncDir(dir);
  return doomed;
}

/** `30d`, `12h`, `90m`, `45s` → seconds. */
export function parseAge(text: string): number {
  const m = /^(\d+)([dhms])$/.exec(text);
  if (!m) throw new CairnError(`--older-than ${text}: expected a number and d, h, m or s (e.g. 30d)`);
  return Number(m[1]) * { d: 86400, h: 3600, m: 60, s: 1 }[m[2] as 'd' | 'h' | 'm' | 's'];
}

export interface GenerationDiff {
  packages: { name: string; before: string | null; after: string | null }[];
  units: { unit: string; change: 'added' | 'removed' | 'changed' }[];
  etc: { path: string; change: 'added' | 'removed' | 'changed' }[];
  kernel: { before: string | null; after: string | null } | null;
  kernelParams: { before: string[]; after: string[] } | null;
  closureBytes: { before: number; after: number };
}

/** Debian packages of a closure: name → version (from each package's record in the store). */
function packagesOf(store: Store, toplevel: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of store.closure([toplevel])) {
    const duties = join(store.toPhysical(p), '.cairn', 'deb', 'duties.json');
    if (!existsSync(duties)) continue;
    const d = JSON.parse(readFileSync(duties, 'utf8')) as { package: string; version: string };
    out.set(d.package, d.version);
  }
  return out;
}

/** Files of a generation's /etc (relative path → what it is: a link target or the content's hash). */
function etcOf(store: Store, toplevel: string): Map<string, string> {
  const out = new Map<string, string>();
  const root = store.realFile(`${toplevel}/etc`);
  const walk = (dir: string, rel: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full, r);
      else if (e.isSymbolicLink()) {
        const target = readlinkSync(full);
        // Links into the store stand for their content (the path changes with unrelated inputs).
        let what = `link:${target}`;
        try {
          if (target.startsWith('/cairn/store/')) what = `file:${createHash('sha256').update(readFileSync(store.realFile(target))).digest('hex')}`;
        } catch {
          // a link to a folder or a missing file: compare the target
        }
        out.set(r, what);
      } else out.set(r, `file:${createHash('sha256').update(readFileSync(full)).digest('hex')}`);
    }
  };
  walk(root, '');
  return out;
}

function changes<T extends string>(a: Map<string, string>, b: Map<string, string>, key: T): ({ change: 'added' | 'removed' | 'changed' } & Record<T, string>)[] {
  const out: ({ change: 'added' | 'removed' | 'changed' } & Record<T, string>)[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const change = !a.has(k) ? 'added' : !b.has(k) ? 'removed' : a.get(k) !== b.get(k) ? 'changed' : undefined;
    if (change) out.push({ change, [key]: k } as { change: 'added' | 'removed' | 'changed' } & Record<T, string>);
  }
  return out;
}

/** What changed from generation `a` to `b` (toplevels). */
export function diffGenerations(store: Store, a: string, b: string): GenerationDiff {
  const pa = packagesOf(store, a);
  const pb = packagesOf(store, b);
  const packages = [...new Set([...pa.keys(), ...pb.keys()])]
    .sort()
    .filter((n) => pa.get(n) !== pb.get(n))
    .map((name) => ({ name, before: pa.get(name) ?? null, after: pb.get(name) ?? null }));
  const ea = etcOf(store, a);
  const eb = etcOf(store, b);
  const unitsOf = (m: Map<string, string>): Map<string, string> => {
    // A unit with its drop-ins: one entry per unit name, its files' states joined.
    const u = new Map<string, string>();
    for (const [k, v] of [...m].sort()) {
      const mm = /^systemd\/system\/([^/]+?)(?:\.d)?(?:\/(.+))?$/.exec(k);
      if (!mm || mm[1]!.endsWith('.wants') || mm[1]!.endsWith('.requires')) continue;
      u.set(mm[1]!, `${u.get(mm[1]!) ?? ''}${mm[2] ?? ''}=${v};`);
    }
    return u;
  };
  const sa = bootspecIfAny(store, a);
  const sb = bootspecIfAny(store, b);
  const size = (t: string): number => store.closure([t]).reduce((n, p) => n + store.pathInfo(p).narSize, 0);
  const ka = sa?.kernelVersion ?? null;
  const kb = sb?.kernelVersion ?? null;
  const pka = sa?.kernelParams ?? [];
  const pkb = sb?.kernelParams ?? [];
  return {
    packages,
    units: changes(unitsOf(ea), unitsOf(eb), 'unit'),
    etc: changes(ea, eb, 'path'),
    kernel: ka !== kb ? { before: ka, after: kb } : null,
    kernelParams: pka.join(' ') !== pkb.join(' ') ? { before: pka, after: pkb } : null,
    closureBytes: { before: size(a), after: size(b) },
  };
}

/** Marks a generation's date (tests and imports of existing toplevels). */
export function setGenerationDate(profile: string, n: number, seconds: number): void {
  const { dir, name } = split(profile);
  lutimesSync(join(dir, `${name}-${n}-link`), seconds, seconds);
}

/**
 * After a system profile changed without a switch (generations deleted, or made current): its
 * current generation's `bin/install-bootloader` rewrites the boot entries, so the ESP lists exactly
 * the profile's generations and frees their kernels. It runs here for this cairn system's profile,
 * or through `runIn` (given the script as the machine names it) for another machine's, e.g. a
 * mounted root's; other profiles (a build host's) have no boot entries: nothing to do.
 */
export async function updateBootEntries(store: Store, profile: string, runIn?: (argv: string[]) => Promise<number>): Promise<void> {
  if (!runIn && (resolve(profile) !== SYSTEM_PROFILE || !onCairnSystem())) return;
  const current = listGenerations(store, profile).find((g) => g.current);
  const script = current && `${current.toplevel}/bin/install-bootloader`;
  if (!script || !existsSync(store.toPhysical(script))) return;
  const code = runIn ? await runIn([script]) : ((await execa(store.toPhysical(script), [], { stdio: 'inherit', reject: false })).exitCode ?? 1);
  if (code !== 0) throw new CairnError(`the boot entries could not be rewritten (${script} exited ${code})`);
}
