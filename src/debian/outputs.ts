/**
 * A Debian package's outputs, as Nix splits its packages: the unpacked .deb (the `deb` builder's
 * path, never part of a system) is split into store paths a system takes separately:
 *
 *   out          everything else, with `.cairn/` (control data, duties) and the copyright files
 *                (usr/share/doc/<pkg>/copyright: the licence goes wherever the package goes)
 *   doc          usr/share/doc (but the copyright), doc-base, gtk-doc, help
 *   man          usr/share/man/man*
 *   info         usr/share/info
 *   lang-<ll>    translations: usr/share/locale/<ll>/ (a language folder, not locale.alias)
 *   man-<ll>     translated manual pages: usr/share/man/<ll>/
 *
 * Each output is its own derivation over the unpacked path (files hard-linked, as sw's are), so
 * it appears whole or not at all, and the main output's path does not depend on which others a
 * system takes. The main output lists the others the package has (`.cairn/outputs.json`): a
 * system reads that to know what to build, and only non-empty outputs exist.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CairnError } from '../errors.js';
import { linkOrCopy, registerBuilder, type Derivation, type SetuidEntry, type Store } from '../store/index.js';
import { debStoreName } from './deb.js';

/** Arguments of a `deb-output` derivation (its one input is the unpacked package). */
export interface DebOutputArgs {
  package: string;
  output: string;
  /** The rules that assign files to outputs: raise it when they change, so no older split is reused. */
  split: number;
}

const SPLIT_VERSION = 1;

/** Where the main output lists the package's other outputs. */
export const OUTPUTS_FILE = '.cairn/outputs.json';

/** A folder of translations: `de`, `pt_BR`, `sr@latin`, `zh_Hant`, `es_419`, `de.UTF-8` (not `C`, `locale.alias`). */
const LANGUAGE_DIR = /^[a-z]{2,3}(_[A-Z][a-z]{3})?(_[A-Z]{2}|_[0-9]{3})?(\.[A-Za-z0-9-]+)?(@[A-Za-z0-9]+)?$/;

/** Folders of usr/share that are documentation as a whole. */
const DOC_DIRS = new Set(['doc-base', 'gtk-doc', 'help']);

/**
 * The output a path of an unpacked package (relative, merged /usr) belongs to. A folder is asked
 * only when it is empty (it goes where a file in its place would).
 */
export function outputOf(rel: string): string {
  const [usr, share, top, a, b] = rel.split('/');
  if (usr !== 'usr' || share !== 'share' || top === undefined || a === undefined) return 'out';
  switch (top) {
    case 'doc':
      // usr/share/doc/<pkg> itself (often a link to another package's folder) and its copyright stay.
      return b === undefined || (b === 'copyright' && rel.split('/').length === 5) ? 'out' : 'doc';
    case 'info':
      return 'info';
    case 'man':
      return b === undefined || a.startsWith('man') || !LANGUAGE_DIR.test(a) ? 'man' : `man-${a}`;
    case 'locale':
      return b !== undefined && LANGUAGE_DIR.test(a) ? `lang-${a}` : 'out';
    default:
      return DOC_DIRS.has(top) ? 'doc' : 'out';
  }
}

/** `de.UTF-8` → `de`: the language a folder holds, without a character set. */
const languageOf = (dir: string): string => dir.replace(/\.[^@]*/, '');

/**
 * The outputs of `available` a system asking for `wanted` (environment.extraOutputsToInstall:
 * `doc`, `man`, `info`, `lang-<ll>`) takes: a translated manual goes with `man` and its language.
 */
export function selectOutputs(available: string[], wanted: ReadonlySet<string>): string[] {
  return available.filter((o) => {
    if (wanted.has(o)) return true;
    const m = /^(lang|man)-(.+)$/.exec(o);
    if (!m) return false;
    return wanted.has(`lang-${languageOf(m[2]!)}`) && (m[1] === 'lang' || wanted.has('man'));
  });
}

/** The derivation of one output of the package unpacked at `unpacked`. */
export function debOutputDerivation(pkg: string, version: string, unpacked: string, output: string): Derivation {
  const args: DebOutputArgs = { package: pkg, output, split: SPLIT_VERSION };
  const name = debStoreName(pkg, version) + (output === 'out' ? '' : `-${output}`.replace(/[^A-Za-z0-9+._?=-]/g, '_'));
  return { name, builder: 'deb-output', args, inputs: [unpacked] };
}

/** The other outputs a main output lists (none for a path that is not a package's main output). */
export function readOutputs(store: Store, out: string): string[] {
  const file = join(store.toPhysical(out), OUTPUTS_FILE);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { outputs: string[] }).outputs : [];
}

registerBuilder('deb-output', async (ctx) => {
  const { output } = ctx.drv.args as DebOutputArgs;
  const input = ctx.drv.inputs[0]!;
  const src = ctx.store.toPhysical(input);
  const others = new Set<string>();
  let count = 0;
  mkdirSync(ctx.out);
  const place = (rel: string, make: (dest: string) => void): void => {
    const dest = join(ctx.out, rel);
    mkdirSync(dirname(dest), { recursive: true });
    make(dest);
    count++;
  };
  const walk = (rel: string): void => {
    const names = readdirSync(join(src, rel)).sort();
    if (names.length === 0) {
      const o = outputOf(rel);
      if (o === output) place(rel, (d) => mkdirSync(d));
      else others.add(o);
    }
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const file = join(src, r);
      const st = lstatSync(file);
      if (r === '.cairn') {
        if (output === 'out') copyTree(file, join(ctx.out, r));
        continue;
      }
      if (st.isDirectory()) {
        walk(r);
        continue;
      }
      const o = outputOf(r);
      if (o !== output) others.add(o);
      else if (st.isSymbolicLink()) place(r, (d) => symlinkSync(readlinkSync(file), d));
      else place(r, (d) => linkOrCopy(file, d));
    }
  };
  walk('');
  if (output === 'out') {
    others.delete('out');
    mkdirSync(join(ctx.out, '.cairn'), { recursive: true });
    writeFileSync(join(ctx.out, OUTPUTS_FILE), JSON.stringify({ outputs: [...others].sort() }) + '\n');
  } else if (count === 0) {
    throw new CairnError(`${input} has no ${output} output (ask only for those ${OUTPUTS_FILE} of its main output lists)`);
  }
  // Setuid files keep their modes where they went (the unpacked path records them).
  const setuid: SetuidEntry[] = (ctx.store.pathInfo(input).setuid ?? []).filter((e) => outputOf(e.path) === output);
  return setuid.length > 0 ? { setuid } : undefined;
});

/** Hard-links a tree (files) and copies its links and folders. */
function copyTree(from: string, to: string): void {
  mkdirSync(to);
  for (const name of readdirSync(from).sort()) {
    const f = join(from, name);
    const t = join(to, name);
    const st = lstatSync(f);
    if (st.isDirectory()) copyTree(f, t);
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(f), t);
    else linkOrCopy(f, t);
  }
}
