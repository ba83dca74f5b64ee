/**
 * The `buildenv` builder: merges package store paths into one tree (a system's `sw`).
 *
 * Files are hard links to the inputs' files rather than symlinks, because Debian programs locate
 * their data through the real path of their executable (Python finds its prefix that way); a hard
 * link has no other real path. Directories are created, symlinks are copied as they are.
 */
import { closeSync, copyFileSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../errors.js';
import { registerBuilder, type SetuidEntry } from './builders.js';
import { nameOf, splitName } from './storepath.js';
import type { Derivation } from './derivation.js';

/** Arguments of a `buildenv` derivation. */
export interface BuildEnvArgs {
  /** Store paths to merge, in order; default: the derivation's inputs. */
  paths?: string[];
  /** Relative paths (`usr/share/info/dir`) that may differ between inputs: the first input (or the one of best priority) wins. */
  allowConflicts?: string[];
  /**
   * Priority by store path, store name, or package name (the store name without its version);
   * a lower number wins a conflict, as Nix's meta.priority. Default 5.
   */
  priority?: Record<string, number>;
}

/** The derivation of an environment merging `paths`. */
export function buildEnv(name: string, paths: string[], opts: Omit<BuildEnvArgs, 'paths'> = {}): Derivation {
  const args: BuildEnvArgs = {};
  if (opts.allowConflicts?.length) args.allowConflicts = [...opts.allowConflicts].sort();
  if (opts.priority && Object.keys(opts.priority).length > 0) args.priority = opts.priority;
  return { name, builder: 'buildenv', args, inputs: paths };
}

type Node =
  | { kind: 'dir'; owner: string; prio: number }
  | { kind: 'file'; owner: string; prio: number; src: string; size: number; exec: boolean; ino: string }
  | { kind: 'link'; owner: string; prio: number; target: string };

const DEFAULT_PRIORITY = 5;

/** Are two plain files byte-for-byte equal (and equally executable)? */
function sameFile(a: Extract<Node, { kind: 'file' }>, b: Extract<Node, { kind: 'file' }>): boolean {
  if (a.ino === b.ino) return true;
  if (a.size !== b.size || a.exec !== b.exec) return false;
  const fa = openSync(a.src, 'r');
  const fb = openSync(b.src, 'r');
  try {
    const ba = Buffer.allocUnsafe(1 << 16);
    const bb = Buffer.allocUnsafe(1 << 16);
    for (;;) {
      const na = readSync(fa, ba, 0, ba.length, null);
      const nb = readSync(fb, bb, 0, bb.length, null);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (ba.compare(bb, 0, nb, 0, na) !== 0) return false;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

function identical(a: Node, b: Node): boolean {
  if (a.kind === 'file' && b.kind === 'file') return sameFile(a, b);
  if (a.kind === 'link' && b.kind === 'link') return a.target === b.target;
  return a.kind === 'dir' && b.kind === 'dir';
}

registerBuilder('buildenv', async (ctx) => {
  const args = (ctx.drv.args ?? {}) as BuildEnvArgs;
  const paths = args.paths ?? ctx.drv.inputs;
  const declared = new Set(ctx.drv.inputs.map((p) => ctx.store.toLogical(p)));
  for (const p of paths) {
    // Undeclared paths would be neither checked for validity nor protected from GC during the build.
    if (!declared.has(ctx.store.toLogical(p))) throw new CairnError(`buildenv ${ctx.drv.name}: ${p} is in args.paths but not in the derivation's inputs`);
  }
  const allowed = new Set(args.allowConflicts ?? []);
  const prioOf = (storePath: string): number => {
    const name = nameOf(storePath);
    return args.priority?.[storePath] ?? args.priority?.[name] ?? args.priority?.[splitName(name).pname] ?? DEFAULT_PRIORITY;
  };

  const plan = new Map<string, Node>();
  const dropSubtree = (rel: string): void => {
    for (const k of [...plan.keys()]) if (k.startsWith(rel + '/')) plan.delete(k);
  };

  for (const input of paths) {
    const logical = ctx.store.toLogical(input);
    const root = ctx.store.toPhysical(logical);
    if (!lstatSync(root).isDirectory()) throw new CairnError(`buildenv ${ctx.drv.name}: ${logical} is not a directory`);
    const prio = prioOf(logical);
    const walk = (dir: string, relDir: string): void => {
      for (const name of readdirSync(dir).sort()) {
        if (relDir === '' && name === '.cairn') continue; // package metadata, not part of the merged tree
        const src = join(dir, name);
        const rel = relDir === '' ? name : `${relDir}/${name}`;
        const st = lstatSync(src);
        const node: Node = st.isDirectory()
          ? { kind: 'dir', owner: logical, prio }
          : st.isSymbolicLink()
            ? { kind: 'link', owner: logical, prio, target: readlinkSync(src) }
            : { kind: 'file', owner: logical, prio, src, size: st.size, exec: (st.mode & 0o111) !== 0, ino: `${st.dev}:${st.ino}` };
        const prev = plan.get(rel);
        let descend = node.kind === 'dir';
        if (!prev) {
          plan.set(rel, node);
        } else if (!identical(prev, node)) {
          if (node.prio < prev.prio) {
            if (prev.kind === 'dir' && node.kind !== 'dir') dropSubtree(rel);
            plan.set(rel, node);
          } else if (node.prio > prev.prio || allowed.has(rel)) {
            descend = false; // the earlier entry stays
          } else {
            throw new CairnError(
              `buildenv ${ctx.drv.name}: ${rel} differs between ${prev.owner} and ${logical}; ` +
                `list it in allowConflicts or give one of the packages a priority`,
            );
          }
        }
        if (descend && plan.get(rel)?.kind === 'dir') walk(src, rel);
      }
    };
    walk(root, '');
  }

  mkdirSync(ctx.out);
  const rels = [...plan.keys()].sort(); // a parent sorts before its children
  for (const rel of rels) {
    const node = plan.get(rel)!;
    const dest = join(ctx.out, rel);
    if (node.kind === 'dir') mkdirSync(dest);
    else if (node.kind === 'link') symlinkSync(node.target, dest);
    else {
      try {
        linkSync(node.src, dest);
      } catch (err) {
        // An inode has a link limit (65000 on ext4); past it, a copy is just as correct.
        if ((err as NodeJS.ErrnoException).code !== 'EMLINK') throw err;
        copyFileSync(node.src, dest);
      }
    }
  }

  // Naming the inputs keeps them in the closure, so closures (and diff-closures) list the packages.
  mkdirSync(join(ctx.out, '.cairn'), { recursive: true });
  writeFileSync(join(ctx.out, '.cairn', 'buildenv.json'), JSON.stringify({ paths: paths.map((p) => ctx.store.toLogical(p)) }, null, 1) + '\n');

  // Setuid files of the inputs stay setuid where they appear in the environment.
  const setuid: SetuidEntry[] = [];
  for (const input of paths) {
    for (const e of ctx.store.pathInfo(input).setuid ?? []) {
      const node = plan.get(e.path);
      if (node?.kind === 'file' && node.owner === ctx.store.toLogical(input)) setuid.push(e);
    }
  }
  ctx.log(`buildenv ${ctx.drv.name}: ${rels.length} entries from ${paths.length} paths`);
  return setuid.length > 0 ? { setuid } : undefined;
});
