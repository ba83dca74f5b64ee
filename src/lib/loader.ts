import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cacheDir, sha256Hex, writeFileAtomic } from '../cache.js';
import { CairnError } from '../errors.js';
import { formatLocation, type SourceLocation } from './location.js';
import { SourcedModule } from './modules.js';
import { parseYaml } from './yaml.js';

/**
 * Loads a module file. YAML and JSON become located values; TypeScript and JavaScript files are
 * imported and their default export is the module. TypeScript needs no build step: it is
 * transpiled on import.
 */
export async function loadModuleFile(file: string, requestedAt: SourceLocation): Promise<unknown> {
  const ext = extname(file);
  if (ext === '.yaml' || ext === '.yml' || ext === '.json') {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw missing(file, requestedAt, err);
    }
    const value = ext === '.json' ? parseJson(text, file) : parseYaml(text, file);
    return new SourcedModule(value, { file, line: 1, column: 1 }, file, false, dirname(file), ext !== '.json');
  }
  if (ext === '.ts' || ext === '.mts' || ext === '.cts' || ext === '.tsx' || ext === '.js' || ext === '.mjs' || ext === '.cjs') {
    let mod: { default?: unknown };
    try {
      mod = ext.endsWith('js') ? await import(pathToFileURL(file).href) : await importTypeScript(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(file)) throw missing(file, requestedAt, err);
      if (err instanceof CairnError) throw err;
      throw new CairnError(`cannot load module \`${formatLocation({ file })}': ${(err as Error).message}`, { cause: err });
    }
    if (!('default' in mod)) throw new CairnError(`The module \`${formatLocation({ file })}' has no default export; export the module (an object or a function) as default.`);
    return new SourcedModule(mod.default, { file }, file, false, dirname(file));
  }
  throw new CairnError(`The module \`${formatLocation({ file })}' (imported at \`${formatLocation(requestedAt)}') is not YAML, JSON, TypeScript or JavaScript.`);
}

function missing(file: string, at: SourceLocation, err: unknown): CairnError {
  return new CairnError(`cannot find the module \`${formatLocation({ file })}' (imported at \`${formatLocation(at)}')`, { cause: err });
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CairnError(`${formatLocation({ file })}: invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * Imports a TypeScript module without a build step: esbuild bundles it (with the helper files it
 * imports) into one ES module in cairn's cache, named by the hash of its code, with an inline source
 * map so that locations in messages still point at the TypeScript source.
 */
async function importTypeScript(file: string): Promise<{ default?: unknown }> {
  const esbuild = await import('esbuild');
  let code: string;
  try {
    const result = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      sourcemap: 'inline',
      // Sources in the map are relative to the working directory; anchor them to the file's folder.
      absWorkingDir: dirname(file),
      sourceRoot: `${dirname(file)}/`,
      logLevel: 'silent',
    });
    code = result.outputFiles[0]!.text;
  } catch (err) {
    const first = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors?.[0];
    if (!first) throw err;
    const where = first.location ? `${formatLocation({ file: resolve(first.location.file), line: first.location.line, column: first.location.column + 1 })}: ` : '';
    throw new CairnError(`${where}${first.text}`);
  }
  const out = join(cacheDir('modules'), `${basename(file).replace(/\W+/g, '_')}-${sha256Hex(code).slice(0, 20)}.mjs`);
  if (!existsSync(out)) writeFileAtomic(out, code);
  return (await import(pathToFileURL(out).href)) as { default?: unknown };
}
