/**
 * cairn itself as a store path, for systems that run cairn (`programs.cairn`): the files it runs
 * from under `lib/cairn` (the CLI bundle, modules with their templates, images, scripts, package.json and the
 * npm packages the bundle leaves out), and `bin/cairn`, which runs them on Node from the store.
 *
 * The files are those of the running cairn, which the derivation cannot name (its path is the
 * building machine's): its arguments carry their content hash instead, so the output path changes
 * with any of them, and the builder refuses files that no longer match it.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { CairnError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { registerBuilder } from '../store/index.js';

/** What cairn reads at run time, relative to its root (folders whole). */
const RUNTIME = ['package.json', 'bin/cairn.js', 'dist/cli', 'modules', 'images', 'scripts'];

/** The npm packages the bundle imports at run time, as scripts/build.mjs lists them. */
const RUNTIME_PACKAGES = 'dist/cli/runtime-packages.json';

/** One file (or symlink) of cairn's runtime, by its path below the root. */
interface RuntimeFile {
  rel: string;
  src: string;
}

/** Arguments of a `cairn:self` derivation; `packages` (Debian package → store path) comes from the system build. */
export interface SelfArgs {
  /** `sha256:<hex>` of the runtime files (runtimeHash). */
  files: string;
  /** The Debian package whose `usr/bin/node` runs cairn. */
  node: string;
  packages?: Record<string, string>;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CairnError(`cannot read ${file}: ${(err as Error).message}${file.includes('/dist/') ? ' (`npm run build` makes the CLI bundle)' : ''}`);
  }
}

/** Every entry below `dir` (not descending into `node_modules`), as paths relative to it. */
function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    if (lstatSync(join(dir, r)).isDirectory()) {
      if (name !== 'node_modules') out.push(...walk(dir, r));
    } else out.push(r);
  }
  return out;
}

/**
 * The runtime files of the cairn at `root`, sorted: RUNTIME, and the npm packages the bundle
 * imports with those they depend on (installed optional ones: esbuild's binary for this platform),
 * without their command-line programs, which cairn never runs.
 */
export function runtimeFiles(root = projectRoot): RuntimeFile[] {
  const files: RuntimeFile[] = [];
  for (const rel of RUNTIME) {
    const src = join(root, rel);
    if (!existsSync(src)) throw new CairnError(`cannot copy cairn: ${src} is missing${rel.startsWith('dist/') ? ' (`npm run build` makes the CLI bundle)' : ''}`);
    // V8's compiled code for the CLI script (bin/cairn.js) is made for this checkout's path and
    // Node, and names the path: not copied (the copy compiles the script).
    if (lstatSync(src).isDirectory()) files.push(...walk(src).filter((r) => !r.endsWith('.v8')).map((r) => ({ rel: `${rel}/${r}`, src: join(src, r) })));
    else files.push({ rel, src });
  }
  const todo = readJson(join(root, RUNTIME_PACKAGES)) as string[];
  const seen = new Set<string>();
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const dir = join(root, 'node_modules', name);
    const meta = readJson(join(dir, 'package.json')) as { bin?: string | Record<string, string>; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    const bins = new Set((typeof meta.bin === 'string' ? [meta.bin] : Object.values(meta.bin ?? {})).map((b) => posix.normalize(b)));
    for (const r of walk(dir)) if (!bins.has(r)) files.push({ rel: `node_modules/${name}/${r}`, src: join(dir, r) });
    todo.push(...Object.keys(meta.dependencies ?? {}));
    // Optional dependencies are installed only where they apply (one platform's binary).
    todo.push(...Object.keys(meta.optionalDependencies ?? {}).filter((d) => existsSync(join(root, 'node_modules', d))));
  }
  return files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/**
 * Hashes the runtime files (path, kind, executable bit, content) and hands each one's content to
 * `each` on the way, so that what is copied is exactly what was hashed.
 */
function hashRuntime(files: RuntimeFile[], each?: (f: RuntimeFile, content: { link: string } | { data: Buffer; executable: boolean }) => void): string {
  const hash = createHash('sha256');
  for (const f of files) {
    const st = lstatSync(f.src);
    if (st.isSymbolicLink()) {
      const link = readlinkSync(f.src);
      hash.update(`${f.rel}\0link\0${link}\0`);
      each?.(f, { link });
    } else {
      const data = readFileSync(f.src);
      const executable = (st.mode & 0o111) !== 0;
      hash.update(`${f.rel}\0file\0${executable ? 'x' : '-'}\0${data.length}\0`).update(data);
      each?.(f, { data, executable });
    }
  }
  return `sha256:${hash.digest('hex')}`;
}

/** The content hash of the running cairn's runtime files: what its store path is named by. */
export function runtimeHash(root = projectRoot): string {
  return hashRuntime(runtimeFiles(root));
}

registerBuilder('cairn:self', async (ctx) => {
  const { files, node, packages = {} } = ctx.drv.args as SelfArgs;
  const nodeStore = packages[node];
  if (!nodeStore) throw new CairnError(`the Node.js package ${node} is not among the derivation's packages`);
  const nodeBin = `${nodeStore}/usr/bin/node`;
  if (!existsSync(ctx.store.toPhysical(nodeBin))) throw new CairnError(`${node} has no usr/bin/node: it is not a Node.js runtime`);
  const lib = join(ctx.out, 'lib', 'cairn');
  const got = hashRuntime(runtimeFiles(), (f, content) => {
    const dest = join(lib, f.rel);
    mkdirSync(dirname(dest), { recursive: true });
    if ('link' in content) symlinkSync(content.link, dest);
    else writeFileSync(dest, content.data, { mode: content.executable ? 0o755 : 0o644 });
  });
  if (got !== files) {
    throw new CairnError(`cairn's files in ${projectRoot} changed after the configuration was evaluated (${got}, expected ${files}); build again`);
  }
  const self = ctx.store.outputPath(ctx.drv);
  mkdirSync(join(ctx.out, 'bin'));
  writeFileSync(join(ctx.out, 'bin', 'cairn'), `#!/bin/sh\nexec ${nodeBin} ${self}/lib/cairn/bin/cairn.js "$@"\n`, { mode: 0o755 });
});
