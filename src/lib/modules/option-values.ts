import { leaveModuleRun, plainLocation, reenterModuleRun, type SourceLocation } from '../location.js';
import { checkAndMerge, OptionError, prepareDefinitions, type PreparedDefinitions } from '../merge.js';
import { PRIORITY } from '../properties.js';
import { makeRef } from '../refs.js';
import { showDefs, showOption } from '../show.js';
import { emptyValueOf, type OptionType } from '../types.js';
import { userCodeError } from '../usercode.js';
import { hasField, type OptionNode } from './declarations.js';
import type { Evaluation } from './evaluation.js';
import type { SecondRun } from './second-runs.js';

// Option values: one option's definitions merged into its value (NixOS's evalOptionValue), and
// what `options` shows of it.

/** The stack of options being evaluated, for "infinite recursion" messages naming the chain. */
export const evaluating: OptionState[] = [];

/**
 * The second run whose function body is running now. Its direct reads of an option that cannot be
 * computed yet (a cycle through an option being computed) give a reference; computing with one
 * there gives a stand-in. Only a value that is really needed in a cycle is an error. (A field, not
 * a variable: the evaluator and second runs set it too.)
 */
export const secondRunBody: { of?: SecondRun } = {};

/** "infinite recursion" errors: an option needed its own value. */
const recursions = new WeakSet<object>();
export const isRecursion = (err: unknown): err is OptionError => typeof err === 'object' && err !== null && recursions.has(err);
export function recursionError(message: string): OptionError {
  const err = new OptionError(message);
  recursions.add(err);
  return err;
}

/**
 * How many options may be computed one within another before the innermost waits for the top.
 * JavaScript's stack is shallow: a chain of modules whose second runs each read an option the next
 * module defines goes one link deeper per module (a lazy language never enters such a chain), and
 * a thousand links overflow it. Below this depth an option is computed from the top first (see
 * fromTop), and the computation that needed it again after.
 */
const MAX_NESTING = 96;

/** Unwinds a computation gone too deep: `option` is computed first, then the computation again. */
class Deeper {
  constructor(
    readonly option: OptionState,
    /** The options being computed when it was needed, outermost first. */
    readonly chain: OptionState[],
  ) {}
}

/** A computation unwinding to compute an option first: no error, never to be caught on its way. */
export const isDeeper = (err: unknown): boolean => err instanceof Deeper;

/** Options computed from the top while computations that need them wait, outermost first. */
interface Waiting {
  option: OptionState;
  /** What the computation that needed it was computing then (all waiting now). */
  chain: OptionState[];
  /** Options waited for that failed: their error is for this option's computation, when it reads them again. */
  failed: OptionState[];
}
const waiting: Waiting[] = [];

/** The options whose computation is under way, outermost first: those waiting, then those on the stack. */
function underWay(): OptionState[] {
  return waiting.length === 0 ? evaluating : [...waiting.flatMap((w) => w.chain), ...evaluating];
}

/**
 * Finishes `fn`, which starts with no option being computed and was unwound (`deeper`): an
 * option needed below MAX_NESTING unwinds the computation; it is computed from the top (in turn
 * unwinding for those it needs deeper), then `fn` runs again: what was computed is kept, so each
 * time it gets further. The options of an unwound computation count as under way while they
 * wait: read again, they are a cycle (a reference in a second run's body, else infinite
 * recursion), as if they were on the stack. An option waited for that fails gives its error to
 * the computation that needed it, at the place it is read again, where the error would have come
 * out without the wait.
 */
function fromTop<T>(fn: () => T, deeper: Deeper): T {
  const base = waiting.length;
  const failedForFn: OptionState[] = [];
  const done = (w: Waiting): void => {
    waiting.pop();
    w.option.suspended = false;
    for (const s of w.chain) s.suspended = false;
    for (const s of w.failed) s.failure = undefined;
  };
  let err: unknown = deeper;
  try {
    for (;;) {
      if (err instanceof Deeper) {
        const top = waiting.length > base ? waiting[waiting.length - 1]! : undefined;
        if (top) top.option.suspended = true;
        for (const s of err.chain) s.suspended = true;
        err.option.suspended = true;
        waiting.push({ option: err.option, chain: err.chain, failed: [] });
        err = undefined;
      }
      const top = waiting.length > base ? waiting[waiting.length - 1]! : undefined;
      try {
        if (!top) return fn();
        top.option.suspended = false;
        top.option.read();
        done(top);
      } catch (e) {
        if (e instanceof Deeper) {
          err = e;
          continue;
        }
        if (!top) throw e;
        done(top);
        top.option.failure = { err: e };
        (waiting.length > base ? waiting[waiting.length - 1]!.failed : failedForFn).push(top.option);
      }
    }
  } finally {
    while (waiting.length > base) done(waiting[waiting.length - 1]!);
    for (const s of failedForFn) s.failure = undefined;
  }
}

