import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { evalModulesSync, type Evaluation, type ModuleInput } from '../../src/lib/index.js';

/** Evaluates in-memory modules. */
export function evaluate(...modules: ModuleInput[]): Evaluation {
  return evalModulesSync({ modules });
}

/** The config of in-memory modules (merged lazily: errors show when a value is read). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function configOf(...modules: ModuleInput[]): any {
  return evaluate(...modules).config;
}

/** The message of the error `fn` throws; fails the test when it throws nothing. */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error, but none was thrown');
}

/** Like errorOf, for promises. */
export async function asyncErrorOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error, but none was thrown');
}

/** Fully reads a value, forcing every lazy attribute (as printing it would). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function deep(v: unknown): any {
  return JSON.parse(JSON.stringify(v));
}

/**
 * A scratch folder for configuration files, with a CAIRN_HOME of its own (module bundles are cached
 * there) for the test file's duration; both removed, and CAIRN_HOME restored, afterwards.
 */
export function scratchWithHome(prefix: string): { dir: () => string } {
  let dir = '';
  let home = '';
  let savedHome: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    home = mkdtempSync(join(tmpdir(), `${prefix}-home-`));
    savedHome = process.env.CAIRN_HOME;
    process.env.CAIRN_HOME = home;
  });
  afterAll(() => {
    if (savedHome === undefined) delete process.env.CAIRN_HOME;
    else process.env.CAIRN_HOME = savedHome;
    for (const d of [dir, home]) if (d) rmSync(d, { recursive: true, force: true });
  });
  return { dir: () => dir };
}
