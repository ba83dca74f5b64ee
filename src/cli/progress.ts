/**
 * Progress of long commands on stderr: one line rewritten in place on a terminal; outside one,
 * stage lines only (no per-package chatter), so logs and `--json` consumers stay quiet.
 */
export interface ProgressReporter {
  progress: (message: string) => void;
  /** Progress shown on a terminal only (counters that would flood a log). */
  detail: (message: string) => void;
  warn: (message: string) => void;
  /** Clears the progress line (call before printing results). */
  done: () => void;
}

export function progressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const tty = Boolean(stream.isTTY);
  let shown = false;
  const clear = (): void => {
    if (tty && shown) stream.write('\r\x1b[K');
    shown = false;
  };
  const detail = (m: string): void => {
    if (!tty) return;
    stream.write(`\r\x1b[K${m}`);
    shown = true;
  };
  return {
    progress: (m) => {
      if (tty) detail(m);
      else if (!m.startsWith('unpacking ')) stream.write(`${m}\n`);
    },
    detail,
    warn: (m) => {
      clear();
      stream.write(`warning: ${m}\n`);
    },
    done: clear,
  };
}
