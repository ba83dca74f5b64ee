import type { BuildOptions } from 'esbuild';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Script } from 'node:vm';
import { cacheDir, packageVersion, sha256Hex, writeFileAtomic } from '../cache.js';
import { CairnError } from '../errors.js';
import { runtimeImport } from './esm-import.js';
import { formatLocation, type SourceLocation } from './location.js';
import { SourcedModule } from './modules/syntax.js';
import { watchedImport } from './watchdog.js';
import { parseYaml } from './yaml.js';

/**
 * Loads a module file. YAML and JSON become located values; TypeScript and JavaScript files are
 * imported and their default export is the module. TypeScript needs no build step: it is
 * transpiled on import.
 */
export async function loadModuleFile(file: string, requestedAt: SourceLocation, batches?: ModuleBatches): Promise<unknown> {
  const ext = extname(file);
  if (ext === '.yaml' || ext === '.yml' || ext === '.json') {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw missing(file, requestedAt, err);
    }
    return dataModule(bytes, file, ext);
  }
  if (ext === '.ts' || ext === '.mts' || ext === '.cts' || ext === '.tsx' || ext === '.js' || ext === '.mjs' || ext === '.cjs') {
    let mod: { default?: unknown };
    try {
      mod = await watchedImport(file, () => (ext.endsWith('js') ? runtimeImport.of(pathToFileURL(file).href) : (batches?.take(file) ?? importTypeScript(file))));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw missingImport(file, requestedAt, err as Error);
      if (err instanceof CairnError) throw err;
      throw new CairnError(`cannot load module \`${formatLocation({ file })}': ${(err as Error).message}`, { cause: err });
    }
    if (!('default' in mod)) throw new CairnError(`The module \`${formatLocation({ file })}' has no default export; export the module (an object or a function) as default.`);
    return new SourcedModule(mod.default, { file }, file, false, dirname(file));
  }
  throw new CairnError(`The module \`${formatLocation({ file })}' (imported at \`${formatLocation(requestedAt)}') is not YAML, JSON, TypeScript or JavaScript.`);
}

/**
 * Loads a module file synchronously, for submodules (their values are evaluated on first read,
 * which cannot wait): YAML and JSON are read, TypeScript and JavaScript are bundled as CommonJS
 * (no top-level await there) and required.
 */
export function loadModuleFileSync(file: string, requestedAt: SourceLocation): unknown {
  const ext = extname(file);
  if (ext === '.yaml' || ext === '.yml' || ext === '.json') {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw missing(file, requestedAt, err);
    }
    return dataModule(bytes, file, ext);
  }
  if (/^\.[cm]?[jt]sx?$/.test(ext)) {
    if (!existsSync(file)) throw missing(file, requestedAt, undefined);
    const esbuild = requireHere('esbuild') as typeof import('esbuild');
    const options: BuildOptions = { ...buildOptions(file), format: 'cjs', banner: undefined };
    let code: string;
    try {
      code = esbuild.buildSync(options).outputFiles![0]!.text;
    } catch (err) {
      throw esbuildError(err, file);
    }
    const out = join(cacheDir('modules'), `${basename(file).replace(/\W+/g, '_')}-${sha256Hex(code).slice(0, 20)}.cjs`);
    if (!existsSync(out)) writeFileAtomic(out, code);
    const mod = requireHere(out) as { default?: unknown };
    if (!('default' in mod)) throw new CairnError(`The module \`${formatLocation({ file })}' has no default export; export the module (an object or a function) as default.`);
    return new SourcedModule(mod.default, { file }, file, false, dirname(file));
  }
  throw new CairnError(`The module \`${formatLocation({ file })}' (imported at \`${formatLocation(requestedAt)}') is not YAML, JSON, TypeScript or JavaScript.`);
}

const requireHere = createRequire(import.meta.url);

/** A YAML or JSON module from its bytes. */
function dataModule(bytes: Buffer, file: string, ext: string): SourcedModule {
  const text = decodeUtf8(bytes, file);
  const value = ext === '.json' ? parseJson(text, file) : parseYaml(text, file);
  return new SourcedModule(value, { file, line: 1, column: 1 }, file, false, dirname(file), ext !== '.json');
}

function missing(file: string, at: SourceLocation, err: unknown): CairnError {
  return new CairnError(`cannot find the module \`${formatLocation({ file })}' (imported at \`${formatLocation(at)}')`, { cause: err });
}

