// Bundles the CLI into dist/cli/ (run by `npm run build` after tsc has type-checked).
// One bundle loads in a third of the CPU time of the hundreds of files of its dependencies;
// ajv stays a separate chunk, loaded only when YAML is validated. esbuild is native, so external.
import { build } from 'esbuild';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Stand-ins for dependencies that cost much to load and that most runs don't use: esbuild evaluates
 * a require()d module on its first require, so each stand-in requires the real module (the
 * version its importer resolves to) when it is first needed. Keyed by the name imported.
 */
const standIns = {
  // string-width builds Unicode tables when loaded (a regular expression of every emoji, a text
  // segmenter): a tenth of a second, for yargs's help texts, which are ASCII. Printable ASCII is
  // one column a character in every version.
  'string-width': (real) => `let full;
export default function stringWidth(string, options) {
  if (typeof string === 'string' && /^[\\x20-\\x7E]*$/.test(string)) return string.length;
  full ??= require(${real}).default;
  return full(string, options);
}
`,
  // execa and its dependencies take ~25 ms to load; only runs that start processes need them.
  execa: (real) => `let loaded;
export function execa(...args) {
  loaded ??= require(${real});
  return loaded.execa(...args);
}
`,
};

const lazyDependencies = {
  name: 'lazy-dependencies',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${Object.keys(standIns).join('|')})$`) }, async (args) => {
      if (args.pluginData === 'real') return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'real' });
      if (real.errors.length > 0) return { errors: real.errors };
      // Relative to the checkout: the bundle (copied into systems) names no path of the building machine.
      return { path: relative(root, real.path), namespace: 'lazy-dependency', pluginData: args.path };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-dependency' }, (args) => ({
      contents: standIns[args.pluginData](JSON.stringify(`./${basename(args.path)}`)),
      resolveDir: join(root, dirname(args.path)),
      loader: 'js',
    }));
  },
};

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * The bundle cannot import modules/*.ts at run time (Node has no TypeScript), so
 * src/eval/module-imports.ts, which lists and imports them there, is replaced by static imports of
 * the same files, listed by moduleFiles' rule (src/eval/module-files.ts): every `.ts` file below
 * modules/ but `.d.ts`, sorted by code unit. test/modules/discovery.test.ts checks both agree.
 */
const builtinModuleImports = {
  name: 'builtin-module-imports',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]eval[\\/]module-imports\.ts$/ }, async (args) => {
      const dir = join(root, 'modules');
      const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
        .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)).split('\\').join('/'))
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const imports = files.map((f, i) => `import m${i} from ${JSON.stringify(`../../modules/${f}`)};`);
      const list = files.map((f, i) => `[${JSON.stringify(f)}, m${i}]`);
      return {
        contents: `${imports.join('\n')}\nexport async function importBuiltinModules() {\n  return [${list.join(', ')}];\n}\n`,
        resolveDir: dirname(args.path),
        loader: 'js',
      };
    });
  },
};

/**
 * The bundle runs on Node 18 (Debian 12's nodejs, which runs cairn on a cairn system), which has
 * no RegExp `v` flag: string-width's regular expressions with it are made at first use, with the
 * `u` flag when their pattern allows (the same matches) and else none that matches (RGI_Emoji:
 * emoji then measure by East Asian Width, as wide as they are). Only help text is measured.
 */
const regexpVFallback = {
  name: 'regexp-v-fallback',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]string-width[\\/]index\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      let n = 0;
      const contents = text.replace(/\/((?:\\.|\[(?:\\.|[^\]\\\n])*\]|[^/\\[\n])+)\/v(?=[;,)\s])/g, (_, source) => {
        n++;
        return `__cairnRegExpV(${JSON.stringify(source)})`;
      });
      if (n === 0) return undefined;
      const helper = 'function __cairnRegExpV(s) { for (const f of ["v", "u"]) { try { return new RegExp(s, f); } catch {} } return /(?!)/; }\n';
      return { contents: helper + contents, loader: 'js' };
    });
  },
};

// Chunk names change with their content: old ones would linger beside the new (and be copied
// into systems that run cairn).
await rm(new URL('../dist/cli', import.meta.url), { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { cairn: 'src/cli/main.ts' },
  outdir: 'dist/cli',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node18',
  sourcemap: 'linked',
  external: ['esbuild'],
  // yargs-parser refuses Node < 20 by policy, not for an API it needs (see regexpVFallback).
  define: { 'process.env.YARGS_MIN_NODE_VERSION': '"18"' },
  // The stand-ins load the real modules through the Node 18 fallback.
  plugins: [lazyDependencies, regexpVFallback, builtinModuleImports],
  metafile: true,
  // CommonJS dependencies bundled into ESM still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __cairnRequire } from 'node:module'; const require = __cairnRequire(import.meta.url);" },
  logLevel: 'warning',
});

// The same as one script, which bin/cairn.js runs with V8's code for it kept beside it (made
// below): Node keeps no compiled code for ES modules, and compiling the bundle's code is a third of
// what a small evaluation costs. Its import() of configuration modules goes through the entry's
// (src/lib/esm-import.ts); those of packages and built-ins become require().
await build({
  absWorkingDir: root,
  entryPoints: { cairn: 'src/cli/main.ts' },
  outfile: 'dist/cli/cairn.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node18',
  supported: { 'dynamic-import': false },
  sourcemap: 'linked',
  external: ['esbuild'],
  define: { 'process.env.YARGS_MIN_NODE_VERSION': '"18"', 'import.meta.url': '__cairnModuleUrl' },
  plugins: [lazyDependencies, regexpVFallback, builtinModuleImports],
  banner: { js: "var __cairnModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// The script's source is read on every run: ASCII reads as a one-byte string, in half the time and
// memory of the two-byte string that one other character makes of it. esbuild escapes strings;
// what is left is in comments, where an escape is as good (and right in a string too).
const script = new URL('../dist/cli/cairn.cjs', import.meta.url);
await writeFile(script, (await readFile(script, 'utf8')).replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));

// The npm packages the bundle imports at run time: what a copy of cairn needs of node_modules
// (src/build/self.ts reads this).
const builtins = new Set(builtinModules);
const external = new Set();
for (const out of Object.values(result.metafile.outputs)) {
  for (const i of out.imports) {
    if (!i.external || i.path.startsWith('node:') || builtins.has(i.path)) continue;
    external.add(i.path.startsWith('@') ? i.path.split('/').slice(0, 2).join('/') : i.path.split('/')[0]);
  }
}
await writeFile(new URL('../dist/cli/runtime-packages.json', import.meta.url), JSON.stringify([...external].sort()) + '\n');

// V8's code for the script, made by evaluating the example server (so that it holds the functions
// an evaluation runs, compiled when first called): see bin/cairn.js.
const made = spawnSync(process.execPath, [fileURLToPath(new URL('../bin/cairn.js', import.meta.url)), 'eval', '--json', join(root, 'examples', 'server.yaml')], {
  env: { ...process.env, CAIRN_CODE_CACHE: 'write' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (made.status !== 0) throw new Error('evaluating examples/server.yaml with the new bundle failed');

// The JSON Schema of configuration files, from the bundle just built (see scripts/schema.mjs).
const { writeSchema } = await import('./schema.mjs');
writeSchema();
