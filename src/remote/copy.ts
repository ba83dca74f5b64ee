/**
 * Copying a closure to a deploy target: the target says which paths it has (valid by the store's
 * rule); the others go as one tar stream, owned by root whoever owns this store, into
 * scripts/remote/receive.sh, which makes each path valid whole or not at all.
 */
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { execa } from 'execa';
import { CairnError } from '../errors.js';
import { referencesFirst, type Store } from '../store/index.js';
import { remoteError, remoteScript, type RemoteRunner } from './ssh.js';

/** Checks that the target can be deployed to (a cairn system, root); returns which of `bases` are valid there. */
export async function validOnTarget(runner: RemoteRunner, bases: string[] = []): Promise<Set<string>> {
  const r = await runner.run(remoteScript(runner, 'query.sh'), { input: bases.map((b) => `${b}\n`).join('') });
  if (r.exitCode !== 0) throw remoteError(runner, 'checking the target', r);
  return new Set(r.stdout.split('\n').filter((l) => l !== ''));
}

export interface CopyOptions {
  /** Bytes sent so far and (roughly: tar adds headers) in all. */
  onProgress?: (sent: number, total: number) => void;
  /** Ends the transfer at once, as a dropped connection would. */
  signal?: AbortSignal;
}

export interface CopyResult {
  /** Logical paths sent, references first. */
  copied: string[];
  /** Their size (narSize). */
  bytes: number;
}

/** Makes the closure of `paths` valid on the target. */
export async function copyClosure(store: Store, runner: RemoteRunner, paths: string[], opts: CopyOptions = {}): Promise<CopyResult> {
  const closure = referencesFirst(store.closure(paths), (p) => store.pathInfo(p).references);
  const have = await validOnTarget(runner, closure.map((p) => store.parse(p).base));
  const missing = closure.filter((p) => !have.has(store.parse(p).base));
  const bytes = missing.reduce((n, p) => n + store.pathInfo(p).narSize, 0);
  if (missing.length === 0) return { copied: [], bytes: 0 };

  // What the stream carries besides the trees (see receive.sh); `order` last, so it arrives last.
  const stage = mkdtempSync(join(tmpdir(), 'cairn-send-'));
  try {
    mkdirSync(join(stage, 'info'));
    const bases = missing.map((p) => store.parse(p).base);
    let setuid = '';
    missing.forEach((p, i) => {
      const info = store.pathInfo(p);
      writeFileSync(join(stage, 'info', `${bases[i]}.json`), JSON.stringify(info, null, 1) + '\n');
      for (const s of info.setuid ?? []) setuid += `${(s.mode & 0o7777).toString(8)}\0${bases[i]}/${s.path}\0`;
    });
    writeFileSync(join(stage, 'setuid'), setuid);
    writeFileSync(join(stage, 'order'), bases.map((b) => `${b}\n`).join(''));

    const tar = execa('tar', ['--owner=0', '--group=0', '--numeric-owner', '-C', store.dir, '-cf', '-', ...bases, '-C', stage, 'info', 'setuid', 'order'], {
      stdout: 'pipe',
      buffer: { stdout: false },
      reject: false,
    });
    let sent = 0;
    let shown = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        if (sent - shown >= 1 << 20) {
          shown = sent;
          opts.onProgress?.(sent, bytes);
        }
        cb(null, chunk);
      },
    });
    tar.stdout.pipe(counter);
    const received = await runner.run(remoteScript(runner, 'receive.sh'), { input: counter, signal: opts.signal });
    // tar ended first: if it failed, that is why the stream broke off. Otherwise a receiver that
    // gave up left it blocked on a full pipe, its output unread.
    const packedFirst = tar.exitCode !== null;
    if (received.exitCode !== 0 && !packedFirst) {
      tar.stdout.destroy();
      tar.kill();
    }
    const packed = await tar;
    // Store files never change, but another build hardlinking one (a new sw layer) changes its
    // ctime, which GNU tar reports as "file changed as we read it" (exit 1): harmless here.
    const onlyChanged = packed.exitCode === 1 && String(packed.stderr).split('\n').every((l) => l.trim() === '' || / file changed as we read it$/.test(l));
    if (packed.exitCode !== 0 && !onlyChanged && (packedFirst || received.exitCode === 0)) throw new CairnError(`packing store paths for ${runner.name} failed: ${String(packed.stderr).trim()}`);
    if (received.exitCode !== 0) throw remoteError(runner, `receiving ${missing.length} store path${missing.length === 1 ? '' : 's'}`, received);
    opts.onProgress?.(sent, bytes);
    return { copied: missing, bytes };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
