import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The module files below `dir`, relative with `/`, sorted by code unit (the same order on every
 * machine): every file ending in `ext` (not a `.d.ts`). Templates and other files beside them are
 * not modules. scripts/build.mjs lists modules/ by the same rule for the CLI bundle.
 */
export function moduleFiles(dir: string, ext = '.ts'): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith(ext) && !e.name.endsWith('.d.ts')) out.push(r);
    }
  };
  walk('');
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Imports every module file below `dir` (see moduleFiles), in that order, as [path relative to
 * `dir` with `.ts` for `ext`, default export]. A file without a default export is reported as
 * undefined: the caller names it.
 */
export async function importModules(dir: string, ext = '.ts'): Promise<[string, unknown][]> {
  return Promise.all(
    moduleFiles(dir, ext).map(async (rel): Promise<[string, unknown]> => {
      const mod = (await import(pathToFileURL(join(dir, rel)).href)) as { default?: unknown };
      return [`${rel.slice(0, -ext.length)}.ts`, mod.default];
    }),
  );
}