/**
 * Node's "Cannot find module '/abs/x.js' imported from /abs/y.js": the module itself, or a file or
 * package one of its imports names, located at the line of the importing file that names it.
 */
function missingImport(file: string, at: SourceLocation, err: Error): CairnError {
  const m = /Cannot find (?:module|package) '([^']+)' imported from (\S+)/.exec(err.message);
  if (!m || m[1] === file) return missing(file, at, err);
  const importer = m[2]!.startsWith('file://') ? fileURLToPath(m[2]!) : m[2]!;
  const name = isAbsolute(m[1]!) ? basename(m[1]!) : m[1]!;
  return new CairnError(`cannot find module \`${name}' imported from \`${formatLocation(importLocation(importer, name))}'`, { cause: err });
}

/** The first line of a module that names `specifier` in quotes (an import), else the file. */
function importLocation(file: string, specifier: string): SourceLocation {
  try {
    const lines = readFileSync(file, 'utf8').split('\n');
    const i = lines.findIndex((l) => new RegExp(`['"][^'"]*${specifier.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"]`).test(l));
    if (i >= 0) return { file, line: i + 1, column: lines[i]!.search(/['"]/) + 1 };
  } catch {
    // Unreadable: the file alone.
  }
  return { file };
}

/** The text of a configuration file, refused where it is not UTF-8 (decoding would put U+FFFD there). */
function decodeUtf8(bytes: Buffer, file: string): string {
  const text = bytes.toString('utf8');
  // Valid UTF-8 (a byte-order mark included) encodes back to the same bytes; the first byte that
  // differs is the first one that was not UTF-8.
  const again = Buffer.from(text, 'utf8');
  // A byte-order mark (editors on Windows write one) is no part of the configuration.
  if (again.equals(bytes)) return text.startsWith('\uFEFF') ? text.slice(1) : text;
  let i = 0;
  while (i < bytes.length && bytes[i] === again[i]) i++;
  const before = bytes.subarray(0, i);
  const line = before.filter((b) => b === 0x0a).length + 1;
  const column = i - before.lastIndexOf(0x0a);
  throw new CairnError(`${formatLocation({ file, line, column })}: the file is not UTF-8 text (byte 0x${bytes[i]!.toString(16).padStart(2, '0')}); save it as UTF-8`);
}

function parseJson(text: string, file: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CairnError(`${formatLocation({ file })}: invalid JSON: ${(err as Error).message}`);
  }
  checkJsonKeys(text, file);
  return value;
}

/**
 * Refuses a key written twice in one JSON object (JSON.parse keeps the last silently; YAML
 * modules refuse it too). Runs on text JSON.parse accepted, so it only tracks strings and nesting.
 */
function checkJsonKeys(text: string, file: string): void {
  // Per open container: the keys seen so far (undefined for an array), and whether a key comes next.
  const stack: { keys?: Set<string>; expectKey: boolean }[] = [];
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      line++;
      lineStart = i + 1;
    } else if (c === '{') stack.push({ keys: new Set(), expectKey: true });
    else if (c === '[') stack.push({ expectKey: false });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    } else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) throw new CairnError(`${formatLocation({ file, line, column: i - lineStart + 1 })}: the key \`${key}' appears twice in one object`);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end;
    }
  }
}

/**
 * Imports a TypeScript module without a build step: esbuild bundles it (with the helper files it
 * imports) into one ES module in cairn's cache, named by the hash of its code, with an inline source
 * map so that locations in messages still point at the TypeScript source. An index beside it,
 * named by the module's path, lets later runs import the bundle without starting esbuild (which
 * costs more than evaluating a configuration) while what it was made from is unchanged.
 */
async function importTypeScript(file: string): Promise<{ default?: unknown }> {
  const options = buildOptions(file);
  const name = basename(file).replace(/\W+/g, '_');
  const index = join(cacheDir('modules'), `${name}-${sha256Hex(JSON.stringify([packageVersion('esbuild'), options])).slice(0, 20)}.json`);
  let out = currentBundle(index);
  if (!out) {
    const started = Date.now();
    const { code, inputs } = await bundle(file, options);
    out = join(cacheDir('modules'), `${name}-${sha256Hex(code).slice(0, 20)}.mjs`);
    if (!existsSync(out)) writeFileAtomic(out, code);
    const sources = sourceStates(inputs);
    // A source changed while esbuild ran may differ from what it read: such a bundle is not indexed.
    if (sources.every((s) => s.mtimeMs < started - RACY_MS)) {
      const signatures = Object.fromEntries(sources.flatMap((s) => (s.signature ? [[s.path, s.signature]] : [])));
      writeFileAtomic(index, JSON.stringify({ out, states: Object.fromEntries(sources.map((s) => [s.path, s.state])), signatures }));
    }
  }
  return (await runtimeImport.of(pathToFileURL(out).href)) as { default?: unknown };
}

