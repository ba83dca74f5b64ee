/**
 * `system.checks`: generated files checked by the programs that will read them, at build time.
 *
 * The programs are the system's own: the Debian packages unpacked in the store, run through the
 * closure's dynamic loader with a library path over the packages (the loader's cache is ignored,
 * so no library of the building machine is used). Nothing is installed on the building machine.
 *
 * A check that passed leaves a mark in `<cairn home>/cache/checks`, named by the hash of all it
 * depends on (program, arguments, files' texts, the packages' store paths, which name their
 * content): it does not run again, so an unchanged configuration runs no check. The marks are a
 * cache: losing one runs its check once more. They are not store paths, whose registration
 * syncs the file system, the larger part of a check's cost.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnError } from '../errors.js';
import { findOption, parseOptionPath } from '../eval/inspect.js';
import type { CheckSpec } from '../eval/spec.js';
import { formatLocation, modulesPath, type Evaluation } from '../lib/index.js';
import { sha256Hex } from '../cache.js';
import { canonicalJson, removeTree, type Store } from '../store/index.js';
import { checkRelative } from './tree.js';

/** What a package is to the runner: its name and its logical store path. */
export interface StorePackage {
  name: string;
  storePath: string;
}

const LOADER = 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2';
/** Unprivileged ids a root build runs checks as: the checkers must not act on the building machine. */
const NOBODY = 65534;
/** Longest a check may take; a checker that waits for something hangs no build. */
const TIMEOUT_MS = 60_000;

/** Runs programs of unpacked packages with the packages' own loader and libraries. */
export interface ProgramRunner {
  loader: string;
  /** Folders the loader searches, physical paths in the store. */
  libraryPath: string;
  /** The physical file of a program (`usr/sbin/sshd`) in one of the packages, or undefined. */
  find(program: string): string | undefined;
  /** `[file, argv]` to spawn that runs `program` through the loader (argv[0] is the program's name). */
  command(program: string, args: string[]): [string, string[]];
}

/**
 * A runner over `packages` (logical paths in `store`); a CairnError if they hold no dynamic loader.
 * With `storeDir`, the commands name the store's folder so (e.g. `/proc/self/fd/3`), not as it is.
 */
export function programRunner(store: Store, packages: StorePackage[], storeDir?: string): ProgramRunner {
  const dirs = packages.map((p) => store.toPhysical(p.storePath));
  const as = (p: string): string => (storeDir === undefined ? p : storeDir + p.slice(store.dir.length));
  const loaderFile = dirs.map((d) => join(d, LOADER)).find(existsSync);
  if (!loaderFile) throw new CairnError(`no dynamic loader (${LOADER}) among the packages ${packages.map((p) => p.name).join(' ')}`);
  const loader = as(loaderFile);
  // Multiarch libraries, and private ones a RUNPATH names, which the loader reads as the building
  // machine's paths: sudo's /usr/libexec/sudo, systemd's libsystemd-shared in …/x86_64-linux-gnu/systemd.
  const libraryPath = packages
    .flatMap((p, i) => ['usr/lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu/systemd', `usr/libexec/${p.name}`].map((l) => join(dirs[i]!, l)))
    .filter(existsSync)
    .map(as)
    .join(':');
  const find = (program: string): string | undefined => dirs.map((d) => join(d, program)).find(existsSync);
  const command = (program: string, args: string[]): [string, string[]] => {
    const file = find(program);
    if (!file) throw new CairnError(`${program} is in none of the packages`);
    return [loader, ['--inhibit-cache', '--library-path', libraryPath, '--argv0', program.split('/').pop()!, as(file), ...args]];
  };
  return { loader, libraryPath, find, command };
}

/** A check as declared by `system.checks.<name>`. */
/** What a check depends on; its hash names the check's mark. */
interface CheckArgs {
  program: string;
  args: string[];
  setup: string[][];
  files: Record<string, string>;
  /** Package name → logical store path: what the runner loads programs and libraries from. */
  packages: Record<string, string>;
}

/** A checker refused its files (or could not run): its output, with the scratch folder's path taken out. */
class CheckFailure extends Error {
  constructor(
    readonly command: string,
    readonly output: string,
  ) {
    super(`${command} failed:\n${output}`);
  }
}

/** The scratch folder's path as the user sees it: the file names alone. */
function tidy(output: string, dir: string): string {
  const text = output
    .replace(/\r\n/g, '\n')
    .split(`${dir}/`)
    .join('')
    .split(dir)
    .join('.')
    // No terminal control sequences from a file's text.
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?')
    .trimEnd();
  return text.length > 4000 ? `${text.slice(0, 4000)}\n…` : text;
}

function run(file: string, argv: string[], opts: { cwd: string; uid?: number; storeFd: number }): Promise<{ status: number | null; output: string; error?: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      env: { LC_ALL: 'C', HOME: opts.cwd, PATH: '/nonexistent' },
      stdio: ['ignore', 'pipe', 'pipe', opts.storeFd],
      timeout: TIMEOUT_MS,
      ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.uid }),
    });
    let output = '';
    // The message shows the start; a checker that writes without end fills no memory.
    const take = (b: Buffer): void => {
      if (output.length < 65_536) output += b.toString('utf8');
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    child.on('error', (err) => resolvePromise({ status: null, output, error: err.message }));
    child.on('close', (status, signal) => resolvePromise({ status, output, ...(signal ? { error: signal === 'SIGTERM' ? `did not finish in ${TIMEOUT_MS / 1000} s` : `killed by ${signal}` } : {}) }));
  });
}

