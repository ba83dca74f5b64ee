/**
 * Maintainer-script duties done declaratively: what the packages' postinst scripts would have
 * left on a Debian system, computed from what they ship and from the duties the .deb builder
 * recorded (`.cairn/deb/duties.json`). Nothing here runs a package's script.
 *
 * The result is one layer of the system environment (`sw`): alternative links under usr/ and
 * the PAM `common-*` files under etc/ (which reach /etc through the etc derivation).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type { AlternativeDuty, Duties } from '../debian/scripts.js';
import { mergedPath } from '../debian/deb.js';
import { lexists, registerBuilder, type Derivation, type Store } from '../store/index.js';
import { parsePamProfile, pamCommonFiles } from './pam.js';
import type { TreeEntry } from './tree.js';

/** A package as the build sees it: its name and logical store path. */
export interface BuiltPackage {
  name: string;
  storePath: string;
}

/** The alternative chosen for one name, with the links it makes. */
export interface ChosenAlternative {
  name: string;
  path: string;
  priority: number;
  /** Link (absolute path on the system) → target, master first. */
  links: [string, string][];
}

/** Reads the duties the .deb builder recorded for a package (empty when it recorded none). */
export function readDuties(store: Store, storePath: string): Duties | undefined {
  const file = join(store.toPhysical(storePath), '.cairn', 'deb', 'duties.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as Duties;
}

/**
 * Chooses among the registered alternatives as `update-alternatives --auto` does: the highest
 * priority whose path some package ships; equal priorities go to the smaller path, so the choice
 * never depends on the order packages are listed in. A slave link is made only when its path
 * exists (dpkg removes slaves whose target is missing).
 */
export function chooseAlternatives(store: Store, pkgs: BuiltPackage[]): ChosenAlternative[] {
  const roots = pkgs.map((p) => store.toPhysical(p.storePath));
  const shipped = (abs: string): boolean => roots.some((r) => lexists(join(r, mergedPath(abs.replace(/^\/+/, '')))));
  const byName = new Map<string, AlternativeDuty[]>();
  for (const p of pkgs) {
    for (const alt of readDuties(store, p.storePath)?.alternatives ?? []) {
      if (!Number.isFinite(alt.priority) || !alt.link.startsWith('/') || !alt.path.startsWith('/')) continue;
      const list = byName.get(alt.name) ?? [];
      list.push(alt);
      byName.set(alt.name, list);
    }
  }
  const chosen: ChosenAlternative[] = [];
  for (const name of [...byName.keys()].sort()) {
    const best = byName
      .get(name)!
      .filter((a) => shipped(a.path))
      .sort((a, b) => b.priority - a.priority || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))[0];
    if (!best) continue;
    const links: [string, string][] = [[best.link, best.path]];
    for (const s of best.slaves) if (s.link.startsWith('/') && s.path.startsWith('/') && shipped(s.path)) links.push([s.link, s.path]);
    chosen.push({ name, path: best.path, priority: best.priority, links });
  }
  return chosen;
}

/**
 * The tree entries of the duties layer. Alternative links inside the same top folder are
 * relative (`usr/bin/awk` → `mawk`), so they resolve in the merged tree itself; links outside
 * usr/ and etc/ have no place in a generated tree and are left out.
 */
export function dutiesLayer(store: Store, pkgs: BuiltPackage[]): { entries: Record<string, TreeEntry>; alternatives: ChosenAlternative[] } {
  const entries: Record<string, TreeEntry> = {};
  const alternatives = chooseAlternatives(store, pkgs);
  for (const alt of alternatives) {
    for (const [link, target] of alt.links) {
      const rel = mergedPath(link.replace(/^\/+/, ''));
      const top = rel.split('/', 1)[0];
      if (top !== 'usr' && top !== 'etc') continue;
      const tgt = mergedPath(target.replace(/^\/+/, ''));
      const sameTop = tgt.split('/', 1)[0] === top;
      entries[rel] = { link: sameTop ? posix.relative(posix.dirname(rel), tgt) : `/${tgt}` };
    }
  }
  // pam-auth-update's output, from every package's profiles (libpam-runtime's postinst would make it).
  const profiles = [];
  for (const p of pkgs) {
    const dir = join(store.toPhysical(p.storePath), 'usr', 'share', 'pam-configs');
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) profiles.push(parsePamProfile(f, readFileSync(join(dir, f), 'utf8')));
  }
  if (profiles.length > 0) {
    for (const [file, text] of Object.entries(pamCommonFiles(profiles))) entries[`etc/pam.d/${file}`] = { text };
  }
  return { entries, alternatives };
}

/**
 * The duties layer as a derivation over the packages: it is computed when built, so a rebuild
 * with the same packages finds it valid and reads nothing. The chosen alternatives are kept in
 * `.cairn/alternatives.json` (buildenv leaves `.cairn/` out of the merged tree).
 */
export function dutiesDerivation(pkgs: BuiltPackage[]): Derivation {
  const sorted = [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { name: 'system-duties', builder: 'cairn:duties', args: { packages: sorted }, inputs: sorted.map((p) => p.storePath) };
}

/** The alternatives a built duties layer chose. */
export function readAlternatives(store: Store, layer: string): ChosenAlternative[] {
  return JSON.parse(readFileSync(join(store.toPhysical(layer), '.cairn', 'alternatives.json'), 'utf8')) as ChosenAlternative[];
}

registerBuilder('cairn:duties', async (ctx) => {
  const { packages } = ctx.drv.args as { packages: BuiltPackage[] };
  const { entries, alternatives } = dutiesLayer(ctx.store, packages);
  mkdirSync(ctx.out);
  for (const rel of Object.keys(entries).sort()) {
    const e = entries[rel]!;
    const dest = join(ctx.out, rel);
    mkdirSync(dirname(dest), { recursive: true });
    if ('link' in e) symlinkSync(e.link, dest);
    else writeFileSync(dest, e.text, { mode: e.executable ? 0o755 : 0o644 });
  }
  mkdirSync(join(ctx.out, '.cairn'));
  writeFileSync(join(ctx.out, '.cairn', 'alternatives.json'), JSON.stringify(alternatives, null, 1) + '\n');
});
