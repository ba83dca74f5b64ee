/**
 * The package universe: every binary package version of the configured repositories, with the
 * lookups the resolver needs (versions by name, providers of virtual names).
 */
import { CairnError } from '../errors.js';
import { parseRelations, parseRelation, type Relation, type RelationGroup } from './control.js';
import { compareVersions } from './version.js';
import type { Repository } from './sources.js';
import { fetchRelease, fetchPackagesIndex, type Release } from './archive.js';
import { debianCacheDir } from './cache.js';

/** One binary package version as a Packages index describes it. */
export interface PackageRecord {
  name: string;
  version: string;
  architecture: string;
  multiArch: string;
  essential: boolean;
  priority: string;
  /** Archive path, e.g. `pool/main/s/systemd/systemd_252….deb`. */
  filename: string;
  sha256: string;
  size: number;
  /** The suite (repository) it came from. */
  suite: string;
  /** Index of its repository in the list given to {@link loadUniverse}. */
  repo: number;
  /** Raw relationship fields; parsed on first use by {@link relations}. */
  raw: Partial<Record<RelationField, string>>;
  parsed?: Partial<Record<RelationField, RelationGroup[]>>;
}

export type RelationField = 'Pre-Depends' | 'Depends' | 'Recommends' | 'Provides' | 'Conflicts' | 'Breaks';
const RELATION_FIELDS: RelationField[] = ['Pre-Depends', 'Depends', 'Recommends', 'Provides', 'Conflicts', 'Breaks'];

/** A relationship field of a package, parsed once and memoised (most of the ~60 000 are never read). */
export function relations(p: PackageRecord, f: RelationField): RelationGroup[] {
  p.parsed ??= {};
  let r = p.parsed[f];
  if (!r) {
    try {
      r = parseRelations(p.raw[f]);
    } catch (err) {
      throw new CairnError(`package ${p.name} ${p.version}: bad ${f} field: ${(err as Error).message}`);
    }
    p.parsed[f] = r;
  }
  return r;
}

/**
 * Parses a Packages index quickly: a line scanner that keeps only the fields cairn uses
 * (Descriptions and the like make up most of the 50 MB and are skipped).
 */
export function parsePackagesIndex(text: string, suite: string, repo: number): PackageRecord[] {
  const out: PackageRecord[] = [];
  let cur: Record<string, string> = {};
  let has = false;
  const flush = (): void => {
    if (!has) return;
    const name = cur.Package;
    if (name && cur.Version && cur.Filename && cur.SHA256) {
      const raw: Partial<Record<RelationField, string>> = {};
      for (const f of RELATION_FIELDS) if (cur[f]) raw[f] = cur[f];
      out.push({
        name,
        version: cur.Version,
        architecture: cur.Architecture ?? 'all',
        multiArch: cur['Multi-Arch'] ?? 'no',
        essential: cur.Essential === 'yes',
        priority: cur.Priority ?? 'optional',
        filename: cur.Filename,
        sha256: cur.SHA256.toLowerCase(),
        size: Number(cur.Size ?? 0),
        suite,
        repo,
        raw,
      });
    }
    cur = {};
    has = false;
  };
  let pos = 0;
  const len = text.length;
  while (pos < len) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    const c = text.charCodeAt(pos);
    if (end === pos) flush();
    else if (c !== 32 && c !== 9) {
      const colon = text.indexOf(':', pos);
      if (colon > 0 && colon < end) {
        const key = text.slice(pos, colon);
        if (WANTED.has(key)) {
          cur[key] = text.slice(colon + 1, end).trim();
          has = true;
        }
      }
    }
    pos = end + 1;
  }
  flush();
  return out;
}

const WANTED = new Set(['Package', 'Version', 'Architecture', 'Multi-Arch', 'Essential', 'Priority', 'Filename', 'SHA256', 'Size', ...RELATION_FIELDS]);

/** A virtual name provided by a package, maybe with a version (`Provides: foo (= 1.2)`). */
export interface Provider {
  pkg: PackageRecord;
  version?: string;
}

/** All packages of the configured repositories, indexed for resolution. */
export class Universe {
  readonly byName = new Map<string, PackageRecord[]>();
  readonly providers = new Map<string, Provider[]>();
  constructor(readonly repositories: Repository[], readonly releases: Release[], packages: Iterable<PackageRecord>) {
    for (const p of packages) {
      const list = this.byName.get(p.name);
      if (list) list.push(p);
      else this.byName.set(p.name, [p]);
    }
    // Highest version first, so index 0 is apt's candidate for equal-priority archives.
    for (const list of this.byName.values()) list.sort((a, b) => compareVersions(b.version, a.version));
    // Providers are indexed from each name's versions; only the candidate's Provides count for apt's choices.
    for (const list of this.byName.values()) {
      for (const p of list) {
        if (!p.raw.Provides) continue;
        for (const g of relations(p, 'Provides')) {
          for (const r of g) {
            const provs = this.providers.get(r.name);
            const entry: Provider = r.version !== undefined ? { pkg: p, version: r.version } : { pkg: p };
            if (provs) provs.push(entry);
            else this.providers.set(r.name, [entry]);
          }
        }
      }
    }
  }

  /** Every version of a real package, highest first (empty if none). */
  versions(name: string): PackageRecord[] {
    return this.byName.get(name) ?? [];
  }
}

/** A relation as written in a Provides field (used by tests and the lock). */
export function parseProvides(text: string): Relation {
  return parseRelation(text);
}

/**
 * The SHA-256 of every package the repositories' indices list (what a kept resolution is checked
 * against): a scan for the one field, a sixth of parsePackagesIndex's time (50 against 300 ms for
 * trixie's main).
 */
export async function indexHashes(repos: Repository[], releases: Release[], cacheDir = debianCacheDir()): Promise<Set<string>> {
  const out = new Set<string>();
  const texts = await Promise.all(repos.flatMap((repo, i) => repo.components.map((c) => fetchPackagesIndex(repo, releases[i]!, c, cacheDir))));
  for (const text of texts) {
    for (let at = text.indexOf('\nSHA256:'); at >= 0; at = text.indexOf('\nSHA256:', at + 1)) {
      const end = text.indexOf('\n', at + 1);
      out.add(text.slice(at + 8, end < 0 ? text.length : end).trim().toLowerCase());
    }
  }
  return out;
}

/**
 * Fetches, verifies and parses the indices of all repositories (in parallel).
 * The order of `repos` is kept: it is the order apt would list them in. `releases`: the
 * repositories' Releases when the caller has fetched them already.
 */
export async function loadUniverse(repos: Repository[], opts: { cacheDir?: string; now?: Date; releases?: Release[] } = {}): Promise<Universe> {
  const cacheDir = opts.cacheDir ?? debianCacheDir();
  const loaded = await Promise.all(repos.map(async (repo, i) => {
    const release = opts.releases?.[i] ?? (await fetchRelease(repo, { cacheDir, now: opts.now }));
    const texts = await Promise.all(repo.components.map((c) => fetchPackagesIndex(repo, release, c, cacheDir)));
    const pkgs = texts.flatMap((t) => parsePackagesIndex(t, repo.suite, i))
      .filter((p) => p.architecture === repo.architecture || p.architecture === 'all');
    return { release, pkgs };
  }));
  return new Universe(repos, loaded.map((l) => l.release), loaded.flatMap((l) => l.pkgs));
}
