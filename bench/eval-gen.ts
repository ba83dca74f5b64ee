import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A generated set of modules written twice, as TypeScript modules for cairn and as Nix modules for
 * nixpkgs' `lib.evalModules`, from one description: both evaluate to the same `config.bench`.
 *
 * Module i declares `bench.m<i>` (10 options: int, str, bool, lists, an attrsOf submodule, lines,
 * nullOr, enum, attrsOf int) and defines options of two others, its successor and a far module
 * (i·7+3 mod n, a permutation), with plain values, mkDefault, mkForce, mkBefore, mkAfter, mkMerge
 * and mkIf conditions that read config. Values are deterministic: the same n gives the same files.
 *
 * NixOS merges the definitions of different modules in reverse module order (evalModules reverses
 * the collected list); cairn merges them in module order. So that the values agree, no option gets
 * two definitions of one mkOrder class from different modules: their order is fixed by mkBefore
 * and mkAfter alone.
 */

/** A definition value, rendered to either language. */
type Expr =
  | { lit: string | number | boolean }
  | { list: Expr[] }
  | { attrs: [string, Expr][] }
  | { call: 'mkDefault' | 'mkForce' | 'mkBefore' | 'mkAfter'; arg: Expr }
  | { merge: Expr[] }
  | { when: string[]; then: Expr };

const lit = (v: string | number | boolean): Expr => ({ lit: v });
const list = (...xs: (string | number | Expr)[]): Expr => ({ list: xs.map((x) => (typeof x === 'object' ? x : lit(x))) });
const attrs = (entries: Record<string, Expr | string | number | boolean>): Expr => ({
  attrs: Object.entries(entries).map(([k, v]) => [k, typeof v === 'object' ? v : lit(v)]),
});
const call = (name: 'mkDefault' | 'mkForce' | 'mkBefore' | 'mkAfter', arg: Expr | string | number): Expr => ({ call: name, arg: typeof arg === 'object' ? arg : lit(arg) });
const when = (path: string[], then: Expr): Expr => ({ when: path, then });

/** What module i defines: the parts of its config's mkMerge. */
function definitions(i: number, n: number): Expr[] {
  const next = (i + 1) % n;
  const prev = (i + n - 1) % n;
  const far = (i * 7 + 3) % n;
  const myC = ['bench', `m${i}`, 'c'];
  const toNext: Record<string, Expr | string | number | boolean> = {
    a: call('mkDefault', i * 2),
    b: call('mkForce', `forced${i}`),
    d: list(`from${i}`),
    e: call('mkAfter', list(i, i + 1)),
    f: attrs({ [`k${i}`]: attrs({ port: 1000 + i }), shared: attrs({ label: call('mkDefault', `s${i}`), tags: list(`t${i}`) }) }),
    g: `line from ${i}`,
    j: attrs({ [`k${i}`]: i, s: call('mkDefault', i) }),
  };
  if (i % 3 !== 0) toNext.c = true;
  const toFar: Record<string, Expr | string | number | boolean> = {
    b: `plain${i}`,
    d: call('mkBefore', list(`first${i}`)),
    e: { merge: [list(i), call('mkBefore', list(i + 2))] },
    f: attrs({ shared: attrs({ tags: call('mkBefore', list(`far${i}`)) }), [`x${i}`]: when(myC, attrs({ tags: list('x') })) }),
    g: call('mkBefore', `far line ${i}`),
    i: when(myC, lit('y')),
    j: attrs({ s: i * 2, [`f${i}`]: call('mkForce', i) }),
  };
  if (i % 5 === 0) toFar.a = call('mkForce', i * 3);
  const nested = (target: number, defs: Expr): Expr => attrs({ bench: attrs({ [`m${target}`]: defs }) });
  return [nested(next, attrs(toNext)), nested(far, attrs(toFar)), when(myC, nested(prev, attrs({ d: call('mkAfter', list(`cond${i}`)), h: `h${i}` })))];
}

function ts(e: Expr): string {
  if ('lit' in e) return JSON.stringify(e.lit);
  if ('list' in e) return `[${e.list.map(ts).join(', ')}]`;
  if ('attrs' in e) return `{ ${e.attrs.map(([k, v]) => `${k}: ${ts(v)}`).join(', ')} }`;
  if ('call' in e) return `${e.call}(${ts(e.arg)})`;
  if ('merge' in e) return `mkMerge([${e.merge.map(ts).join(', ')}])`;
  return `mkIf(config.${e.when.join('.')}, ${ts(e.then)})`;
}

function nix(e: Expr): string {
  if ('lit' in e) return JSON.stringify(e.lit);
  if ('list' in e) return `[ ${e.list.map((x) => ('lit' in x ? nix(x) : `(${nix(x)})`)).join(' ')} ]`;
  if ('attrs' in e) return `{ ${e.attrs.map(([k, v]) => `${k} = ${nix(v)};`).join(' ')} }`;
  if ('call' in e) return `${e.call} (${nix(e.arg)})`;
  if ('merge' in e) return `mkMerge [ ${e.merge.map((x) => `(${nix(x)})`).join(' ')} ]`;
  return `mkIf config.${e.when.join('.')} (${nix(e.then)})`;
}

