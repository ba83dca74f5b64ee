// Bundles the CLI into dist/cli/ (run by `npm run build` after tsc has type-checked).
// One bundle loads in a third of the CPU time of the hundreds of files of its dependencies;
// ajv stays a separate chunk, loaded only when YAML is validated. esbuild is native, so external.
import { build } from 'esbuild';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * string-width builds Unicode tables when it is loaded (a regular expression of every emoji,
 * a text segmenter): a tenth of a second of every start, for yargs's help texts, which are ASCII.
 * Each importer gets a stand-in that measures printable ASCII itself (one column a character, in
 * every version) and loads its own version of string-width only for other text: a require()d
 * module is evaluated on its first require.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData === 'real') return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'real' });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      contents: `let full;
export default function stringWidth(string, options) {
  if (typeof string === 'string' && /^[\\x20-\\x7E]*$/.test(string)) return string.length;
  full ??= require(${JSON.stringify(args.path)}).default;
  return full(string, options);
}
`,
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
  plugins: [lazyStringWidth],
  // CommonJS dependencies bundled into ESM still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __cairnRequire } from 'node:module'; const require = __cairnRequire(import.meta.url);" },
  logLevel: 'warning',
});
