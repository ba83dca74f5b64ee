import { CairnError } from '../errors.js';

/**
 * Late-bound references to `config` and `options`.
 *
 * Module functions run first while modules are being collected, before any option has a value (as
 * in NixOS, where `imports` cannot depend on `config`). JavaScript is strict, so a module that reads
 * `config.services.foo.enable` in its body then gets a *reference* rather than a value. A reference
 * can be passed to `mkIf`, stored (`const cfg = config.services.foo`) or used as a definition value,
 * and it resolves once the evaluation is ready. Computing with it in that first run (`cfg.size < 10`,
 * `cfg.lines.join()`) gives a stand-in (0, '', an empty list): the first run only gives the module's
 * structure, and a module that read config runs again with real values for its definitions.
 */
export interface RefHost {
  readonly ready: boolean;
  /** The real value at `path` below the host's root (config or options). */
  lookup(path: string[]): unknown;
  /** Names the root (`config`, `options`) and the module being loaded, for messages. */
  describe(path: string[]): { root: string; module?: string };
  /** A module read through a reference before the host was ready; `stub` when it computed with it. */
  touched?(stub: boolean): void;
}

/**
 * What a reference answers for its handler. Asked of the reference, not looked up in a weak map
 * of all references: first runs make one for every read of config, and a weak map entry costs
 * many times the reference.
 */
const HANDLER = Symbol('cairn.refHandler');

function handlerOf(v: object): RefHandler | undefined {
  const h = (v as Record<symbol, unknown>)[HANDLER];
  return h instanceof RefHandler ? h : undefined;
}

export function isRef(v: unknown): boolean {
  // A reference is a function object, so that `cfg.lines.join('\n')` can be called in a first run.
  return typeof v === 'function' && handlerOf(v) !== undefined;
}

/** Where a reference points, for comparing two (`services.foo.enable`). */
export function refPath(v: object): string {
  return handlerOf(v)!.path.join('.');
}

export function resolveRef(v: object): unknown {
  const info = handlerOf(v)!;
  if (!info.host.ready) throw earlyRead(info.host, info.path);
  return info.host.lookup(info.path);
}

function earlyRead(host: RefHost, path: string[]): CairnError {
  const { root, module } = host.describe(path);
  const what = [root, ...path].join('.');
  return new CairnError(
    `\`${what}' was needed while ${module ? `module \`${module}'` : 'a module'} was being loaded, before options have values.\n` +
      'What a module imports, and which options it declares and defines, cannot depend on config (as in NixOS); ' +
      `condition definitions with \`mkIf(${what}, …)\` instead.`,
  );
}

/** What a computation with a reference gives in a module's first run: a number's or a string's stand-in. */
const standIn = (hint: string): number | string => (hint === 'number' ? variant : variant ? '\u0001' : '');

/** Which stand-ins a first run gets: a run with the other ones shows which values depend on them. */
let variant = 0;

/** Runs `fn` with the first run's stand-ins (0) or the others (1); runs nest. */
export function withStandIns<T>(which: 0 | 1, fn: () => T): T {
  const before = variant;
  variant = which;
  try {
    return fn();
  } finally {
    variant = before;
  }
}

export const withOtherStandIns = <T>(fn: () => T): T => withStandIns(1, fn);

// An arrow function has no non-configurable own properties, so the proxy's traps are free to answer.
const target = (): void => undefined;

/**
 * The traps of a reference's proxy. Methods of a class, not closures made per reference: first
 * runs make a reference for every read of config.
 */
class RefHandler implements ProxyHandler<() => void> {
  /** The references below this one, made once each: every module reads `config.services` and the like. */
  private below?: Map<string, unknown>;
  constructor(
    readonly host: RefHost,
    readonly path: string[],
  ) {}
  private real(): unknown {
    return this.host.lookup(this.path);
  }
  private stub(): void {
    this.host.touched?.(true);
  }
  get(_t: unknown, key: string | symbol): unknown {
    if (key === HANDLER) return this;
    const host = this.host;
    if (host.ready) {
      const v = this.real();
      // A stand-in (in a partial run of a module) answers for itself.
      if (isRef(v)) return (v as Record<PropertyKey, unknown>)[key];
      if (key === Symbol.toPrimitive) return () => v;
      return v === null || v === undefined ? undefined : (v as Record<PropertyKey, unknown>)[key];
    }
    host.touched?.(false);
    if (typeof key === 'symbol') {
      if (key === Symbol.toPrimitive) {
        return (hint: string) => {
          this.stub();
          return standIn(hint);
        };
      }
      if (key === Symbol.iterator) {
        return () => {
          this.stub();
          return [][Symbol.iterator]();
        };
      }
      return undefined;
    }
    // `await ref` must not turn into a reference; JSON.stringify of one computes with it.
    if (key === 'then') return undefined;
    if (key === 'toJSON') {
      this.stub();
      return undefined;
    }
    const below = (this.below ??= new Map());
    let ref = below.get(key);
    if (!ref) below.set(key, (ref = makeRef(host, this.path.concat(key))));
    return ref;
  }
  apply(): unknown {
    if (this.host.ready) throw new CairnError(`\`${this.host.describe(this.path).root}.${this.path.join('.')}' is not a function.`);
    this.stub();
    return makeRef(this.host, [...this.path, '()']);
  }
  has(_t: unknown, key: PropertyKey): boolean {
    if (!this.host.ready) {
      this.stub();
      return false;
    }
    const v = this.real();
    return typeof v === 'object' && v !== null && key in v;
  }
  ownKeys(): (string | symbol)[] {
    if (!this.host.ready) {
      this.stub();
      return [];
    }
    const v = this.real();
    return typeof v === 'object' && v !== null ? Reflect.ownKeys(v) : [];
  }
  getOwnPropertyDescriptor(_t: unknown, key: PropertyKey): PropertyDescriptor | undefined {
    if (!this.host.ready) {
      this.stub();
      return undefined;
    }
    const v = this.real() as Record<PropertyKey, unknown>;
    if (typeof v !== 'object' || v === null || !(key in v)) return undefined;
    return { value: v[key], enumerable: true, configurable: true, writable: false };
  }
  set(): boolean {
    throw new CairnError(`\`${this.host.describe(this.path).root}.${this.path.join('.')}' cannot be assigned; define options through a module's config.`);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function makeRef(host: RefHost, path: string[]): any {
  return new Proxy(target, new RefHandler(host, path));
}
