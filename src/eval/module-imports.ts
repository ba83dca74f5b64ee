import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importModules } from './module-files.js';

/**
 * Every module of modules/, as [path relative to modules/ (`.ts`), default export], in
 * moduleFiles' order. This runs from the sources (vitest, tsx) and from tsc's output (dist/src,
 * beside dist/modules); the CLI bundle replaces this file with static imports of the same files
 * (scripts/build.mjs), since the bundle cannot import TypeScript at run time.
 */
export function importBuiltinModules(): Promise<[string, unknown][]> {
  return importModules(fileURLToPath(new URL('../../modules/', import.meta.url)), extname(fileURLToPath(import.meta.url)));
}
