import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CairnError } from '../errors.js';
import { evalModules, OptionError, showOption, type Evaluation, type ModuleInput } from '../lib/index.js';
import { validateYamlModules } from '../lib/schema.js';
import { builtinModules } from './builtin.js';
import { systemSpec, type SystemSpec } from './spec.js';

export { systemSpec, type SystemSpec } from './spec.js';

/**
 * Stage 1 of the pipeline: a configuration file plus cairn's modules → evaluated options.
 * Nothing here touches the store or the host; later stages read `spec`, not `config`.
 */
export interface SystemEvaluation {
  evaluation: Evaluation;
  /** The raw option tree (for `cairn eval`, `option`, and the recorded configuration.json). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  config: any;
  warnings: string[];
  /** What the build needs, typed and checked (each part read on first use). */
  spec: SystemSpec;
  /** The configuration file (absolute), when evaluated from one: its lock and relative paths are beside it. */
  file: string | null;
}

export interface EvalOptions {
  /** Modules added after the built-in ones and before the configuration (tests, tools). */
  extraModules?: ModuleInput[];
  /** Check assertions (default true); `cairn option` inspects configurations that may not pass. */
  assertions?: boolean;
}

/** Evaluates a configuration file (YAML, TypeScript or JavaScript) with all built-in modules. */
export async function evalConfigFile(file: string, opts: EvalOptions = {}): Promise<SystemEvaluation> {
  const path = resolve(file);
  if (!existsSync(path) || !statSync(path).isFile()) throw new CairnError(`no configuration file at \`${file}'`);
  return { ...(await evalSystem([path], opts)), file: path };
}

/** Evaluates modules (file paths or values) on top of the built-in modules. */
export async function evalSystem(modules: ModuleInput[], opts: EvalOptions = {}): Promise<SystemEvaluation> {
  const evaluation = await evalModules({
    modules: [...(await builtinModules()), ...(opts.extraModules ?? []), ...modules],
    beforeCheck: validateYamlModules,
  });
  const config = evaluation.config;
  if (opts.assertions ?? true) {
    const failed = [
      ...evaluation.internalAssertions(),
      ...(config.assertions as { assertion: boolean; message: string }[]).filter((a) => !a.assertion).map((a) => a.message),
    ];
    if (failed.length) throw new OptionError(`Failed assertions:\n${failed.map((m) => `- ${m}`).join('\n')}`);
  }
  const warnings = [...evaluation.internalWarnings(), ...(config.warnings as string[])];
  return { evaluation, config, warnings, spec: systemSpec(config), file: null };
}

/** A deep, plain copy of an evaluated value for JSON: options without any value are left out. */
export function toPlain(value: unknown, path: string[] = [], within = new Set<object>()): unknown {
  return plain(value, [...path], within);
}

/** toPlain with the path as a stack, entered and left in place: a configuration has many values. */
function plain(value: unknown, path: string[], within: Set<object>): unknown {
  if (typeof value === 'function') return undefined;
  if (typeof value !== 'object' || value === null) return value;
  enter(value, path, within);
  try {
    if (Array.isArray(value)) {
      const out = new Array<unknown>(value.length);
      for (let i = 0; i < value.length; i++) {
        path.push(`[${i}]`);
        out[i] = plain(value[i], path, within);
        path.pop();
      }
      return out;
    }
    if (hasToJson(value)) return value.toJSON();
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value)) {
      path.push(k);
      const v = readEntry(value, k, path);
      const p = v === UNDEFINED ? undefined : plain(v, path, within);
      path.pop();
      if (p !== undefined) out[k] = p;
    }
    return out;
  } finally {
    within.delete(value);
  }
}

/**
 * An evaluated value as JSON text, as `JSON.stringify(toPlain(value), null, indent)` gives it,
 * written as it is read: no plain copy is made first (a configuration's has tens of thousands of
 * objects, each built key by key). One frame a level, as plain: values may be thousands deep.
 */
export function toJson(value: unknown, path: string[] = [], indent = 2): string {
  const out: string[] = [];
  const pads = [''];
  const pad = (depth: number): string => (pads[depth] ??= ' '.repeat(depth * indent));
  const within = new Set<object>();
  const at = [...path];
  // Whether v has JSON (else a list shows null and a set leaves the key out).
  const write = (v: unknown, depth: number): boolean => {
    if (typeof v === 'function' || v === undefined) return false;
    if (typeof v !== 'object' || v === null) {
      out.push(JSON.stringify(v));
      return true;
    }
    enter(v, at, within);
    try {
      if (!Array.isArray(v) && hasToJson(v)) {
        const text = JSON.stringify(v.toJSON(), null, indent);
        if (text === undefined) return false;
        out.push(text.replace(/\n/g, `\n${pad(depth)}`));
        return true;
      }
      const list = Array.isArray(v);
      const start = out.length;
      out.push(list ? '[' : '{');
      let first = true;
      const keys = list ? undefined : Object.keys(v);
      const n = list ? v.length : keys!.length;
      for (let i = 0; i < n; i++) {
        const k = list ? `[${i}]` : keys![i]!;
        at.push(k);
        const x = list ? (v as unknown[])[i] : readEntry(v, k, at);
        const mark = out.length;
        out.push(first ? `\n${pad(depth + 1)}` : `,\n${pad(depth + 1)}`);
        if (!list) out.push(`${JSON.stringify(k)}: `);
        if (x !== UNDEFINED && write(x, depth + 1)) first = false;
        else if (list) {
          out.push('null');
          first = false;
        } else out.length = mark;
        at.pop();
      }
      if (first) out[start] = list ? '[]' : '{}';
      else out.push(`\n${pad(depth)}${list ? ']' : '}'}`);
      return true;
    } finally {
      within.delete(v);
    }
  };
  write(value, 0);
  return out.join('');
}

/** What readEntry gives for an option nobody defined. */
const UNDEFINED = Symbol('undefined option');

/** value[k] (path ends with k), UNDEFINED for an option nobody defined, which is left out (but not an option whose value needs one). */
function readEntry(value: object, k: string, path: string[]): unknown {
  try {
    return (value as Record<string, unknown>)[k];
  } catch (err) {
    if (err instanceof OptionError && err.message.startsWith(`The option \`${showOption(path)}' was accessed but has no value`)) return UNDEFINED;
    throw err;
  }
}

/** Marks a value as being printed: a value shared in many places is copied in each; one that contains itself cannot be printed. */
function enter(value: object, path: string[], within: Set<object>): void {
  if (within.has(value)) throw new CairnError(`The value at \`${showOption(path)}' is one that contains it (a cycle): it cannot be printed.`);
  within.add(value);
}

const hasToJson = (v: object): v is { toJSON(): unknown } => 'toJSON' in v && typeof (v as { toJSON: unknown }).toJSON === 'function';
