import { sep } from 'node:path';
import { CairnError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { formatLocation, stackFrames, type SourceLocation } from './location.js';
import { originalLocation } from './sourcemap.js';

/** cairn's own code (the CLI bundle, its sources under test, its modules) and its dependencies. */
function isCairnCode(file: string): boolean {
  if (file.startsWith('node:') || file.includes(`${sep}node_modules${sep}`) || !file.startsWith(sep)) return true;
  return ['dist', 'src', 'modules'].some((d) => file.startsWith(`${projectRoot}${sep}${d}${sep}`));
}

/**
 * Where in a user's module an exception was thrown: the innermost frame of its stack outside cairn,
 * mapped from the cached bundle of a TypeScript module back to the `.ts` line.
 */
export function userFrame(err: unknown): SourceLocation | undefined {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return undefined;
  for (const frame of stackFrames(err.stack)) {
    // cairn's own bundle is not mapped: its source map is large, and it stays cairn's code.
    if (isCairnCode(frame.file)) continue;
    const loc = originalLocation(frame);
    if (!isCairnCode(loc.file)) return loc;
  }
  return undefined;
}

/** An exception overflowing the call stack: reported as infinite recursion, not as the user's throw. */
function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/.test(err.message);
}

/**
 * An exception a user's module code threw (in a module function, a getter, a default, an `apply`)
 * as a user's error: its message, the `.ts` position it came from and what was being evaluated.
 * The original error is kept as the cause, for --show-trace. Anything else is returned as it was.
 */
export function userCodeError(err: unknown, context?: () => string): unknown {
  if (err instanceof CairnError || isStackOverflow(err)) return err;
  const at = userFrame(err);
  if (!at) return err;
  const e = err as Error;
  const what = e.name && e.name !== 'Error' ? `${e.name}: ${e.message}` : e.message;
  const ctx = context?.();
  return new CairnError(`${formatLocation(at)}: ${what}${ctx ? `\n(${ctx})` : ''}`, { cause: err });
}

/** A stack trace with the frames of TypeScript modules' bundles mapped back to their sources. */
export function mappedStack(stack: string): string {
  return stack
    .split('\n')
    .map((line, i) => {
      if (i === 0) return line;
      const frame = stackFrames(`\n${line}`)[0];
      if (!frame) return line;
      const loc = originalLocation(frame);
      return loc === frame ? line : `${line} [${formatLocation(loc)}]`;
    })
    .join('\n');
}
