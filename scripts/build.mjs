// Bundles the CLI into dist/cli/ (run by `npm run build` after tsc has type-checked).
// One bundle loads in a third of the CPU time of the hundreds of files of its dependencies;
// ajv stays a separate chunk, loaded only when YAML is validated. esbuild is native, so external.
import { build } from 'esbuild';
import { dirname } from 'node:path';
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
      return { path: real.path, namespace: 'lazy-dependency', pluginData: args.path };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-dependency' }, (args) => ({
      contents: standIns[args.pluginData](JSON.stringify(args.path)),
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  absWorkingDir: root,
  entryPoints: { cairn: 'src/cli/main.ts' },
  outdir: 'dist/cli',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  external: ['esbuild'],
  plugins: [lazyDependencies],
  // CommonJS dependencies bundled into ESM still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __cairnRequire } from 'node:module'; const require = __cairnRequire(import.meta.url);" },
  logLevel: 'warning',
});
