import { fileURLToPath } from 'node:url';
import { modulesPath } from '../lib/index.js';
import { importModules } from './module-files.js';

/**
 * Every module of modules/, as [path relative to modules/, default export], in moduleFiles' order.
 * This runs from the sources (vitest, tsx) and from tsc's output (dist/src, which imports
 * dist/modules); the CLI bundle replaces this file with static imports of the same files
 * (scripts/build.mjs), since the bundle cannot import TypeScript at run time.
 */
export function importBuiltinModules(): Promise<[string, unknown][]> {
  const compiled = import.meta.url.endsWith('.js') ? fileURLToPath(new URL('../../modules/', import.meta.url)) : undefined;
  return importModules(modulesPath, compiled);
}
