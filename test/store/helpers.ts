import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { removeTree, Store } from '../../src/store/index.js';
import './fixtures/builders.js';

const homes: string[] = [];

/** A fresh CAIRN_HOME for one test, removed afterwards (read-only store trees included). */
export function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'cairn-store-test-'));
  homes.push(home);
  return home;
}

export function tempStore(): Store {
  return Store.open(tempHome());
}

afterEach(() => {
  for (const home of homes.splice(0)) {
    removeTree(home); // store trees are read-only: this gives directories their write bit back first

  }
});

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Compiles one test entry point (and what it imports) into a private directory and returns the
 * path of its .js file. Child processes then start in a fraction of the time tsx needs, and the
 * shared dist/ (which other test files may be rebuilding) is left alone.
 */
export function compileEntry(entry: string): { js: string; cleanup: () => void } {
  const out = mkdtempSync(join(tmpdir(), 'cairn-store-compiled-'));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '--outDir', out, '--rootDir', ROOT, '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--target', 'es2022', '--strict', '--skipLibCheck', '--types', 'node', join(ROOT, entry)], { cwd: ROOT, stdio: 'pipe' });
  return { js: join(out, entry.replace(/\.ts$/, '.js')), cleanup: () => rmSync(out, { recursive: true, force: true }) };
}
