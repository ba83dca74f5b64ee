import { CairnError } from '../errors.js';

/**
 * A build recipe: plain data, so it can be hashed, stored in metadata and sent between processes.
 * The output path depends on every field, including the (hash-bearing) paths of the inputs, so a
 * change anywhere below a derivation gives it a new output path.
 */
export interface Derivation {
  /** Store name suffix: the output is `/cairn/store/<hash>-<name>`. */
  name: string;
  /** Name of a registered builder (an in-process TypeScript function). */
  builder: string;
  /** JSON-serialisable arguments for the builder. */
  args: unknown;
  /** Logical store paths this build reads; each must be valid before the build starts. */
  inputs: string[];
}

/**
 * JSON with object keys sorted at every level, so that equal values always serialise the same.
 * Arrays keep their order (order is meaningful, e.g. buildenv priorities). Rejects values JSON
 * cannot represent faithfully instead of silently dropping them.
 */
export function canonicalJson(value: unknown, where = 'args'): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new CairnError(`derivation ${where}: ${value} is not representable in JSON`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v, i) => canonicalJson(v, `${where}[${i}]`)).join(',')}]`;
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new CairnError(`derivation ${where}: only plain objects can be hashed, not ${value.constructor?.name ?? 'this object'}`);
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k], `${where}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new CairnError(`derivation ${where}: a ${typeof value} cannot be part of a derivation`);
  }
}

/** The description whose hash names a derivation's output. */
export function derivationDescription(drv: Derivation): string {
  return `cairn-output:v1:${canonicalJson({ name: drv.name, builder: drv.builder, args: drv.args ?? null, inputs: drv.inputs }, 'derivation')}`;
}
