import { callSite, CallSite, DeferredSite, type SourceLocation } from './location.js';
import { pkg } from './package.js';
import type { OptionType } from './types.js';
import { types } from './types.js';

/** What `mkOption` takes, as in NixOS. */
export interface OptionDeclaration<T = unknown> {
  type?: OptionType;
  default?: T;
  /** How the default is shown in documentation when the value itself is unhelpful. */
  defaultText?: string;
  example?: unknown;
  description?: string;
  /** The option may be defined only once. */
  readOnly?: boolean;
  /** For cairn's own use; hidden from documentation. */
  internal?: boolean;
  visible?: boolean | 'shallow' | 'transparent';
  /** Applied to the merged value. */
  apply?: (value: T) => unknown;
}

/** Marks options created by mkRenamedOptionModule and friends. */
export interface OptionSpecial {
  alias?: { to: string[]; warn: boolean };
  removed?: { instructions: string };
}

/** Most options are not special: one object for all of them (configurations declare thousands). */
const NOT_SPECIAL: OptionSpecial = Object.freeze({});

/** An option declaration, the value `mkOption` returns. */
export class Option {
  constructor(
    readonly decl: OptionDeclaration,
    /** Where it was declared: the mkOption call, or a position in a YAML file. */
    readonly site: CallSite | DeferredSite | SourceLocation | undefined,
    readonly special: OptionSpecial = NOT_SPECIAL,
  ) {}
  get location(): SourceLocation | undefined {
    return this.site instanceof CallSite || this.site instanceof DeferredSite ? this.site.location : this.site;
  }
}

export function isOption(v: unknown): v is Option {
  return v instanceof Option;
}

export function mkOption<T = unknown>(decl: OptionDeclaration<T> = {}): Option {
  return new Option(decl as OptionDeclaration, callSite(mkOption));
}

/** A boolean option, false by default: "Whether to enable NAME." */
export function mkEnableOption(name: string): Option {
  return new Option({ type: types.bool, default: false, example: true, description: `Whether to enable ${name}.` }, callSite(mkEnableOption));
}

/** An option holding a Debian package, defaulting to the package of that name. */
export function mkPackageOption(name: string, opts: { default?: string; example?: string; extraDescription?: string } = {}): Option {
  const def = opts.default ?? name;
  return new Option(
    {
      type: types.package,
      default: pkg(def),
      defaultText: `pkgs.${def}`,
      example: opts.example,
      description: `The ${name} package to use.${opts.extraDescription ? ` ${opts.extraDescription}` : ''}`,
    },
    callSite(mkPackageOption),
  );
}

function setAttrByPath(path: readonly string[], value: unknown): Record<string, unknown> {
  let v: unknown = value;
  for (let i = path.length - 1; i >= 0; i--) v = { [path[i]!]: v };
  return v as Record<string, unknown>;
}

/**
 * Keeps an old option name working: definitions of `from` go to `to` with their priorities,
 * reading `from` gives `to`'s value, and defining `from` warns.
 */
export function mkRenamedOptionModule(from: string[], to: string[]): Record<string, unknown> {
  return { options: setAttrByPath(from, new Option({ visible: false, description: `Alias of \`${to.join('.')}'.` }, callSite(mkRenamedOptionModule), { alias: { to, warn: true } })) };
}

/** Like mkRenamedOptionModule, without the warning: both names are supported. */
export function mkAliasOptionModule(from: string[], to: string[]): Record<string, unknown> {
  return { options: setAttrByPath(from, new Option({ description: `Alias of \`${to.join('.')}'.` }, callSite(mkAliasOptionModule), { alias: { to, warn: false } })) };
}

/** An option that no longer exists: defining it fails with the given instructions. */
export function mkRemovedOptionModule(path: string[], instructions: string): Record<string, unknown> {
  return { options: setAttrByPath(path, new Option({ visible: false, type: types.anything }, callSite(mkRemovedOptionModule), { removed: { instructions } })) };
}