/** Runs one check: resolves if the programs accept the files, else rejects with a CheckFailure. */
async function runCheck(store: Store, a: CheckArgs): Promise<void> {
  // The store's folder is the checker's descriptor 3: reached so, it needs no search permission on
  // the folders above it, which an unprivileged checker lacks when the store is below /root.
  // Without /proc (some containers), the store's own path is all there is.
  const runner = programRunner(store, Object.entries(a.packages).map(([name, storePath]) => ({ name, storePath })), existsSync('/proc/self/fd') ? '/proc/self/fd/3' : undefined);
  const uid = process.getuid?.() === 0 ? NOBODY : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cairn-check-'));
  const storeFd = openSync(store.dir, 'r');
  try {
    const sub = (s: string): string => s.split('@dir@').join(dir);
    for (const [name, text] of Object.entries(a.files)) writeFileSync(join(dir, name), sub(text), { mode: 0o600 });
    if (uid !== undefined) {
      chmodSync(dir, 0o700);
      chownSync(dir, uid, uid);
      for (const name of Object.keys(a.files)) chownSync(join(dir, name), uid, uid);
    }
    for (const [program, ...args] of [...a.setup, [a.program, ...a.args]]) {
      // The program and its first argument, by convention the mode that checks (`sshd -t`, `visudo -c`).
      const shown = [program!.split('/').pop()!, ...args.slice(0, 1)].join(' ');
      const [file, argv] = runner.command(program!, args.map(sub));
      const r = await run(file, argv, { cwd: dir, uid, storeFd });
      if (r.status !== 0 || r.error) throw new CheckFailure(shown, tidy([r.output, r.error ?? ''].filter(Boolean).join('\n'), dir));
    }
  } finally {
    closeSync(storeFd);
    removeTree(dir);
  }
}

/**
 * `option defined at file:line, …` for the options a check names (paths as `cairn option` takes
 * them: `services.nginx.virtualHosts."a.example".extraConfig`); the user's definitions before cairn's own.
 */
function sources(ev: Evaluation, options: string[]): string[] {
  return options.flatMap((o) => {
    try {
      const found = findOption(ev, parseOptionPath(o));
      if ('namespace' in found || !found.definitions) return [];
      const locs = found.definitions().map((d) => d.loc);
      const users = locs.filter((l) => !l.file.startsWith(modulesPath + '/'));
      const shown = (users.length > 0 ? users : locs).map(formatLocation);
      return shown.length > 0 ? [`from ${o} defined at ${[...new Set(shown)].join(', ')}`] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Runs the enabled `system.checks` of an evaluation against the system's packages, in parallel;
 * a failing check is a CairnError with the checker's output and the options it names.
 */
export async function runChecks(
  store: Store,
  ev: Evaluation,
  checks: Record<string, CheckSpec>,
  packages: StorePackage[],
  progress: (message: string) => void = () => {},
): Promise<void> {
  const byName = Object.fromEntries(packages.map((p) => [p.name, p.storePath]));
  const marks = join(store.home, 'cache', 'checks');
  const todo = Object.entries(checks)
    .filter(([, c]) => c.enable)
    .map(([name, c]) => {
      const pkg = c.package;
      if (!byName[pkg]) throw new CairnError(`system.checks.${name}: the package ${pkg} is not one of the system's packages (add it to environment.systemPackages)`);
      // Programs of the packages only: a `..` would reach the building machine's.
      for (const [program] of [...c.setup, [c.program]]) checkRelative(program ?? '', `system.checks.${name}`);
      const args: CheckArgs = { program: c.program, args: c.args, setup: c.setup, files: c.files, packages: byName };
      return { name, c, args, mark: join(marks, sha256Hex(`cairn-check:v1:${canonicalJson(args, `system.checks.${name}`)}`)) };
    })
    // Those that passed before have their mark.
    .filter((t) => !existsSync(t.mark));
  if (todo.length === 0) return;
  progress(`checking ${todo.map((t) => t.name).join(', ')}`);
  mkdirSync(marks, { recursive: true });
  // All of them, so that one build names every refused file.
  const results = await Promise.allSettled(
    todo.map(async ({ name, c, args, mark }) => {
      try {
        await runCheck(store, args);
      } catch (err) {
        if (err instanceof CheckFailure) {
          const files = Object.keys(c.files);
          const what = files.length > 0 ? `the generated ${files.join(', ')}` : 'the system';
          throw new CairnError([`${name}: \`${err.command}\` refused ${what}:`, err.output, ...sources(ev, c.options)].join('\n'), { cause: err });
        }
        // E.g. a program in none of the packages.
        if (err instanceof CairnError) throw new CairnError(`system.checks.${name}: ${err.message}`, { cause: err });
        throw err;
      }
      writeFileSync(mark, '');
    }),
  );
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failed.length === 1) throw failed[0];
  if (failed.length > 1) {
    if (failed.every((e) => e instanceof CairnError)) throw new CairnError(failed.map((e) => (e as Error).message).join('\n\n'), { cause: failed[0] });
    throw failed.find((e) => !(e instanceof CairnError));
  }
}
