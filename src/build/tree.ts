/**
 * The `cairn:tree` builder: a directory of generated files and symlinks, given entirely by the
 * derivation's arguments (so its output path is a function of exactly that content).
 *
 * `@out@` in file texts and link targets becomes the output's own logical path: the toplevel's
 * `activate` and `boot.json` must name the toplevel itself, which is only known once the
 * derivation is complete.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { CairnError } from '../errors.js';
import { registerBuilder, type Derivation } from '../store/index.js';

/** One entry of a tree: a file (text, optionally executable) or a symlink. */
export type TreeEntry = { text: string; executable?: boolean } | { link: string };

/** Arguments of a `cairn:tree` derivation: entries by relative path. */
export interface TreeArgs {
  entries: Record<string, TreeEntry>;
}

/** A derivation building a tree of `entries`; `inputs` are the store paths its texts and links name. */
export function treeDerivation(name: string, entries: Record<string, TreeEntry>, inputs: string[] = []): Derivation {
  for (const rel of Object.keys(entries)) checkRelative(rel, name);
  return { name, builder: 'cairn:tree', args: { entries } satisfies TreeArgs, inputs: [...new Set(inputs)].sort() };
}

/** Refuses absolute paths, `..` and empty components: entries must stay inside the output. */
export function checkRelative(rel: string, what: string | (() => string)): void {
  if (rel === '' || rel.startsWith('/') || rel.split('/').some((c) => c === '' || c === '.' || c === '..') || posix.normalize(rel) !== rel) {
    throw new CairnError(`${typeof what === 'function' ? what() : what}: '${rel}' is not a plain relative path (no leading /, no . or .. components)`);
  }
}

registerBuilder('cairn:tree', async (ctx) => {
  const { entries } = ctx.drv.args as TreeArgs;
  const self = ctx.store.outputPath(ctx.drv);
  const subst = (s: string): string => s.split('@out@').join(self);
  mkdirSync(ctx.out);
  for (const rel of Object.keys(entries).sort()) {
    const e = entries[rel]!;
    const dest = join(ctx.out, rel);
    mkdirSync(dirname(dest), { recursive: true });
    if ('link' in e) symlinkSync(subst(e.link), dest);
    else writeFileSync(dest, subst(e.text), { mode: e.executable ? 0o755 : 0o644 });
  }
});