const TYPESCRIPT = /\.(ts|mts|cts|tsx)$/;

/**
 * The TypeScript modules of one evaluation, bundled together where a module imports several: one
 * esbuild run and one script for a list of a thousand modules instead of a thousand of each.
 *
 * A batch is a script, not an ES module, so that V8 can keep its compiled code beside it in the
 * cache (Node 20 keeps none for ES modules, and compiling a thousand modules' code costs more
 * than evaluating them). What only an ES module can do keeps a module out of its batch: one whose
 * code (or a file it imports) says `await`, `import.meta` or `import(` is imported alone, as are
 * the modules of a batch that cannot be bundled or run (a syntax error, a module that throws):
 * imported alone, the error is reported at its module. Batched modules run their top-level code
 * when the batch is loaded, before the first of them is evaluated, and share the files they import.
 */
export class ModuleBatches {
  private readonly batchOf = new Map<string, { files: string[]; loaded?: Promise<Map<string, { default?: unknown }> | undefined> }>();
  private readonly seen = new Set<string>();

  /** Loads a module file (as loadModuleFile), from its batch when it has one. */
  readonly load = (file: string, requestedAt: SourceLocation): Promise<unknown> => loadModuleFile(file, requestedAt, this);

  /** The module files (absolute paths) a module imports, known before they are loaded one by one. */
  readonly expect = (files: string[]): void => {
    const fresh = [...new Set(files)].filter((f) => TYPESCRIPT.test(f) && !this.seen.has(f));
    for (const f of fresh) this.seen.add(f);
    if (fresh.length < 2) return;
    const batch = { files: fresh };
    for (const f of fresh) this.batchOf.set(f, batch);
  };

  /** The import of a module from its batch, or undefined when it has none. */
  take(file: string): Promise<{ default?: unknown }> | undefined {
    const batch = this.batchOf.get(file);
    if (!batch) return undefined;
    this.batchOf.delete(file);
    return (batch.loaded ??= loadBatch(batch.files).catch(() => undefined)).then((mods) => mods?.get(file) ?? importTypeScript(file));
  }
}

interface BatchIndex {
  /** The script, or '' when no module could be batched. */
  out: string;
  /** The modules in it, in the order of their exports (`m0`, `m1`, …). */
  modules: string[];
  states: Record<string, string>;
  /** The status (inode, size, times) of each path whose state was known for it. */
  signatures?: Record<string, string>;
}

async function loadBatch(files: string[]): Promise<Map<string, { default?: unknown }> | undefined> {
  const dir = dirname(files[0]!);
  const key = sha256Hex(JSON.stringify([packageVersion('esbuild'), BATCH_VERSION, batchOptions(dir), files])).slice(0, 20);
  const index = join(cacheDir('modules'), `batch-${key}.json`);
  let found = currentIndex<BatchIndex>(index);
  if (!found) {
    const started = Date.now();
    const made = await bundleBatch(files, dir);
    if (!made) return undefined;
    const { code, map, inputs, modules } = made;
    const out = modules.length === 0 ? '' : join(cacheDir('modules'), `batch-${sha256Hex(code).slice(0, 20)}.js`);
    if (out && !existsSync(out)) {
      // The map beside the script: read only when a message needs a location.
      writeFileAtomic(`${out}.map`, map);
      writeFileAtomic(out, `${SCRIPT_HEAD}\n${code}\n${SCRIPT_TAIL}\n//# sourceMappingURL=${basename(out)}.map\n`);
    }
    found = { out, modules, states: {} };
    const sources = sourceStates(inputs);
    // A source changed while esbuild ran may differ from what it read: such a batch is not indexed.
    if (sources.every((s) => s.mtimeMs < started - RACY_MS)) {
      found.states = Object.fromEntries(sources.map((s) => [s.path, s.state]));
      found.signatures = Object.fromEntries(sources.flatMap((s) => (s.signature ? [[s.path, s.signature]] : [])));
      writeFileAtomic(index, JSON.stringify(found));
    }
  }
  if (!found.out) return undefined;
  const exports = runScript(found.out);
  return new Map(found.modules.map((m, i) => [m, exports[`m${i}`]!]));
}

