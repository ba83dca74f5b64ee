import { mkAliasOptionModule, mkEnableOption, mkOption, mkPackageOption, mkRemovedOptionModule, mkRenamedOptionModule } from './options.js';
import { mkAfter, mkBefore, mkDefault, mkForce, mkIf, mkMerge, mkOptionDefault, mkOrder, mkOverride } from './properties.js';
import { types, mkOptionType } from './types.js';
import { formats } from './formats.js';
import { renderTemplate } from '../templates.js';
import { shellComment, shellQuote } from '../shell.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CairnError } from '../errors.js';
import * as fileSystems from './filesystems.js';
import * as systemd from './systemd.js';
import * as wireguard from './wireguard.js';
import { DEFAULT_RELEASE, debianCodename, releaseSuites } from '../debian/sources.js';

/** Everything modules need, handed to every module function as `lib`. */
export const lib = {
  mkOption,
  mkEnableOption,
  mkPackageOption,
  mkIf,
  mkMerge,
  mkOverride,
  mkOptionDefault,
  mkDefault,
  mkForce,
  mkOrder,
  mkBefore,
  mkAfter,
  mkRenamedOptionModule,
  mkRemovedOptionModule,
  mkAliasOptionModule,
  mkOptionType,
  types,
  /** Settings file formats (nixpkgs' pkgs.formats): `formats.ini()` is `{ type, generate }`. */
  formats,
  /**
   * Renders `modules/<name>.mustache` (a module's /etc files and scripts, beside the module:
   * `services/openssh.sshd_config` is modules/services/openssh.sshd_config.mustache) with a view;
   * nothing is HTML-escaped.
   */
  renderTemplate,
  /** Units and services: common unit options, rendering, `packagedService`, `stateService`, … (src/lib/systemd.ts). */
  systemd,
  /** fstab entries: `fsSpec`, `renderFstab`, the mount points stage 1 always mounts (src/lib/filesystems.ts). */
  fileSystems,
  /** WireGuard's checked values, key-file types and peer options (src/lib/wireguard.ts). */
  wireguard,
  /** The Debian release a suite is of (`bookworm-security` → `bookworm`), undefined for a suite not Debian's. */
  debianCodename,
  /** A Debian release's suites: `trixie`, `trixie-updates`, `trixie-security`. */
  debianSuites: releaseSuites,
  /** The release built when a configuration names none (`system.debian.release`'s default). */
  debianDefaultRelease: DEFAULT_RELEASE,
  /** A short digest naming content that changes (restart triggers, script names): 16 hex digits of SHA-256. */
  digest: systemd.digest,
  /**
   * `digest` of a file's contents on the building machine (NixOS's `builtins.hashFile`): a name or
   * restart trigger for a file the build reads (a container image, an encrypted secret), read when
   * called, so a change of the file changes what names it. `what` says whose file it is in errors.
   */
  hashFile(path: string, what?: string): string {
    try {
      return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);
    } catch (err) {
      throw new CairnError(`${what ? `${what}: ` : ''}cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  },
  /** The one quoting of values in generated shell: `s` as a single-quoted word. */
  shellQuote,
  /** `s` as a one-line shell comment (`# …`), control characters escaped. */
  shellComment,
  /** `[x]` when cond holds, else `[]`. */
  optional: <T>(cond: boolean, x: T): T[] => (cond ? [x] : []),
  optionals: <T>(cond: boolean, xs: T[]): T[] => (cond ? xs : []),
  optionalString: (cond: boolean, s: string): string => (cond ? s : ''),
  optionalAttrs: <T extends object>(cond: boolean, attrs: T): Partial<T> => (cond ? attrs : {}),
};

export type Lib = typeof lib;
