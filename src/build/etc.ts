/**
 * The generated /etc of a generation: a store path `<etc>/etc` holding every file the system's
 * /etc links to (through `/etc/static`), plus two lists activation reads:
 *
 *   <etc>/links    one relative path a line: /etc/<path> becomes a link to /etc/static/<path>
 *   <etc>/copies   `mode<TAB>user<TAB>group<TAB>path`: /etc/<path> becomes a real copy
 *                  (mode `direct-symlink`: a link straight into the store, not via /etc/static)
 *   <etc>/link-tree  the links of `links` made already (<path> → /etc/static/<path>), so that
 *                  activation makes the missing ones with one `cp` instead of a process per folder
 *
 * The base is what the packages ship under /etc (as found in `sw`), on top of which come the
 * declared `environment.etc` entries.
 *
 * Packages' tmpfiles.d rules for paths of this /etc are left out (the file's lines again in
 * /etc/tmpfiles.d/, which takes its place, those rules commented out): Debian's systemd makes
 * /etc/mtab and /etc/default/locale links of its own (`L+`), and each boot and activation would
 * otherwise replace the generation's /etc entries with them and back.
 */
import { copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { CairnError } from '../errors.js';
import { lexists, registerBuilder, type Derivation } from '../store/index.js';
import { checkRelative } from './tree.js';
import type { EtcOption } from '../eval/spec.js';

/** A declared /etc entry as the etc builder receives it (contents inline: never a host path). */
export interface EtcEntry {
  /** The attribute name, for messages. */
  name: string;
  target: string;
  /** File contents as text, or base64 for a `source` file (which may be binary). */
  text?: string;
  base64?: string;
  symlink?: string;
  mode: string;
  user: string;
  group: string;
}

/** Files activation owns as real files: declaring them would fight it. */
const RESERVED = new Set(['passwd', 'group', 'shadow', 'gshadow', 'machine-id', 'static', 'subuid', 'subgid', '.cairn-copies', '.cairn-copy-stamps', '.cairn-users']);

/**
 * Turns the evaluated `environment.etc` into builder entries. `source` files are read now, so
 * the derivation depends on their contents and never on where they were on this machine.
 */
export function etcEntries(etc: Record<string, EtcOption>, definedAt: (name: string) => string): EtcEntry[] {
  const byTarget = new Map<string, EtcEntry>();
  for (const name of Object.keys(etc).sort()) {
    const f = etc[name]!;
    if (!f.enable) continue;
    const target = f.target.replace(/^\/+/, '').replace(/^etc\//, '');
    // Only an error needs the definition's location (finding it may read source maps).
    const where = (): string => `environment.etc."${name}" (${definedAt(name)})`;
    checkRelative(target, where);
    // links and copies are line lists with tab-separated fields: nothing may break a line or a field.
    for (const [field, v] of [['target', target], ['mode', f.mode], ['user', f.user], ['group', f.group]] as const) {
      if (/[\x00-\x1f\x7f]/.test(v)) throw new CairnError(`${where()}: the ${field} ${JSON.stringify(v)} holds a control character`);
    }
    if (RESERVED.has(target.split('/', 1)[0]!)) throw new CairnError(`${where()}: /etc/${target} is written by activation and cannot be declared`);
    const e: EtcEntry = { name, target, mode: f.mode, user: f.user, group: f.group };
    if (f.symlink) e.symlink = f.symlink;
    else if (f.source !== null) {
      try {
        e.base64 = readFileSync(f.source).toString('base64');
      } catch (err) {
        throw new CairnError(`${where()}: cannot read source ${f.source}: ${(err as Error).message}`);
      }
    } else e.text = f.text ?? '';
    const prev = byTarget.get(target);
    if (prev) throw new CairnError(`/etc/${target} is declared twice: environment.etc."${prev.name}" and ${where()}`);
    byTarget.set(target, e);
  }
  return [...byTarget.values()];
}

/** Arguments of the `cairn:etc` builder. */
export interface EtcArgs {
  /** A store path whose `etc/` is the base layer (the system environment); null for none. */
  base: string | null;
  entries: EtcEntry[];
  /** Whether the output has `link-tree` (outputs of older builds do not; activation copes). */
  linkTree?: boolean;
  /** Whether packages' tmpfiles.d rules for the generation's /etc paths are overridden (part of the arguments so older outputs are not reused). */
  tmpfilesOverrides?: boolean;
}

/** The etc derivation. */
export function etcDerivation(base: string | null, entries: EtcEntry[]): Derivation {
  return { name: 'etc', builder: 'cairn:etc', args: { base, entries, linkTree: true, tmpfilesOverrides: true } satisfies EtcArgs, inputs: base ? [base] : [] };
}

/**
 * Copies a package's /etc tree: files as hard links (both are immutable store files), symlinks
 * kept, except relative ones leaving etc/ (`os-release` → `../usr/lib/os-release`): seen through
 * /etc/static they would resolve inside the store path, so they become absolute.
 */
function copyBase(src: string, dest: string, rel: string): void {
  for (const name of readdirSync(src).sort()) {
    const s = join(src, name);
    const d = join(dest, name);
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(s);
    if (st.isDirectory()) {
      mkdirSync(d);
      copyBase(s, d, r);
    } else if (st.isSymbolicLink()) {
      let target = readlinkSync(s);
      if (!target.startsWith('/')) {
        const abs = posix.normalize(posix.join('etc', posix.dirname(r), target));
        if (!abs.startsWith('etc/')) target = `/${abs}`;
      }
      symlinkSync(target, d);
    } else {
      try {
        linkSync(s, d);
      } catch {
        copyFileSync(s, d);
      }
    }
  }
}

/** Relative paths of the non-directories under `dir`, sorted. */
function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    if (lstatSync(join(dir, r)).isDirectory()) out.push(...listFiles(dir, r));
    else out.push(r);
  }
  return out;
}

