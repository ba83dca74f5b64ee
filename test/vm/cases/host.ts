/**
 * What VM cases need on the host side: commands, free TCP ports for forwards, an SSH key pair.
 * (Not a case: case files end in `.test.ts`.)
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

/** A TCP port nobody listens on now (the kernel picks it). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * A folder of test fixtures (keys, certificates, encrypted secrets) made once by `make` and kept
 * beside the shared test store from run to run, as NixOS's tests use fixed snakeoil keys: a
 * machine whose configuration holds them is the same system each run, so the boot cache restores
 * its boot instead of booting it. Made aside and renamed into place whole (another case of the run
 * may make the same one first). `inputs` names what the files were made from (e.g. the public key
 * they were encrypted to): a kept folder made from other inputs, or one `valid` refuses (a
 * certificate about to end), is made again.
 */
export async function keptFixture(name: string, make: (dir: string) => Promise<void> | void, opts: { inputs?: string; valid?: (dir: string) => boolean } = {}): Promise<string> {
  const dir = join(tmpdir(), 'cairn-test-store-home', name);
  const stamp = join(dir, '.inputs');
  const inputs = opts.inputs ?? '';
  if (existsSync(dir) && ((existsSync(stamp) ? readFileSync(stamp, 'utf8') : '') !== inputs || opts.valid?.(dir) === false)) rmSync(dir, { recursive: true, force: true });
  if (!existsSync(dir)) {
    const made = mkdtempSync(join(tmpdir(), 'cairn-test-fixture-'));
    try {
      await make(made);
      if (inputs !== '') writeFileSync(join(made, '.inputs'), inputs);
      mkdirSync(dirname(dir), { recursive: true });
      renameSync(made, dir);
    } catch (err) {
      rmSync(made, { recursive: true, force: true });
      if (!existsSync(dir)) throw err;
      // (it is there now)
    }
  }
  // Its real path: the suite's TMPDIR is a folder of each run's, which reaches the shared test
  // store through a link, and a configuration records the paths of the files it names.
  return realpathSync(dir);
}

/** An ed25519 key pair without passphrase, kept from run to run (keptFixture). A test key, for test machines only; `key` is the private key's path. */
export async function sshKeyPair(comment: string, prefix = 'cairn-test-key-'): Promise<{ dir: string; key: string; publicKey: string }> {
  const dir = await keptFixture(
    `ssh-keys/${prefix}${comment.replace(/[^A-Za-z0-9.-]/g, '_')}`,
    (d) => run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', join(d, 'id')]).then(() => undefined),
  );
  const key = join(dir, 'id');
  return { dir, key, publicKey: readFileSync(`${key}.pub`, 'utf8').trim() };
}

const PROFILE = '/cairn/var/profiles/system';
/** The guest command `cairn switch|boot` runs once the closure is there: generation N of the system profile, made current. */
export const setProfile = (n: number, toplevel: string): string =>
  `ln -sfn ${toplevel} ${PROFILE}-${n}-link && ln -sfn system-${n}-link ${PROFILE}.tmp && mv -T ${PROFILE}.tmp ${PROFILE}`;
