#!/usr/bin/env node
// Entry point: the CLI is bundled into dist/cli/ by `npm ci` (the `prepare` script runs `npm run build`).
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/**
 * The CLI as a script, run with V8's compiled code for it (cairn.cjs.<path hash>.v8, made by
 * `npm run build`; V8 refuses it under another Node): compiling the bundle's code is a third of
 * what a small evaluation costs, and Node keeps no compiled code for ES modules. The ES module
 * bundle when there is no script.
 */
function loadScript() {
  const file = fileURLToPath(new URL('../dist/cli/cairn.cjs', import.meta.url));
  let source;
  try {
    // The build leaves only ASCII in it (scripts/build.mjs): read as Latin-1, which is the same
    // text, without UTF-8's decoding (a tenth of what `cairn --version` costs).
    source = readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
  // The compiled code names the script's path (in stack frames): one made for another path is not used.
  const cache = `${file}.${createHash('sha256').update(file).digest('hex').slice(0, 16)}.v8`;
  let cachedData;
  try {
    cachedData = readFileSync(cache);
  } catch {
    // Not made yet.
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  // Made by the build only: a copy of cairn (in a store) is never written to.
  if (process.env.CAIRN_CODE_CACHE === 'write') {
    // When the process ends, so that it holds the functions that ran (compiled when first called).
    process.once('exit', () => {
      writeFileSync(`${cache}.${process.pid}`, script.createCachedData());
      renameSync(`${cache}.${process.pid}`, cache);
    });
  }
  const cli = module.exports;
  // A script's own import() finds no loader: this module's serves it (src/lib/esm-import.ts).
  cli.runtimeImport.of = (specifier) => import(specifier);
  return cli;
}

// A reader that stops reading (`cairn eval --json | head`) is no error of cairn's: what would have
// gone to it is dropped, and the command ends as it would have (a switch is not cut short).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
}

const { main } = loadScript() ?? (await import('../dist/cli/cairn.js'));
process.exitCode = await main(process.argv.slice(2));
