/**
 * apt as the oracle for cairn's resolver: apt-get with a private state folder (nothing of the
 * host's package state or configuration leaks in) resolves the same request with
 * `--no-install-recommends`, and its simulated `Inst` lines give the closure with versions.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Repository } from '../../src/debian/sources.js';

/** A private apt "root" for the given repositories; `update` runs once per folder. */
export async function aptOracle(dir: string, repos: Repository[]): Promise<(pkgs: string[], recommends?: boolean) => Promise<Map<string, string>>> {
  for (const d of ['state/lists/partial', 'cache/archives/partial', 'etc/apt.conf.d', 'etc/preferences.d', 'etc/trusted.gpg.d']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'status'), '');
  writeFileSync(join(dir, 'sources.list'), repos.map((r) => `deb [arch=${r.architecture} signed-by=${r.keyring}] ${r.uri} ${r.suite} ${r.components.join(' ')}\n`).join(''));
  // APT_CONFIG is read before the host's apt.conf.d, so pointing Parts at an empty folder keeps host settings out.
  const conf = join(dir, 'apt.conf');
  writeFileSync(conf, [
    `Dir::Etc::Parts "${join(dir, 'etc/apt.conf.d')}";`,
    `Dir::Etc::Preferences "${join(dir, 'etc/preferences')}";`,
    `Dir::Etc::PreferencesParts "${join(dir, 'etc/preferences.d')}";`,
    `Dir::Etc::SourceList "${join(dir, 'sources.list')}";`,
    `Dir::Etc::SourceParts "/dev/null";`,
    `Dir::Etc::Trusted "${join(dir, 'etc/trusted.gpg')}";`,
    `Dir::Etc::TrustedParts "${join(dir, 'etc/trusted.gpg.d')}";`,
    `Dir::State "${join(dir, 'state')}";`,
    `Dir::State::status "${join(dir, 'status')}";`,
    `Dir::Cache "${join(dir, 'cache')}";`,
    `APT::Architecture "amd64";`,
    `APT::Architectures { "amd64"; };`,
    `APT::Sandbox::User "root";`,
    `Acquire::Languages "none";`,
    '',
  ].join('\n'));
  const env = { APT_CONFIG: conf, LC_ALL: 'C' };
  if (!existsSync(join(dir, 'updated'))) {
    await execa('apt-get', ['-q', 'update'], { env });
    writeFileSync(join(dir, 'updated'), '');
  }
  return async (pkgs, recommends = false) => {
    const r = await execa('apt-get', ['-s', 'install', recommends ? '--install-recommends' : '--no-install-recommends', ...pkgs], { env });
    const out = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const m = /^Inst (\S+) \((\S+) /.exec(line);
      if (m) out.set(m[1]!.replace(/:amd64$/, ''), m[2]!);
    }
    return out;
  };
}