/** Changes when batches are made differently: older ones are not used. */
const BATCH_VERSION = 1;

/** The script is one function of CommonJS's arguments, on lines of its own so that lines count as esbuild's do. */
const SCRIPT_HEAD = '(function (exports, require, module) { "use strict";';
const SCRIPT_TAIL = '})';

/** Runs a batch script with V8's compiled code for it, kept beside it (made on its first run). */
function runScript(out: string): Record<string, { default?: unknown }> {
  const cache = `${out}.v8`;
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cache);
  } catch {
    // Not made yet.
  }
  // Named by its URL, as ES modules are: stack frames of its code are then known as files (the
  // evaluation watchdog stops configuration code by that).
  const script = new Script(readFileSync(out, 'utf8'), { filename: pathToFileURL(out).href, lineOffset: -1, cachedData });
  const module = { exports: {} as Record<string, { default?: unknown }> };
  (script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown) => void)(module.exports, createRequire(out), module);
  if (!cachedData || script.cachedDataRejected) {
    // Made when the process ends, so that it holds the code of the functions that ran (V8 compiles
    // a function when first called): the module functions, which are most of the code.
    process.once('exit', () => {
      try {
        writeFileAtomic(cache, script.createCachedData());
      } catch {
        // A cache that cannot be written is made again next time.
      }
    });
  }
  return module.exports;
}

function batchOptions(dir: string): BuildOptions {
  const { entryPoints: _, banner: __, ...common } = buildOptions(join(dir, 'batch.ts'));
  return { ...common, format: 'cjs', sourcemap: 'external', sourcesContent: false, outfile: join(dir, 'batch.js') };
}

const entry = (modules: string[]): string => modules.map((m, i) => `export * as m${i} from ${JSON.stringify(m)};\n`).join('');

