// Writes modules/config.d.ts (or the file given), the types of cairn's own option tree (`Config`,
// `ModuleArgs`) that the files of modules/ import: run by `npm run build` before tsc, from the
// sources (tsx), so the types always follow the declarations. Generated, never committed.
import { renameSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evalSystem } from '../src/eval/index.js';
import { typeDeclarations } from '../src/lib/typescript.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const target = resolve(process.argv[2] ?? `${root}modules/config.d.ts`);
// `Lib` and `Package` from the sources, so tsc needs no earlier build.
const lib = relative(dirname(target), `${root}src/lib/index.js`).split('\\').join('/');
const { evaluation } = await evalSystem([], { assertions: false });
const text = typeDeclarations(evaluation.decls, {
  libModule: lib.startsWith('.') ? lib : `./${lib}`,
  source: "cairn's modules",
  writer: '`npm run build` (scripts/module-types.ts)',
});
// Renamed into place: tsc or an editor reading it mid-build sees the old file or the new, never half.
writeFileSync(`${target}.tmp`, text);
renameSync(`${target}.tmp`, target);