/** What documentation shows of an option's declaration. */
export interface OptionDocFields {
  path: string;
  description?: string;
  default?: unknown;
  defaultText?: string;
  example?: unknown;
  readOnly: boolean;
  declarations: SourceLocation[];
}

/** What `options.x.y` gives modules and `cairn option` shows. */
export interface OptionInfo extends OptionDocFields {
  type: OptionType;
  isDefined: boolean;
  /** Definitions at the winning priority, in order, without the default. */
  definitions: { loc: SourceLocation; value: unknown }[];
  /** The files of those definitions, each once (NixOS's `files`). */
  files: string[];
  highestPrio: number;
  value: unknown;
}

/** One option's evaluation: its definitions, merged on first read. */
export class OptionState {
  private status: 0 | 1 | 2 = 0;
  /** Discharging the definitions (evaluating mkIf conditions) is under way. */
  private preparing = false;
  private result: unknown;
  private preparedDefs?: PreparedDefinitions;
  /** Its computation waits for an option computed from the top (see fromTop): it is under way. */
  suspended = false;
  /** It was waited for and failed: the error, for the computation that waited (see fromTop). */
  failure?: { err: unknown };
  constructor(
    readonly ev: Evaluation,
    readonly node: OptionNode,
  ) {}

  /** Its full path: the evaluation's prefix and its own. */
  get loc(): string[] {
    return this.ev.prefix.length === 0 ? this.node.path : this.ev.prefix.concat(this.node.path);
  }

  get prepared(): PreparedDefinitions {
    if (this.preparedDefs) return this.preparedDefs;
    if (evaluating.length > 0) return this.prepare();
    try {
      return this.prepare();
    } catch (err) {
      if (err instanceof Deeper) return fromTop(() => this.prepare(), err);
      throw err;
    }
  }

  private prepare(): PreparedDefinitions {
    if (this.preparedDefs) return this.preparedDefs;
    const defs = this.ev.definitionsAt(this.node.path, this.node);
    const decl = this.node.decl;
    if (this.preparing || this.suspended) throw this.recursion();
    this.preparing = true;
    evaluating.push(this);
    try {
      // The default goes first, as in NixOS: definitions at mkOptionDefault priority (lists, lines)
      // merge after it. Read here, where an error in a lazy default names this option.
      const optionDefault = hasField(decl, 'default') ? { loc: this.node.defaultLoc ?? this.node.declarations[0]!, value: decl.default } : undefined;
      return (this.preparedDefs = prepareDefinitions(defs, optionDefault));
    } catch (err) {
      throw userCodeError(err, () => `while evaluating the option \`${showOption(this.loc)}'`);
    } finally {
      evaluating.pop();
      this.preparing = false;
    }
  }

  get isDefined(): boolean {
    return this.prepared.defs.length > 0;
  }

  get value(): unknown {
    if (this.status === 2) return this.result;
    if (evaluating.length > 0) return this.read();
    try {
      return this.read();
    } catch (err) {
      if (err instanceof Deeper) return fromTop(() => this.read(), err);
      throw err;
    }
  }

  /** The value, computed when needed (`value` without the check for a computation from the top). */
  read(): unknown {
    if (this.status === 2) return this.result;
    const alias = this.node.option.special.alias;
    if (alias) return this.ev.lookup(alias.to);
    // Read directly by a second run's body: an option being computed, or one needing this very
    // run, is read again when it is needed (a reference), as a lazy language would.
    const body = secondRunBody.of;
    if (this.status === 1 || this.suspended) {
      if (body) return makeRef(this.ev, this.node.path);
      throw this.recursion();
    }
    if (!body) return this.compute();
    secondRunBody.of = undefined;
    try {
      return this.compute();
    } catch (err) {
      if (isRecursion(err)) return makeRef(this.ev, this.node.path);
      throw err;
    } finally {
      secondRunBody.of = body;
    }
  }

