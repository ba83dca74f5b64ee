import { homedir } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout (or installed package) root: where modules/ (with their templates) and images/ live. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), existsSync(new URL('../package.json', import.meta.url)) ? '..' : '../..');

/** cairn's version, from its package.json (yargs would look for one from the working directory up). */
export function cairnVersion(): string {
  return (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Where a built system sees its store. Paths written into store objects always use this. */
export const LOGICAL_STORE = '/cairn/store';

/** The system profile of a cairn machine (what its boot entries list). */
export const SYSTEM_PROFILE = '/cairn/var/profiles/system';

/** Whether this process runs on a booted cairn system. */
export function onCairnSystem(): boolean {
  return existsSync('/run/current-system') && existsSync(LOGICAL_STORE);
}

/**
 * cairn's state on the building machine: $CAIRN_HOME, else /cairn on a cairn system
 * (one that has /cairn/store), else ~/.local/share/cairn.
 */
export function cairnHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CAIRN_HOME) return resolve(env.CAIRN_HOME);
  if (existsSync(LOGICAL_STORE)) return '/cairn';
  return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'cairn');
}

