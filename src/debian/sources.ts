/**
 * Repositories: where Debian packages come from. cairn never names a mirror itself; by default it
 * uses the host's own apt configuration (so a local mirror or proxy a user set up is respected),
 * and a configuration may name other repositories explicitly (`packages.repositories`).
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../errors.js';
import { parseDeb822, field } from './control.js';

/** One entry of the host's apt configuration (either format), normalised. */
export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** Empty means "apt's default architectures". */
  architectures: string[];
  /** A keyring path, an inline ASCII-armored key block, or undefined (apt's global trusted keys). */
  signedBy?: string;
  /** File and paragraph/line the entry came from, for messages. */
  origin: string;
}

/** One suite of one archive that cairn reads packages from. */
export interface Repository {
  /** Base URI of the archive (the part before `dists/` and `pool/`). */
  uri: string;
  suite: string;
  components: string[];
  architecture: string;
  /**
   * OpenPGP keys that must have signed the suite's InRelease: a keyring file (binary or armored),
   * a folder of them, or an inline armored key block (`-----BEGIN PGP PUBLIC KEY BLOCK-----`).
   */
  keyring: string;
}

/** The release cairn builds when asked for none (`system.debian.release`'s default): Debian 13. */
export const DEFAULT_RELEASE = 'trixie' as const;
/** A release's suites: the release itself, its updates and its security suite. */
export function releaseSuites(release: string): string[] {
  return [release, `${release}-updates`, `${release}-security`];
}
/** Debian's codenames: a host entry for one release's suite lends its archive to the same suite of another. */
const CODENAMES = ['buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'duke', 'sid'];

/** The Debian release a suite is of (`bookworm-security` → `bookworm`); undefined for a suite not Debian's. */
export function debianCodename(suite: string): string | undefined {
  const codename = suite.split('-')[0]!;
  return CODENAMES.includes(codename) ? codename : undefined;
}
export const DEFAULT_COMPONENTS = ['main'];
export const DEFAULT_ARCHITECTURE = 'amd64';

/** apt's keys when an entry has no Signed-By: /etc/apt/trusted.gpg.d (and trusted.gpg). */
export const APT_TRUSTED_DIR = '/etc/apt/trusted.gpg.d';

function words(v: string | undefined): string[] {
  return v ? v.split(/\s+/).filter((w) => w !== '') : [];
}

/** Parses a deb822 `.sources` file. Entries with `Enabled: no` are dropped. */
export function parseSourcesFile(text: string, origin: string): AptSource[] {
  const out: AptSource[] = [];
  parseDeb822(text, origin).forEach((p, i) => {
    if ((field(p, 'Enabled') ?? 'yes').trim().toLowerCase() === 'no') return;
    const signedBy = field(p, 'Signed-By');
    out.push({
      types: words(field(p, 'Types')),
      uris: words(field(p, 'URIs')),
      suites: words(field(p, 'Suites')),
      components: words(field(p, 'Components')),
      architectures: words(field(p, 'Architectures')),
      // An inline key is a multi-line value; a path (or several) is a single word list.
      signedBy: signedBy === undefined ? undefined : signedBy.includes('BEGIN PGP') ? signedBy.trim() : words(signedBy)[0],
      origin: `${origin} (entry ${i + 1})`,
    });
  });
  return out;
}

/** Parses a one-line-style `.list` file: `deb [opt=value …] URI SUITE [COMPONENT …]`. */
export function parseListFile(text: string, origin: string): AptSource[] {
  const out: AptSource[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const m = /^(\S+)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (!m) return;
    const options: Record<string, string> = {};
    for (const opt of words(m[2])) {
      const eq = opt.indexOf('=');
      if (eq > 0) options[opt.slice(0, eq).toLowerCase()] = opt.slice(eq + 1);
    }
    out.push({
      types: [m[1]!],
      uris: [m[3]!],
      suites: [m[4]!],
      components: words(m[5]),
      architectures: options.arch ? options.arch.split(',') : [],
      signedBy: options['signed-by']?.split(',')[0],
      origin: `${origin}:${i + 1}`,
    });
  });
  return out;
}

/**
 * Reads the host's apt sources: `etc/apt/sources.list`, `etc/apt/sources.list.d/*.list` and
 * `*.sources` under `root` (only those endings, as apt does: `foo.list.disabled` is ignored).
 */