  private compute(): unknown {
    if (this.failure) throw this.failure.err;
    if (evaluating.length >= MAX_NESTING) throw new Deeper(this, [...evaluating]);
    this.status = 1;
    evaluating.push(this);
    const run = leaveModuleRun();
    try {
      const { defs } = this.prepared;
      // Without definitions, a type with an empty value ([] for lists, {} for sets, null for
      // nullOr, a submodule's defaults) gives it, as NixOS's evalOptionValue does.
      const empty = defs.length === 0 ? emptyValueOf(this.node.type, this.loc, this.ev) : undefined;
      if (defs.length === 0 && !empty) {
        throw new OptionError(`The option \`${showOption(this.loc)}' was accessed but has no value defined. Try setting the option.`);
      }
      if (this.node.decl.readOnly) {
        // As NixOS counts them: the default is a definition, and so is every definition at any priority.
        const raw = this.ev.definitionsAt(this.node.path);
        const count = raw.length + (hasField(this.node.decl, 'default') ? 1 : 0);
        if (count > 1) {
          const shown = hasField(this.node.decl, 'default') ? [{ loc: this.node.defaultLoc ?? this.node.declarations[0]!, value: this.node.decl.default }, ...raw] : raw;
          throw new OptionError(`The option \`${showOption(this.loc)}' is read-only, but it's set multiple times. Definition values:${showDefs(shown)}`);
        }
      }
      let v: unknown;
      try {
        v = empty ? empty.value : checkAndMerge(this.loc, this.node.type, defs, this.ev);
      } catch (err) {
        // A default made from the submodule's name (users.users.<name>.name) is wrong because of
        // where that name was written: show that place, not only cairn's module.
        const within = this.ev.definedAt;
        if (err instanceof OptionError && within?.length && defs.some((d) => d.priority === PRIORITY.optionDefault)) {
          throw new OptionError(`${err.message}\nThe default follows \`${showOption(this.ev.prefix)}', defined:${showDefs(within.map((loc) => ({ loc, value: undefined })), false)}`);
        }
        throw err;
      }
      if (this.node.decl.apply) v = this.node.decl.apply(v);
      this.result = v;
      this.status = 2;
      return v;
    } catch (err) {
      throw userCodeError(err, () => `while evaluating the option \`${showOption(this.loc)}'`);
    } finally {
      reenterModuleRun(run);
      evaluating.pop();
      if (this.status === 1) this.status = 0;
    }
  }

  /** An option needed its own value: name the chain of options involved. */
  recursion(): OptionError {
    const stack = underWay();
    const start = stack.lastIndexOf(this);
    // An option is on the stack twice in a row (merging, then discharging its definitions): show
    // it once, then close the cycle with this option even when it needed itself (`a' → `a').
    const chain = stack.slice(start).map((s) => `\`${showOption(s.loc)}'`);
    const unique = chain.filter((c, i) => i === 0 || c !== chain[i - 1]);
    unique.push(`\`${showOption(this.loc)}'`);
    return recursionError(`infinite recursion encountered: ${unique.join(' → ')}\nEach of these options needs the value of the next to be computed.`);
  }

  get info(): OptionInfo {
    const self = this;
    const d = this.node.decl;
    return {
      path: showOption(this.loc),
      type: this.node.type,
      description: d.description,
      get default() {
        return d.default;
      },
      defaultText: d.defaultText,
      example: d.example,
      readOnly: d.readOnly ?? false,
      get declarations() {
        return self.node.declarations.map(plainLocation);
      },
      get isDefined() {
        return self.isDefined;
      },
      get definitions() {
        return self.definitions;
      },
      get files() {
        return [...new Set(self.definitions.map((d) => d.loc.file))];
      },
      get highestPrio() {
        return self.prepared.highestPrio;
      },
      get value() {
        return self.value;
      },
    };
  }

  /** Definitions that won, without the declared default. */
  get definitions(): { loc: SourceLocation; value: unknown }[] {
    return this.prepared.highestPrio === PRIORITY.optionDefault ? [] : this.prepared.defs.map((x) => ({ loc: plainLocation(x.loc), value: x.value }));
  }
}
