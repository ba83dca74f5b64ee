/**
 * Dependency resolution: the closure of the requested packages over Pre-Depends and Depends
 * (and Recommends when asked), choosing what apt would choose for a fresh, empty system:
 * candidate = highest version across the configured suites (apt's default pin for
 * equal-priority archives), dependencies handled depth-first in field order, alternatives tried
 * left to right, and among several providers of a virtual name the one apt ranks first.
 * Written in TypeScript so it runs fast and offline; tests hold it against apt itself.
 */
import { CairnError } from '../errors.js';
import { formatGroup, formatRelation, type Relation, type RelationGroup } from './control.js';
import { relations, type PackageRecord, type Universe, type RelationField } from './packages.js';
import { satisfiesVersion } from './version.js';

export interface ResolveOptions {
  /** Follow Recommends as apt does by default (cairn's default: no, like debootstrap/mkosi). */
  installRecommends?: boolean;
  /** Versions to keep when still available (from a lock file); others use the candidate. */
  prefer?: Map<string, string>;
  /** Names that ignore `prefer` (moved to their newest candidate by `lock --update`). */
  upgrade?: Set<string>;
}

export interface Resolution {
  /** The closure, sorted by name. */
  packages: PackageRecord[];
  /** For each chosen package, the chosen packages that satisfy its dependencies (sorted). */
  depends: Map<string, string[]>;
}

/** apt's ordering of priorities: lower number wins. */
const PRIORITY_RANK: Record<string, number> = { required: 1, important: 2, standard: 3, optional: 4, extra: 5 };

const CRITICAL: RelationField[] = ['Pre-Depends', 'Depends'];

class Resolver {
  private readonly chosen = new Map<string, PackageRecord>();
  /** Who pulled each package in (for error chains). */
  private readonly parent = new Map<string, string>();
  private readonly log: string[] = [];
  private readonly requested = new Set<string>();
  /** Order of first appearance of each name: apt's last tie-break prefers later-created packages. */
  private readonly ids = new Map<string, number>();
  private lastFailure: string | undefined;

  constructor(private readonly u: Universe, private readonly opts: ResolveOptions) {
    let id = 0;
    for (const name of u.byName.keys()) this.ids.set(name, id++);
  }

  /** apt's candidate for a name: the preferred (locked) version if still available, else the highest. */
  candidate(name: string): PackageRecord | undefined {
    const versions = this.u.versions(name);
    const want = this.opts.upgrade?.has(name) ? undefined : this.opts.prefer?.get(name);
    if (want !== undefined) {
      const pinned = versions.find((p) => p.version === want);
      if (pinned) return pinned;
    }
    return versions[0];
  }

  private archOk(rel: Relation, p: PackageRecord, viaProvides: boolean): boolean {
    if (rel.archQualifier === undefined || rel.archQualifier === 'native' || rel.archQualifier === p.architecture) return true;
    if (rel.archQualifier === 'any') return p.multiArch === 'allowed' || (viaProvides && p.multiArch === 'foreign');
    return p.architecture === 'all';
  }

  /** Whether the package itself (not its Provides) satisfies the relation. */
  private matchesReal(rel: Relation, p: PackageRecord): boolean {
    return p.name === rel.name && this.archOk(rel, p, false) && (rel.op === undefined || satisfiesVersion(p.version, rel.op, rel.version!));
  }

  /** Providers of `rel.name` (among the given package versions) whose Provides satisfy the relation. */
  private providers(rel: Relation, accept: (p: PackageRecord) => boolean): PackageRecord[] {
    const out: PackageRecord[] = [];
    for (const prov of this.u.providers.get(rel.name) ?? []) {
      if (!accept(prov.pkg) || !this.archOk(rel, prov.pkg, true)) continue;
      // An unversioned Provides never satisfies a versioned dependency.
      if (rel.op !== undefined && (prov.version === undefined || !satisfiesVersion(prov.version, rel.op, rel.version!))) continue;
      out.push(prov.pkg);
    }
    return out;
  }

  private isChosen = (p: PackageRecord): boolean => this.chosen.get(p.name) === p;
  private isCandidate = (p: PackageRecord): boolean => this.candidate(p.name) === p;

