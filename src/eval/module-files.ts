import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CairnError } from '../errors.js';

/**
 * The module files below `dir`, relative with `/`, sorted by code unit (the same order on every
 * machine): every `.ts` file (not a `.d.ts`). Templates and other files beside them are
 * not modules. scripts/build.mjs lists modules/ by the same rule for the CLI bundle.
 */
export function moduleFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(r);
    }
  };
  walk('');
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Imports every module file below `dir` (see moduleFiles), in that order, as [path relative to
 * `dir`, default export]. With `compiled`, each is imported from there as tsc wrote it (`.js`),
 * so that files tsc left behind (of modules since removed) are not modules. Every file must
 * have a default export, the module: code shared by modules belongs in src/lib, given through `lib`.
 */
export async function importModules(dir: string, compiled?: string): Promise<[string, unknown][]> {
  return Promise.all(
    moduleFiles(dir).map(async (rel): Promise<[string, unknown]> => {
      const file = compiled === undefined ? join(dir, rel) : join(compiled, rel.replace(/\.ts$/, '.js'));
      const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
      if (mod.default === undefined) throw new CairnError(`${join(dir, rel)} has no default export: every .ts file below ${dir} is a module (shared code belongs in src/lib, given to modules through \`lib')`);
      return [rel, mod.default];
    }),
  );
}
