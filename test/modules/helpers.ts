import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { evalConfigFile, evalSystem } from '../../src/eval/index.js';
import { CairnError } from '../../src/errors.js';

export const root = resolve(import.meta.dirname, '../..');
export const serverExample = join(root, 'examples/server.yaml');

/** An /etc entry as the evaluated `environment.etc` holds it. */
export interface Etc {
  enable: boolean;
  target: string;
  text: string | null;
  symlink: string | null;
  mode: string;
}

/** Evaluates modules (values or files) with the built-in ones; the config. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function evalConfig(...modules: unknown[]): Promise<any> {
  return (await evalSystem(modules as never[])).config;
}

/** The message of the error a configuration is refused with (evaluated whole); fails if it is accepted or fails otherwise. */
export async function refusal(...modules: unknown[]): Promise<string> {
  try {
    JSON.stringify(await evalConfig(...modules));
  } catch (err) {
    if (!(err instanceof CairnError)) throw err;
    return err.message;
  }
  throw new Error('not refused');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function evalServer(): Promise<any> {
  return (await evalConfigFile(serverExample)).config;
}

/** The text of an /etc entry, failing when it is missing or not a text. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function etcText(config: any, name: string): string {
  const e = config.environment.etc[name] as Etc | undefined;
  if (!e || e.text === null) throw new Error(`no text entry environment.etc."${name}"`);
  return e.text;
}

/** Whether a host command exists (tests that need it are skipped otherwise, and say which package). */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status === 0;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `cairn-${prefix}-`));
}

/**
 * Writes the /etc of an evaluated configuration below `dir/etc` as the running system would
 * have it: texts as files (executable when their mode says so), symlink entries as links.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function writeEtc(config: any, dir: string): void {
  for (const e of Object.values(config.environment.etc as Record<string, Etc>)) {
    if (!e.enable) continue;
    const path = join(dir, 'etc', e.target);
    mkdirSync(dirname(path), { recursive: true });
    if (e.symlink !== null) symlinkSync(e.symlink, path);
    else if (e.text !== null) {
      writeFileSync(path, e.text);
      chmodSync(path, /^0?[0-7]{3,4}$/.test(e.mode) ? parseInt(e.mode, 8) : 0o444);
    }
  }
}

/**
 * A root for `systemd-analyze verify --root`: merged /usr links, the host's packaged units, and the
 * configuration's /etc. Programs units run must exist below the root: `stub(path)` adds one.
 */
export function fakeRoot(): { dir: string; stub: (path: string) => void } {
  const dir = tempDir('root');
  mkdirSync(join(dir, 'usr/lib/systemd'), { recursive: true });
  for (const d of ['bin', 'sbin']) mkdirSync(join(dir, 'usr', d), { recursive: true });
  for (const d of ['bin', 'sbin', 'lib']) symlinkSync(`usr/${d}`, join(dir, d));
  if (existsSync('/usr/lib/systemd/system')) cpSync('/usr/lib/systemd/system', join(dir, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  const stub = (path: string) => {
    const p = join(dir, path);
    if (existsSync(p)) return;
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, '#!/bin/sh\nexit 0\n');
    chmodSync(p, 0o755);
  };
  return { dir, stub };
}