/** What only an ES module can do (or might: the words are enough). */
const MODULE_ONLY = /\bawait\b|\bimport\s*\.\s*meta\b|\bimport\s*\(/;

/** One script of the modules that can run as one, or undefined when bundling fails. */
async function bundleBatch(files: string[], dir: string): Promise<{ code: string; map: string; inputs: string[]; modules: string[] } | undefined> {
  const esbuild = await import('esbuild');
  let modules = files;
  for (;;) {
    if (modules.length === 0) return { code: '', map: '', inputs: files, modules };
    let result;
    try {
      result = await esbuild.build({ ...batchOptions(dir), stdin: { contents: entry(modules), resolveDir: dir, sourcefile: '<batch>', loader: 'js' } });
    } catch {
      return undefined;
    }
    const inputs = result.metafile!.inputs;
    const path = (p: string): string => resolve(dir, p);
    const moduleOnly = new Set(Object.keys(inputs).filter((p) => !p.startsWith('<') && MODULE_ONLY.test(readFileSync(path(p), 'utf8'))));
    // The modules that reach such a file through their imports.
    const reaches = new Map<string, boolean>();
    const reachesModuleOnly = (p: string): boolean => {
      const known = reaches.get(p);
      if (known !== undefined) return known;
      reaches.set(p, false);
      const r = moduleOnly.has(p) || (inputs[p]?.imports ?? []).some((i) => !i.external && reachesModuleOnly(i.path));
      reaches.set(p, r);
      return r;
    };
    const byPath = new Map(Object.keys(inputs).map((p) => [path(p), p]));
    const kept = modules.filter((m) => !reachesModuleOnly(byPath.get(m) ?? m));
    if (kept.length === modules.length) {
      const out = (ext: string): string => result.outputFiles!.find((f) => f.path.endsWith(ext))!.text;
      return { code: out('.js'), map: out('.map'), inputs: Object.keys(inputs).filter((p) => !p.startsWith('<')).map(path), modules };
    }
    modules = kept;
  }
}

function buildOptions(file: string): BuildOptions {
  return {
    entryPoints: [file],
    bundle: true,
    format: 'esm',
    platform: 'node',
    // The Node running cairn: Node 18 on a cairn system (programs.cairn), newer elsewhere.
    target: `node${process.versions.node}`,
    write: false,
    sourcemap: 'inline',
    metafile: true,
    // Sources in the map are relative to the working directory; anchor them to the file's folder.
    absWorkingDir: dirname(file),
    sourceRoot: `${dirname(file)}/`,
    // npm packages written as CommonJS call require() for Node's own modules, which an ES module
    // lacks: esbuild's stand-in would throw "Dynamic require of … is not supported".
    banner: { js: "import { createRequire as __cairnCreateRequire } from 'node:module';\nconst require = __cairnCreateRequire(import.meta.url);" },
    logLevel: 'silent',
  };
}

/** The bundle's code and the files it was made from. */
async function bundle(file: string, options: BuildOptions): Promise<{ code: string; inputs: string[] }> {
  const esbuild = await import('esbuild');
  try {
    const result = await esbuild.build(options);
    return { code: result.outputFiles![0]!.text, inputs: Object.keys(result.metafile!.inputs).map((p) => resolve(dirname(file), p)) };
  } catch (err) {
    throw esbuildError(err, file);
  }
}

/** esbuild's first error at its position (an import that resolves to nothing, a syntax error), or the error itself. */
function esbuildError(err: unknown, file: string): unknown {
  const first = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors?.[0];
  if (!first) return err;
  const loc = first.location && { file: resolve(dirname(file), first.location.file), line: first.location.line, column: first.location.column + 1 };
  const unresolved = /^Could not resolve "(.*)"$/.exec(first.text);
  if (unresolved && loc) return new CairnError(`cannot find module \`${unresolved[1]}' imported from \`${formatLocation(loc)}'`);
  return new CairnError(`${loc ? `${formatLocation(loc)}: ` : ''}${first.text}`);
}

/**
 * Files changed this recently may have been written during a bundling without their timestamps
 * showing it: filesystem clocks are coarse.
 */
const RACY_MS = 1000;

/** The indexed bundle, if every path it depends on is as it was when it was made. */
function currentBundle(index: string): string | undefined {
  return currentIndex<{ out: string; states: Record<string, string> }>(index)?.out;
}

/** An index (of a bundle or a batch), if every path it depends on is as it was when it was made. */
function currentIndex<T extends { out: string; states: Record<string, string>; signatures?: Record<string, string> }>(index: string): T | undefined {
  try {
    const found = JSON.parse(readFileSync(index, 'utf8')) as T;
    // What the paths were when indexed: one whose status is still the same is not read again.
    for (const [path, signature] of Object.entries(found.signatures ?? {})) {
      const state = found.states[path];
      if (state !== undefined && !knownStates.has(path)) knownStates.set(path, { signature, state });
    }
    if (Object.entries(found.states).every(([path, state]) => pathState(path).state === state) && (found.out === '' || existsSync(found.out))) return found;
  } catch {
    // No index, or a damaged one: bundled again.
  }
  return undefined;
}

/**
 * What a bundle depends on: its input files; the names in their folders, which decide what
 * imports resolve to; and the package.json, tsconfig.json and jsconfig.json files that esbuild
 * reads in those folders and above them.
 */
function sourceStates(inputs: string[]): { path: string; state: string; mtimeMs: number; signature?: string }[] {
  const paths = new Set<string>();
  for (const input of inputs) {
    paths.add(input);
    paths.add(`${dirname(input)}/`);
    for (let dir = dirname(input); ; dir = dirname(dir)) {
      for (const config of ['package.json', 'tsconfig.json', 'jsconfig.json']) paths.add(join(dir, config));
      if (dir === dirname(dir)) break;
    }
  }
  return [...paths].map((path) => ({ path, ...pathState(path) }));
}

/**
 * A file's content hash, or the hash of the names in a folder (a path ending in `/`): a link
 * replaced beside a module (`./result`) changes the folder's time but not what imports find.
 * `-` if missing.
 */
function pathState(path: string): { state: string; mtimeMs: number; signature?: string } {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return { state: '-', mtimeMs: 0 };
    // Many modules of one folder share the folder and the config files above it, and a bundle is
    // checked on every run: a path read before is not read again while its status is unchanged (a
    // change to it changes its times, unless made within the clock's granularity of the read:
    // such a read is not remembered).
    const signature = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    const known = knownStates.get(path);
    if (known?.signature === signature) return { state: known.state, mtimeMs: st.mtimeMs, signature };
    const state = sha256Hex(path.endsWith('/') ? readdirSync(path).sort().join('\n') : readFileSync(path));
    if (Date.now() - Math.max(st.mtimeMs, st.ctimeMs) <= RACY_MS) return { state, mtimeMs: st.mtimeMs };
    knownStates.set(path, { signature, state });
    return { state, mtimeMs: st.mtimeMs, signature };
  } catch {
    return { state: '-', mtimeMs: 0 };
  }
}

const knownStates = new Map<string, { signature: string; state: string }>();
