// Writes cairn.schema.json (the JSON Schema of configuration files, for editors) from the bundled
// CLI: run by `npm run build` after bundling, and by `npm run schema`. Generated, never committed,
// so it cannot fall behind the modules' declarations.
import { execFileSync } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export function writeSchema() {
  const text = execFileSync(process.execPath, ['bin/cairn.js', 'schema'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  JSON.parse(text);
  // Renamed into place: an editor reading it mid-build sees the old schema or the new, never half.
  const tmp = `${root}cairn.schema.json.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, `${root}cairn.schema.json`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) writeSchema();
