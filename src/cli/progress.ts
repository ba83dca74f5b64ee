/**
 * Progress of long commands on stderr: one line rewritten in place on a terminal; outside one,
 * stage lines only (no per-package chatter), so logs and `--json` consumers stay quiet.
 */
export interface ProgressReporter {
  progress: (message: string) => void;
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
  return {
    progress: (m) => {
      if (tty) {
        stream.write(`\r\x1b[K${m}`);
        shown = true;
      } else if (!m.startsWith('unpacking ')) stream.write(`${m}\n`);
    },
    warn: (m) => {
      clear();
      stream.write(`warning: ${m}\n`);
    },
    done: clear,
  };
}
