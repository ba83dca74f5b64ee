/**
 * Python's compiled modules, made at build time. Debian's Python packages ship sources only and
 * compile them in their maintainer scripts (py3compile), which cairn does not run; the store is
 * read-only, so without this every Python program compiled each module it imports at every start
 * and kept nothing (under emulation: 10–12 s for a `fail2ban-client ping`, 3 s with them).
 *
 * One layer of sw per package that ships modules for an interpreter of the system: beside each
 * `usr/lib/python3.N/…/x.py` and `usr/lib/python3/dist-packages/…/x.py`, the
 * `__pycache__/x.cpython-3N.pyc` that Python 3.N looks for there, compiled by that interpreter
 * (dist-packages gets a file for each). The files are "unchecked-hash" pycs (PEP 552): Python
 * loads them without comparing them with their source, which in the store never changes under
 * them. A layer per package keeps the work to the packages a change brings.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { registerBuilder, type Derivation, type Store } from '../store/index.js';
import { programRunner, type StorePackage } from './checks.js';

/** Where Debian's packages keep modules for every Python 3 (`dist-packages`). */
const DIST_PACKAGES = 'usr/lib/python3/dist-packages';

/** The system's interpreter: its version and the packages it runs from. */
interface Interpreter {
  version: string;
  /** The interpreter, its standard library, and the libraries it is linked with. */
  packages: StorePackage[];
}

/** The folders of a package whose modules `version`'s interpreter imports. */
const moduleDirs = (version: string): string[] => [`usr/lib/python${version}`, DIST_PACKAGES];

/** The interpreters among `pkgs` (Debian's `python3.N-minimal`) that have what they run from. */
export function systemInterpreters(pkgs: StorePackage[]): Interpreter[] {
  const versions = pkgs.map((p) => /^python(3\.\d+)-minimal$/.exec(p.name)?.[1]).filter((v): v is string => v !== undefined);
  return [...new Set(versions)].sort().flatMap((version) => {
    const names = new Set([`python${version}-minimal`, `libpython${version}-minimal`, `libpython${version}-stdlib`, 'libc6', 'zlib1g']);
    const packages = pkgs.filter((p) => names.has(p.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
    return packages.length === names.size ? [{ version, packages }] : [];
  });
}

/** One derivation per interpreter and package of `pkgs` with modules for it (none without an interpreter). */
export function bytecodeDerivations(store: Store, pkgs: StorePackage[]): Derivation[] {
  return systemInterpreters(pkgs).flatMap((interpreter) =>
    pkgs
      // Only whether there is one: planning runs at every build, cached or not.
      .filter((p) => hasModules(store.toPhysical(p.storePath), interpreter.version))
      .map((p) => ({
        name: `python${interpreter.version}-bytecode-${p.name}`,
        builder: 'cairn:python-bytecode',
        args: { package: p, interpreter },
        inputs: [...new Set([p.storePath, ...interpreter.packages.map((i) => i.storePath)])].sort(),
      })),
  );
}

/** The module sources of the package at `root` for `version`'s interpreter, relative to `root`. */
export function moduleSources(root: string, version: string): string[] {
  return moduleDirs(version).flatMap((d) => [...sources(root, d)]);
}

/** Whether the package at `root` has a module for `version`'s interpreter (stops at the first). */
const hasModules = (root: string, version: string): boolean => moduleDirs(version).some((d) => !sources(root, d).next().done);

/** The package's module sources under `rel`, as paths relative to the package, in name order. */
function* sources(root: string, rel: string): Generator<string> {
  if (!existsSync(join(root, rel))) return;
  const walk = function* (dir: string): Generator<string> {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const path = `${dir}/${name}`;
      const st = lstatSync(join(root, path));
      if (st.isDirectory()) yield* walk(path);
      else if (name.endsWith('.py') && (st.isFile() || (st.isSymbolicLink() && linkedModule(root, path)))) yield path;
    }
  };
  yield* walk(rel);
}

/**
 * Whether the link at `path` names a module file of the package itself (imported under the link's
 * name). An absolute link points into the running system (sitecustomize.py → /etc/python3.N/…), a
 * file the administrator may change and the build must not read from the building machine.
 */
function linkedModule(root: string, path: string): boolean {
  const target = readlinkSync(join(root, path));
  if (isAbsolute(target)) return false;
  const real = resolve(root, dirname(path), target);
  return real.startsWith(`${root}/`) && existsSync(real) && statSync(real).isFile();
}

/** Reads "source<TAB>name as the system sees it" lines, writes each pyc under argv[1]; prints the count. */
const COMPILE = `
import os, sys, py_compile
out, count = sys.argv[1], 0
for line in sys.stdin:
    src, name = line.rstrip("\\n").split("\\t")
    folder, file = os.path.split(name)
    cfile = out + folder + "/__pycache__/" + file[:-3] + "." + sys.implementation.cache_tag + ".pyc"
    try:
        py_compile.compile(src, cfile=cfile, dfile=name, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        count += 1
    except py_compile.PyCompileError as e:
        # A module Python cannot compile (one for Python 2) fails when imported, as on Debian.
        print("skipped: " + name + ": " + str(e.exc_value).splitlines()[0], file=sys.stderr)
print(count)
`;

registerBuilder('cairn:python-bytecode', async (ctx) => {
  const { package: pkg, interpreter } = ctx.drv.args as { package: StorePackage; interpreter: Interpreter };
  const { version } = interpreter;
  const physical = (name: string): string => ctx.store.toPhysical(interpreter.packages.find((p) => p.name === name)!.storePath);
  const root = ctx.store.toPhysical(pkg.storePath);
  const files = moduleSources(root, version);
  mkdirSync(ctx.out);
  // The standard library is split in two packages: its core is found as the interpreter's home
  // (it would look in the building machine's /usr otherwise), the rest on the module path.
  const r = await execa(...programRunner(ctx.store, interpreter.packages).command(`usr/bin/python${version}`, ['-S', '-B', '-c', COMPILE, ctx.out]), {
    input: files.map((f) => `${join(root, f)}\t/${f}\n`).join(''),
    env: { LC_ALL: 'C.UTF-8', PYTHONHOME: join(physical(`libpython${version}-minimal`), 'usr'), PYTHONPATH: join(physical(`libpython${version}-stdlib`), `usr/lib/python${version}`) },
    extendEnv: false,
    reject: false,
  });
  if (r.exitCode !== 0) throw new CairnError(`compiling ${pkg.name}'s Python modules with python${version} failed (exit ${r.exitCode}): ${r.stderr}`);
  ctx.log(`${r.stdout.trim()} of ${files.length} modules compiled${r.stderr ? `\n${r.stderr}` : ''}`);
});
