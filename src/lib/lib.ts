import { mkAliasOptionModule, mkEnableOption, mkOption, mkPackageOption, mkRemovedOptionModule, mkRenamedOptionModule } from './options.js';
import { mkAfter, mkBefore, mkDefault, mkForce, mkIf, mkMerge, mkOptionDefault, mkOrder, mkOverride } from './properties.js';
import { types, mkOptionType } from './types.js';
import { formats } from './formats.js';
import { renderTemplate } from '../templates.js';
import { shellComment, shellQuote } from '../shell.js';

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
  // Read through getters: types.ts and the evaluator import each other, so `types` may not be
  // initialised yet when this object is built, depending on which file is imported first.
  get mkOptionType() {
    return mkOptionType;
  },
  get types() {
    return types;
  },
  /** Settings file formats (nixpkgs' pkgs.formats): `formats.ini()` is `{ type, generate }`. */
  get formats() {
    return formats;
  },
  /** Renders `templates/<name>.mustache` (units, /etc files) with a view; nothing is HTML-escaped. */
  renderTemplate,
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