  /** Chosen packages satisfying one alternative. */
  private satisfiersOf(rel: Relation): PackageRecord[] {
    const out: PackageRecord[] = [];
    const real = this.chosen.get(rel.name);
    if (real && this.matchesReal(rel, real)) out.push(real);
    for (const p of this.providers(rel, this.isChosen)) if (!out.includes(p)) out.push(p);
    return out;
  }

  private groupSatisfied(group: RelationGroup): boolean {
    return group.some((rel) => this.satisfiersOf(rel).length > 0);
  }

  /** apt's CompareProviders: protected (requested) first, the real package of that name, essential, priority, then creation order. */
  private compareProviders(target: string): (a: PackageRecord, b: PackageRecord) => number {
    return (a, b) => {
      const ra = this.requested.has(a.name), rb = this.requested.has(b.name);
      if (ra !== rb) return ra ? -1 : 1;
      if ((a.name === target) !== (b.name === target)) return a.name === target ? -1 : 1;
      if (a.essential !== b.essential) return a.essential ? -1 : 1;
      const pa = PRIORITY_RANK[a.priority] ?? 6, pb = PRIORITY_RANK[b.priority] ?? 6;
      if (pa !== pb) return pa - pb;
      return (this.ids.get(b.name) ?? 0) - (this.ids.get(a.name) ?? 0);
    };
  }

  /** Candidate versions that could satisfy an OR-group, in the order apt tries them. */
  private solutions(group: RelationGroup): PackageRecord[] {
    const out: PackageRecord[] = [];
    for (const rel of group) {
      const list: PackageRecord[] = [];
      const c = this.candidate(rel.name);
      if (c && this.matchesReal(rel, c)) list.push(c);
      for (const p of this.providers(rel, this.isCandidate)) if (!list.includes(p)) list.push(p);
      list.sort(this.compareProviders(rel.name));
      for (const p of list) if (!out.includes(p)) out.push(p);
    }
    return out;
  }

  /** Whether every critical dependency could be met by some candidate (apt skips packages that cannot). */
  private satisfiable(p: PackageRecord): boolean {
    for (const f of CRITICAL) {
      for (const group of relations(p, f)) {
        if (this.groupSatisfied(group)) continue;
        if (this.solutions(group).length === 0) {
          this.lastFailure = `${p.name} ${p.version} ${f} ${formatGroup(group)}, which no available version satisfies`;
          return false;
        }
      }
    }
    return true;
  }

  /** A Conflicts/Breaks between `p` and the chosen set, if any. */
  private clash(p: PackageRecord): string | undefined {
    for (const f of ['Conflicts', 'Breaks'] as const) {
      for (const group of relations(p, f)) {
        for (const rel of group) {
          for (const other of this.satisfiersOf(rel)) {
            if (other.name !== p.name) return `${p.name} ${p.version} ${f} ${formatRelation(rel)} (${other.name} ${other.version})`;
          }
        }
      }
    }
    for (const other of this.chosen.values()) {
      for (const f of ['Conflicts', 'Breaks'] as const) {
        for (const group of relations(other, f)) {
          for (const rel of group) {
            if (other.name === p.name) continue;
            if (this.matchesReal(rel, p) || this.providers(rel, (q) => q === p).length > 0) {
              return `${other.name} ${other.version} ${f} ${formatRelation(rel)} (${p.name} ${p.version})`;
            }
          }
        }
      }
    }
    return undefined;
  }

  private rollback(to: number): void {
    while (this.log.length > to) {
      const name = this.log.pop()!;
      this.chosen.delete(name);
      this.parent.delete(name);
    }
  }

  chain(name: string): string {
    const parts = [name];
    for (let n = this.parent.get(name); n !== undefined && parts.length < 50; n = this.parent.get(n)) parts.unshift(n);
    return parts.join(' → ');
  }

  /** Marks a package for installation. */
  mark(p: PackageRecord, parent: string | undefined): void {
    this.chosen.set(p.name, p);
    if (parent !== undefined) this.parent.set(p.name, parent);
    this.log.push(p.name);
  }

