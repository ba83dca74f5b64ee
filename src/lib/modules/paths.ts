import { isAbsolute, resolve } from 'node:path';
import { projectRoot } from '../../paths.js';

// Module paths: which strings name module files, and how they resolve. Kept apart from the
// evaluator so that the submodule type (types.ts) can tell a module path from a value without
// importing it.

const MODULE_EXTENSIONS = /\.(ts|mts|cts|js|mjs|cjs|yaml|yml|json)$/;

/** Modules shipped with cairn; `disabledModules: [services/openssh]` names them relative to this folder. */
export const modulesPath = resolve(projectRoot, 'modules');

/** A module's key without its file extension: how `disabledModules` entries match modules. */
export const normKey = (k: string): string => k.replace(MODULE_EXTENSIONS, '');

/**
 * A string naming a module file, as a submodule definition: absolute, or `./…`, `../…`, with the
 * name of a kind of module cairn reads. (Only such names: `either str (submodule …)` must not take
 * a command such as `/usr/bin/id` for a module to import.)
 */
export function isModulePath(v: unknown): v is string {
  return typeof v === 'string' && (isAbsolute(v) || v.startsWith('./') || v.startsWith('../')) && MODULE_FILE.test(v);
}

const MODULE_FILE = /^[^\0-\x1f\x7f]*\.(ya?ml|json|[cm]?ts|tsx|[cm]?js)$/;

export function resolveModulePath(p: string, dir: string): string {
  return isAbsolute(p) ? p : resolve(dir, p);
}