export function readHostSources(root = '/'): AptSource[] {
  const etc = join(root, 'etc/apt');
  const out: AptSource[] = [];
  const main = join(etc, 'sources.list');
  if (existsSync(main)) out.push(...parseListFile(readFileSync(main, 'utf8'), main));
  const dir = join(etc, 'sources.list.d');
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (name.endsWith('.list')) out.push(...parseListFile(readFileSync(path, 'utf8'), path));
      else if (name.endsWith('.sources')) out.push(...parseSourcesFile(readFileSync(path, 'utf8'), path));
    }
  }
  return out;
}

/** Whether a host entry can serve `suite`/`component`/`architecture` binary packages. */
function serves(s: AptSource, suite: string, components: string[], architecture: string): boolean {
  return s.types.includes('deb') && s.suites.includes(suite) && components.every((c) => s.components.includes(c))
    && (s.architectures.length === 0 || s.architectures.includes(architecture));
}

/**
 * The repository for `suite` as the host's apt configuration defines it (its first matching
 * entry and first URI). Throws naming the suite and `packages.repositories` if the host has none.
 */
export function hostRepository(suite: string, sources: AptSource[], components = DEFAULT_COMPONENTS, architecture = DEFAULT_ARCHITECTURE): Repository {
  const s = sources.find((e) => serves(e, suite, components, architecture) && e.uris.length > 0) ?? sameKind(suite, sources, architecture);
  if (!s && sources.length === 0) {
    // A cairn system has no apt: its configuration names the archive.
    throw new CairnError(
      `this machine has no apt sources (/etc/apt) to find suite ${suite} in; list the repositories in the configuration option ` +
        "packages.repositories, each with its uri and keyring (programs.cairn installs Debian's keys as /usr/share/keyrings/debian-archive-keyring.gpg)",
    );
  }
  if (!s) {
    throw new CairnError(
      `the host's apt configuration has no enabled "deb" entry for suite ${suite} (components ${components.join(' ')}, architecture ${architecture}); ` +
        `add one to /etc/apt/sources.list.d/ or list the repositories in the configuration option packages.repositories`,
    );
  }
  return {
    uri: s.uris[0]!.replace(/\/+$/, ''),
    suite,
    components: [...components],
    architecture,
    keyring: s.signedBy ?? APT_TRUSTED_DIR,
  };
}

/**
 * For a suite the host does not list, its entry for the same kind of suite of another Debian
 * release: `trixie-security` from the one for `bookworm-security` (Debian keeps every release of
 * a kind in one archive, signed by keys debian-archive-keyring holds ahead of the release). Only
 * Debian's codenames are matched, so another distribution's suites are never guessed. Components
 * are not checked: the archive has them all, and its Release file names what it has.
 */
function sameKind(suite: string, sources: AptSource[], architecture: string): AptSource | undefined {
  // The kind: what follows the codename (`-security`, `-updates`, or nothing).
  const kindOf = (s: string): string | undefined => {
    const codename = debianCodename(s);
    return codename === undefined ? undefined : s.slice(codename.length);
  };
  const kind = kindOf(suite);
  if (kind === undefined) return undefined;
  return sources.find((e) => e.types.includes('deb') && e.uris.length > 0 && e.suites.some((s) => kindOf(s) === kind)
    && (e.architectures.length === 0 || e.architectures.includes(architecture)));
}

/** cairn's default repositories (a release's three suites, main, amd64), located through the host's apt configuration. */
export function defaultRepositories(root = '/', release = DEFAULT_RELEASE): Repository[] {
  const sources = readHostSources(root);
  return releaseSuites(release).map((suite) => hostRepository(suite, sources));
}

/** A repository as a configuration writes it; missing parts come from the host entry for the suite. */
export interface RepositorySpec {
  uri?: string;
  suite: string;
  components?: string[];
  architecture?: string;
  keyring?: string;
}

/**
 * Completes configured repositories: an empty list means the defaults; an entry without a URI
 * or keyring takes them from the host's entry for that suite.
 */
export function resolveRepositories(specs: RepositorySpec[] | undefined, root = '/'): Repository[] {
  if (!specs || specs.length === 0) return defaultRepositories(root);
  let sources: AptSource[] | undefined;
  return specs.map((spec) => {
    const components = spec.components && spec.components.length > 0 ? spec.components : DEFAULT_COMPONENTS;
    const architecture = spec.architecture ?? DEFAULT_ARCHITECTURE;
    if (spec.uri && spec.keyring) return { uri: spec.uri.replace(/\/+$/, ''), suite: spec.suite, components, architecture, keyring: spec.keyring };
    sources ??= readHostSources(root);
    const host = hostRepository(spec.suite, sources, components, architecture);
    return { ...host, uri: spec.uri?.replace(/\/+$/, '') ?? host.uri, keyring: spec.keyring ?? host.keyring };
  });
}