  /**
   * Installs a package's dependencies depth-first. Returns false (after undoing its own marks)
   * when a critical dependency cannot be met and `strict` is off; with `strict` it throws.
   */
  installDeps(p: PackageRecord, strict: boolean): boolean {
    const fields: RelationField[] = this.opts.installRecommends ? [...CRITICAL, 'Recommends'] : CRITICAL;
    for (const f of fields) {
      for (const group of relations(p, f)) {
        if (this.groupSatisfied(group)) continue;
        let found = false;
        const reasons: string[] = [];
        for (const s of this.solutions(group)) {
          const mark = this.log.length;
          if (this.tryInstall(s, p.name)) { found = true; break; }
          reasons.push(this.lastFailure ?? `${s.name} ${s.version} is not installable`);
          this.rollback(mark);
        }
        if (found || f === 'Recommends') continue;
        const why = reasons.length > 0 ? reasons.join('; ') : 'no available package satisfies it';
        this.lastFailure = `${p.name} ${p.version} ${f} ${formatGroup(group)}: ${why}`;
        if (strict) throw new CairnError(`cannot satisfy the dependencies of ${this.chain(p.name)}: ${f} ${formatGroup(group)} (${why})`);
        return false;
      }
    }
    return true;
  }

  /** Tries to add a candidate and its dependencies; false if it conflicts or cannot be completed. */
  tryInstall(p: PackageRecord, parent: string): boolean {
    if (this.chosen.get(p.name) === p) return true;
    if (this.chosen.has(p.name)) {
      this.lastFailure = `${p.name} ${p.version} would replace ${this.chosen.get(p.name)!.version} already chosen`;
      return false;
    }
    if (!this.satisfiable(p)) return false;
    const c = this.clash(p);
    if (c !== undefined) { this.lastFailure = c; return false; }
    this.mark(p, parent);
    return this.installDeps(p, false);
  }

  /** The request: mark all named packages first (as apt-get does), then follow their dependencies. */
  run(names: string[]): Resolution {
    const roots: PackageRecord[] = [];
    for (const raw of names) {
      const name = raw.trim().toLowerCase();
      let p = this.candidate(name);
      if (!p) {
        const provs = (this.u.providers.get(name) ?? []).map((x) => x.pkg).filter(this.isCandidate);
        const uniq = [...new Set(provs)];
        if (uniq.length === 1) p = uniq[0]!;
        else if (uniq.length > 1) throw new CairnError(`package ${name} is virtual, provided by ${uniq.map((x) => x.name).sort().join(', ')}: name one of them`);
        else throw new CairnError(`package ${name} is not in the configured repositories (${this.u.repositories.map((r) => r.suite).join(', ')})`);
      }
      this.requested.add(p.name);
      roots.push(p);
    }
    for (const p of roots) {
      const c = this.clash(p);
      if (c !== undefined) throw new CairnError(`the requested packages conflict: ${c}`);
      this.mark(p, undefined);
    }
    for (const p of roots) this.installDeps(p, true);
    this.finalCheck();
    const packages = [...this.chosen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const depends = new Map<string, string[]>();
    for (const p of packages) {
      const fields: RelationField[] = this.opts.installRecommends ? [...CRITICAL, 'Recommends'] : CRITICAL;
      const ds = new Set<string>();
      for (const f of fields) for (const g of relations(p, f)) for (const rel of g) for (const s of this.satisfiersOf(rel)) if (s.name !== p.name) ds.add(s.name);
      depends.set(p.name, [...ds].sort());
    }
    return { packages, depends };
  }

  /** Every Depends met and no Conflicts/Breaks inside the final set, or a clear error with the chains. */
  private finalCheck(): void {
    for (const p of this.chosen.values()) {
      for (const f of CRITICAL) {
        for (const g of relations(p, f)) {
          if (!this.groupSatisfied(g)) throw new CairnError(`unsatisfied dependency: ${this.chain(p.name)} ${f} ${formatGroup(g)}`);
        }
      }
      for (const f of ['Conflicts', 'Breaks'] as const) {
        for (const g of relations(p, f)) {
          for (const rel of g) {
            for (const o of this.satisfiersOf(rel)) {
              if (o.name !== p.name) throw new CairnError(`conflict in the package set: ${this.chain(p.name)} ${f} ${formatRelation(rel)}, but ${this.chain(o.name)} (${o.version}) is chosen`);
            }
          }
        }
      }
    }
  }
}

/** Resolves the closure of `names` in the universe. Throws CairnError naming the chain when impossible. */
export function resolve(universe: Universe, names: string[], opts: ResolveOptions = {}): Resolution {
  return new Resolver(universe, opts).run(names);
}
