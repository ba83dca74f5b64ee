import { CairnError } from '../errors.js';

/**
 * Late-bound references to `config` and `options`.
 *
 * Module functions run once, while modules are being collected, before any option has a value
 * (as in NixOS, where `imports` cannot depend on `config`). JavaScript is strict, so a module that
 * reads `config.services.foo.enable` in its body gets a *reference* rather than a value. A reference
 * can be passed to `mkIf`, stored (`const cfg = config.services.foo`) or used as a definition value,
 * and it resolves once the evaluation is ready. Turning it into a primitive too early is an error
 * that says how to read config lazily.
 */
export interface RefHost {
  readonly ready: boolean;
  /** The real value at `path` below the host's root (config or options). */
  lookup(path: string[]): unknown;
  /** Names the root (`config`, `options`) and the module being loaded, for messages. */
  describe(path: string[]): { root: string; module?: string };
}

const refs = new WeakMap<object, { host: RefHost; path: string[] }>();

export function isRef(v: unknown): boolean {
  return typeof v === 'object' && v !== null && refs.has(v);
}

export function resolveRef(v: object): unknown {
  const info = refs.get(v)!;
  if (!info.host.ready) throw earlyRead(info.host, info.path);
  return info.host.lookup(info.path);
}

function earlyRead(host: RefHost, path: string[]): CairnError {
  const { root, module } = host.describe(path);
  const what = [root, ...path].join('.');
  return new CairnError(
    `\`${what}' was read while ${module ? `module \`${module}'` : 'a module'} was being loaded, before options have values.\n` +
      'Module functions run once, first. Read config lazily instead: a condition as `mkIf(() => ' +
      `${what}, …)\`, a value in a getter (\`get text() { return … }\`), or pass \`${what}\` itself as a definition value.`,
  );
}

export function makeRef(host: RefHost, path: string[]): any {
  const real = (): unknown => host.lookup(path);
  const proxy: object = new Proxy(
    {},
    {
      get(_t, key) {
        if (host.ready) {
          const v = real();
          if (key === Symbol.toPrimitive) return () => v;
          return v === null || v === undefined ? undefined : (v as Record<PropertyKey, unknown>)[key];
        }
        if (typeof key === 'symbol') {
          if (key === Symbol.toPrimitive) return () => { throw earlyRead(host, path); };
          return undefined;
        }
        // `await ref` and JSON probes must not turn into references.
        if (key === 'then' || key === 'toJSON') return undefined;
        return makeRef(host, [...path, key]);
      },
      has(_t, key) {
        if (!host.ready) throw earlyRead(host, path);
        const v = real();
        return typeof v === 'object' && v !== null && key in v;
      },
      ownKeys() {
        if (!host.ready) throw earlyRead(host, path);
        const v = real();
        return typeof v === 'object' && v !== null ? Reflect.ownKeys(v) : [];
      },
      getOwnPropertyDescriptor(_t, key) {
        if (!host.ready) throw earlyRead(host, path);
        const v = real() as Record<PropertyKey, unknown>;
        if (typeof v !== 'object' || v === null || !(key in v)) return undefined;
        return { value: v[key], enumerable: true, configurable: true, writable: false };
      },
      set() {
        throw new CairnError(`\`${host.describe(path).root}.${path.join('.')}' cannot be assigned; define options through a module's config.`);
      },
    },
  );
  refs.set(proxy, { host, path });
  return proxy;
}
