/**
 * Errors a user can cause (bad configuration, bad input, a tampered download).
 * The CLI prints their message without a stack trace (unless --show-trace) and exits 1.
 * Anything else that escapes is a bug in cairn and is shown with its stack.
 */
export class CairnError extends Error {
  readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CairnError';
    this.exitCode = options?.exitCode ?? 1;
  }
}

/** A command line that does not make sense: exit code 2, as usage errors have. */
export class UsageError extends CairnError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** A full file system (or a full quota): the user's to fix, not a bug in cairn. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
