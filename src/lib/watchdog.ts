import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { CairnError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { formatLocation } from './location.js';
import { originalLocation } from './sourcemap.js';

/**
 * Guards against configuration code that never returns or never settles.
 *
 * A TypeScript module in an endless loop blocks the main thread, so no timer there can fire. A
 * worker thread watches a heartbeat the main thread's event loop writes; when it has stopped for
 * the time limit, the worker pauses the main thread through the inspector, and if a frame of the
 * configuration's own code is on the stack it terminates that execution and says where it was.
 * cairn's own long synchronous work (never configuration code) is left alone. The worker starts
 * with the first TypeScript or JavaScript module, so YAML-only evaluations pay nothing.
 *
 * A module whose top-level await never settles leaves Node nothing to do: it would exit 13 with no
 * word. When the event loop empties while such an import is pending, the module is named instead.
 */

const DEFAULT_LIMIT_S = 60;

let limitMs = 0;
let started = false;
/** [0]: the main thread's heartbeat; [1]: how many times the watchdog has looked at what the main thread runs. */
let shared: Int32Array | undefined;
let watchdog: Worker | undefined;
/** The watchdog's reports received: one per look, when it is over. */
let reports = 0;
let rejectAborted: (err: CairnError) => void = () => {};

/** Rejects when configuration code was stopped (or can never finish): the CLI races its command with it. */
export const evaluationAborted = new Promise<never>((_, reject) => {
  rejectAborted = reject;
});
// Nothing may await it (a library caller): that is no unhandled rejection.
evaluationAborted.catch(() => {});

const pendingImports = new Set<string>();

/**
 * Turns the guards on (the CLI does; library callers decide for themselves). `seconds`: the limit
 * from the command line, else `CAIRN_EVAL_TIMEOUT`, else 60; 0 turns the time limit off.
 */
export function guardEvaluation(seconds?: number, env: NodeJS.ProcessEnv = process.env): void {
  let s = seconds;
  if (s === undefined && env.CAIRN_EVAL_TIMEOUT !== undefined && env.CAIRN_EVAL_TIMEOUT !== '') {
    s = Number(env.CAIRN_EVAL_TIMEOUT);
    if (!Number.isFinite(s) || s < 0) throw new CairnError(`CAIRN_EVAL_TIMEOUT must be a number of seconds (0: no limit), not \`${env.CAIRN_EVAL_TIMEOUT}'`);
  }
  s ??= DEFAULT_LIMIT_S;
  limitMs = Math.round(s * 1000);
  process.off('beforeExit', reportUnsettled);
  process.on('beforeExit', reportUnsettled);
}

/** Runs the import of a configuration module, known as pending until it settles. */
export async function watchedImport<T>(file: string, load: () => Promise<T>): Promise<T> {
  if (limitMs > 0 && !started) start();
  pendingImports.add(file);
  try {
    return await load();
  } finally {
    pendingImports.delete(file);
  }
}

function reportUnsettled(): void {
  // Stopping a loop leaves the event loop empty before the watchdog's word arrives: wait for it.
  if (shared && Atomics.load(shared, 1) > reports) {
    watchdog?.ref();
    return;
  }
  if (pendingImports.size === 0) return;
  const files = [...pendingImports].map((f) => `\`${formatLocation({ file: f })}'`);
  pendingImports.clear();
  rejectAborted(
    new CairnError(
      `The module ${files.join(', ')} never finished loading: a top-level \`await' in it waits for a promise that never settles (nothing is left that could settle it).`,
    ),
  );
}

/** cairn's own code: the bundle, its sources and modules (under vitest), its dependencies. */
const OWN_CODE = ['dist', 'src', 'modules', 'node_modules'].map((d) => pathToFileURL(join(projectRoot, d)).href + '/');

function start(): void {
  started = true;
  const beat = (shared = new Int32Array(new SharedArrayBuffer(8)));
  // Checks at a quarter of the limit (at most each second): a stall is seen within 1.5 limits.
  const periodMs = Math.max(50, Math.min(1000, Math.floor(limitMs / 4)));
  setInterval(() => Atomics.add(beat, 0, 1), periodMs).unref();
  let worker: Worker;
  try {
    // Sharing the environment and not piping the worker's output halves what starting it costs here.
    worker = new Worker(WATCHDOG, {
      eval: true,
      env: SHARE_ENV,
      stdin: false,
      stdout: true,
      stderr: true,
      trackUnmanagedFds: false,
      workerData: { beat: beat.buffer, limitMs, periodMs, own: OWN_CODE },
    });
  } catch {
    return; // A Node without worker threads or an inspector: no time limit.
  }
  worker.on('error', () => {});
  worker.on('message', (m: { url: string; line: number; column: number } | null) => {
    reports++;
    worker.unref();
    if (!m) return;
    const where = m.url.startsWith('file:') ? formatLocation(originalLocation({ file: fileURLToPath(m.url), line: m.line, column: m.column })) : m.url;
    rejectAborted(
      new CairnError(
        `evaluation time limit: the configuration code at \`${where}' ran for more than ${limitMs / 1000} s without returning (an endless loop?) and was stopped. ` +
          'If it only needs longer, raise the limit with --eval-timeout SECONDS or CAIRN_EVAL_TIMEOUT=SECONDS (0: no limit).',
      ),
    );
  });
  // After the listeners: adding one refs the worker again, and the watchdog must not keep cairn running.
  worker.unref();
  watchdog = worker;
}

/** The watchdog thread (CommonJS, evaluated as a string: the CLI is one bundle). */
const WATCHDOG = `
const { Session } = require('node:inspector');
const { parentPort, workerData } = require('node:worker_threads');
const { limitMs, periodMs, own } = workerData;
const beat = new Int32Array(workerData.beat);
const session = new Session();
session.connectToMainThread();
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params || {}, (err, r) => (err ? reject(err) : resolve(r))));
let last = Atomics.load(beat, 0);
let since = Date.now();
let checking = false;
setInterval(() => {
  const now = Atomics.load(beat, 0);
  if (now !== last || checking) { last = now; since = Date.now(); return; }
  if (Date.now() - since < limitMs) return;
  checking = true;
  Atomics.add(beat, 1, 1);
  let stopped = null;
  check().then((user) => { stopped = user || null; }, () => {}).finally(() => {
    checking = false;
    last = Atomics.load(beat, 0);
    since = Date.now();
    parentPort.postMessage(stopped);
  });
}, periodMs);

// Pauses the main thread to see what runs there; only configuration code is stopped.
async function check() {
  const urls = new Map();
  const onScript = (m) => urls.set(m.params.scriptId, m.params.url);
  session.on('Debugger.scriptParsed', onScript);
  const paused = new Promise((resolve) => session.once('Debugger.paused', (m) => resolve(m.params.callFrames)));
  try {
    await post('Debugger.enable');
    await post('Debugger.pause');
    const frames = (await paused).map((f) => ({ url: f.url || urls.get(f.location.scriptId) || '', line: f.location.lineNumber + 1, column: f.location.columnNumber + 1 }));
    const user = frames.find((f) => f.url.startsWith('file:') && !own.some((o) => f.url.startsWith(o)));
    const terminated = user ? post('Runtime.terminateExecution') : undefined;
    await post('Debugger.resume');
    if (terminated) await terminated;
    return user;
  } finally {
    session.off('Debugger.scriptParsed', onScript);
    await post('Debugger.disable').catch(() => {});
  }
}
`;
