import { callSite, type CallSite, type DeferredSite, type SourceLocation } from './location.js';

/**
 * Properties wrap definition values, as in NixOS: conditions, merges, priorities and order.
 * They are discharged when an option's definitions are merged.
 */

export const PRIORITY = {
  optionDefault: 1500,
  default: 1000,
  plain: 100,
  force: 50,
} as const;

export const ORDER = { before: 500, default: 1000, after: 1500 } as const;

/** A condition is a boolean, a function returning one (evaluated lazily), or a config reference. */
export type Condition = boolean | (() => unknown) | object;

abstract class Property {
  /** Where the wrapper was created, for error messages (lazy). */
  readonly site?: CallSite | DeferredSite;
  constructor(site?: CallSite | DeferredSite) {
    this.site = site;
  }
  get location(): SourceLocation | undefined {
    return this.site?.location;
  }
}

export class If extends Property {
  constructor(
    readonly condition: Condition,
    readonly content: unknown,
    site?: CallSite | DeferredSite,
  ) {
    super(site);
  }
}

export class Merge extends Property {
  constructor(
    readonly contents: unknown[],
    site?: CallSite | DeferredSite,
  ) {
    super(site);
  }
}

export class Override extends Property {
  constructor(
    readonly priority: number,
    readonly content: unknown,
    site?: CallSite | DeferredSite,
  ) {
    super(site);
  }
}

export class Order extends Property {
  constructor(
    readonly priority: number,
    readonly content: unknown,
    site?: CallSite | DeferredSite,
  ) {
    super(site);
  }
}

export function isProperty(v: unknown): v is If | Merge | Override | Order {
  return v instanceof Property;
}

/**
 * A value computed on first use. Object properties defined with getters become thunks when the
 * module system reads definitions, so a definition can read `config` without forcing it early.
 */
export class Thunk {
  private state: 0 | 1 | 2 = 0;
  private value: unknown;
  constructor(private readonly fn: () => unknown) {}
  force(): unknown {
    if (this.state === 2) return this.value;
    this.value = this.fn();
    this.state = 2;
    return this.value;
  }
}

export function mkIf(condition: Condition, content: unknown): If {
  return new If(condition, content, callSite(mkIf));
}

// Only mkIf's call site is ever shown (a condition that is not a boolean): the other properties
// capture none, which would cost more than the rest of what they do (configurations make thousands).

export function mkMerge(contents: unknown[]): Merge {
  return new Merge(contents);
}

export function mkOverride(priority: number, content: unknown): Override {
  return new Override(priority, content);
}

export const mkOptionDefault = (content: unknown): Override => new Override(PRIORITY.optionDefault, content);
export const mkDefault = (content: unknown): Override => new Override(PRIORITY.default, content);
export const mkForce = (content: unknown): Override => new Override(PRIORITY.force, content);

export function mkOrder(priority: number, content: unknown): Order {
  return new Order(priority, content);
}

export const mkBefore = (content: unknown): Order => new Order(ORDER.before, content);
export const mkAfter = (content: unknown): Order => new Order(ORDER.after, content);
