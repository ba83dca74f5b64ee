/**
 * Compiles a JSON Schema with ajv into a validator and its standalone code (a CommonJS module).
 * A module of its own so that ajv is loaded only when a schema misses the validator cache.
 */
import { Ajv, type Options, type ValidateFunction } from 'ajv';
// CommonJS: the function is both the module and its `default`, which is what the types declare.
import standalone from 'ajv/dist/standalone/index.js';
import type { JsonSchema } from './types.js';

const instances = new Map<string, Ajv>();

export function compileSchema(schema: JsonSchema, options: Options): { validate: ValidateFunction; code: string } {
  const key = JSON.stringify(options);
  let ajv = instances.get(key);
  if (!ajv) instances.set(key, (ajv = new Ajv({ ...options, code: { source: true } })));
  const validate = ajv.compile(schema);
  return { validate, code: standalone.default(ajv, validate) };
}