/**
 * For each package tmpfiles.d file with a rule for a path of this /etc (`root`), an
 * /etc/tmpfiles.d/ file of the same name (which systemd-tmpfiles reads instead) holding its lines
 * with those rules commented out. A file of that name in /etc already (declared) is left as it is.
 */
function overrideTmpfiles(dir: string, root: string): void {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.conf')).sort();
  } catch {
    return;
  }
  for (const name of names) {
    const dest = join(root, 'tmpfiles.d', name);
    if (lexists(dest)) continue;
    let changed = false;
    const lines = readFileSync(join(dir, name), 'utf8')
      .split('\n')
      .map((line) => {
        const path = /^\s*[^\s#]\S*\s+\/etc\/(\S+)/.exec(line)?.[1];
        if (path === undefined || !lexists(join(root, path))) return line;
        changed = true;
        return `# ${line}\n#   (left out by cairn: /etc/${path} is the generation's, see environment.etc)`;
      });
    if (!changed) continue;
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, `# /usr/lib/tmpfiles.d/${name}, without its rules for this generation's /etc entries.\n${lines.join('\n')}`, { mode: 0o644 });
  }
}

registerBuilder('cairn:etc', async (ctx) => {
  const { base, entries, linkTree } = ctx.drv.args as EtcArgs;
  const root = join(ctx.out, 'etc');
  mkdirSync(root, { recursive: true });
  if (base) {
    const src = join(ctx.store.toPhysical(base), 'etc');
    try {
      if (lstatSync(src).isDirectory()) copyBase(src, root, '');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  const copies: string[] = [];
  for (const e of entries) {
    const dest = join(root, e.target);
    // A declared entry replaces what a package ships there; a package folder in the way of a file is an error.
    let st;
    try {
      st = lstatSync(dest);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) throw new CairnError(`environment.etc."${e.name}": /etc/${e.target} is a folder in the packages; declare files inside it instead`);
    if (st) rmSync(dest);
    mkdirSync(dirname(dest), { recursive: true });
    if (e.symlink !== undefined) symlinkSync(e.symlink, dest);
    else if (e.base64 !== undefined) writeFileSync(dest, Buffer.from(e.base64, 'base64'), { mode: 0o644 });
    else writeFileSync(dest, e.text ?? '', { mode: 0o644 });
    if (e.symlink === undefined && e.mode !== 'symlink') copies.push(`${e.mode}\t${e.user}\t${e.group}\t${e.target}`);
  }
  if (base) overrideTmpfiles(join(ctx.store.toPhysical(base), 'usr', 'lib', 'tmpfiles.d'), root);
  const copied = new Set(copies.map((c) => c.split('\t')[3]));
  const links = listFiles(root).filter((r) => !copied.has(r));
  writeFileSync(join(ctx.out, 'links'), links.map((l) => `${l}\n`).join(''));
  if (linkTree) {
    const tree = join(ctx.out, 'link-tree');
    mkdirSync(tree);
    for (const l of links) {
      mkdirSync(dirname(join(tree, l)), { recursive: true });
      symlinkSync(`/etc/static/${l}`, join(tree, l));
    }
  }
  writeFileSync(join(ctx.out, 'copies'), copies.sort((a, b) => (a.split('\t')[3]! < b.split('\t')[3]! ? -1 : 1)).map((c) => `${c}\n`).join(''));
  ctx.log(`etc: ${links.length} links, ${copies.length} copies`);
});