/** The declarations of module i, as [name, TypeScript, Nix]. */
function declarations(i: number): [string, string, string][] {
  return [
    ['a', `mkOption({ type: types.int, default: ${i} })`, `mkOption { type = types.int; default = ${i}; }`],
    ['b', `mkOption({ type: types.str, default: "b${i}" })`, `mkOption { type = types.str; default = "b${i}"; }`],
    ['c', 'mkOption({ type: types.bool, default: false })', 'mkOption { type = types.bool; default = false; }'],
    ['d', 'mkOption({ type: types.listOf(types.str), default: [] })', 'mkOption { type = types.listOf types.str; default = [ ]; }'],
    ['e', 'mkOption({ type: types.listOf(types.int), default: [] })', 'mkOption { type = types.listOf types.int; default = [ ]; }'],
    ['f', 'mkOption({ type: types.attrsOf(item), default: {} })', 'mkOption { type = types.attrsOf item; default = { }; }'],
    ['g', 'mkOption({ type: types.lines, default: "" })', 'mkOption { type = types.lines; default = ""; }'],
    ['h', 'mkOption({ type: types.nullOr(types.str), default: null })', 'mkOption { type = types.nullOr types.str; default = null; }'],
    ['i', 'mkOption({ type: types.enum(["x", "y", "z"]), default: "x" })', 'mkOption { type = types.enum [ "x" "y" "z" ]; default = "x"; }'],
    ['j', 'mkOption({ type: types.attrsOf(types.int), default: {} })', 'mkOption { type = types.attrsOf types.int; default = { }; }'],
  ];
}

function tsModule(i: number, n: number): string {
  const decls = declarations(i)
    .map(([name, t]) => `      ${name}: ${t},`)
    .join('\n');
  return `// Generated by bench/eval-gen.ts.
export default ({ lib, config }: { lib: any; config: any }) => {
  const { mkOption, types, mkDefault, mkForce, mkIf, mkMerge, mkBefore, mkAfter } = lib;
  const item = types.submodule(({ name }: { name: string }) => ({
    options: {
      port: mkOption({ type: types.port, default: 8000 }),
      label: mkOption({ type: types.str, default: name }),
      tags: mkOption({ type: types.listOf(types.str), default: [] }),
    },
  }));
  return {
    options: { bench: { m${i}: {
${decls}
    } } },
    config: mkMerge([
${definitions(i, n).map((d) => `      ${ts(d)},`).join('\n')}
    ]),
  };
};
`;
}

function nixModule(i: number, n: number): string {
  const decls = declarations(i)
    .map(([name, , x]) => `    ${name} = ${x};`)
    .join('\n');
  return `# Generated by bench/eval-gen.ts.
{ lib, config, ... }:
let
  inherit (lib) mkOption types mkDefault mkForce mkIf mkMerge mkBefore mkAfter;
  item = types.submodule ({ name, ... }: {
    options = {
      port = mkOption { type = types.port; default = 8000; };
      label = mkOption { type = types.str; default = name; };
      tags = mkOption { type = types.listOf types.str; default = [ ]; };
    };
  });
in
{
  options.bench.m${i} = {
${decls}
  };
  config = mkMerge [
${definitions(i, n).map((d) => `    (${nix(d)})`).join('\n')}
  ];
}
`;
}

export interface GeneratedSet {
  /** The cairn configuration importing every TypeScript module. */
  config: string;
  /** The Nix expression: `nixpkgsLib` (a string argument) → config.bench. */
  nix: string;
}

/** Writes a file only when its content differs: unchanged files keep their times (and cairn's compiled copies stay current). */
function put(file: string, text: string): void {
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return;
  writeFileSync(file, text);
}

/** Writes the set of n modules into dir (ts/ and nix/ below it), replacing other files there. */
export function generateEvalSet(dir: string, n = 1000): GeneratedSet {
  const tsDir = join(dir, 'ts');
  const nixDir = join(dir, 'nix');
  for (const d of [tsDir, nixDir]) {
    mkdirSync(d, { recursive: true });
    const wanted = new Set<string>(Array.from({ length: n }, (_, i) => `m${i}${d === tsDir ? '.ts' : '.nix'}`));
    for (const f of readdirSync(d)) if (!wanted.has(f) && f !== 'config.ts' && f !== 'default.nix') rmSync(join(d, f), { force: true });
  }
  for (let i = 0; i < n; i++) {
    put(join(tsDir, `m${i}.ts`), tsModule(i, n));
    put(join(nixDir, `m${i}.nix`), nixModule(i, n));
  }
  const names = Array.from({ length: n }, (_, i) => `m${i}`);
  const config = join(tsDir, 'config.ts');
  put(config, `// Generated by bench/eval-gen.ts.\nexport default {\n  imports: [\n${names.map((m) => `    './${m}.ts',`).join('\n')}\n  ],\n};\n`);
  const nixFile = join(nixDir, 'default.nix');
  put(
    nixFile,
    `# Generated by bench/eval-gen.ts.\n{ nixpkgsLib }:\nlet\n  lib = import nixpkgsLib;\nin\n(lib.evalModules {\n  modules = [\n${names.map((m) => `    ./${m}.nix`).join('\n')}\n  ];\n}).config.bench\n`,
  );
  return { config, nix: nixFile };
}
