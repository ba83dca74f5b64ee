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
  // A value shared in many places is copied in each; one that contains itself cannot be printed.
  if (within.has(value)) throw new CairnError(`The value at \`${showOption(path)}' is one that contains it (a cycle): it cannot be printed.`);
  within.add(value);
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
    if ('toJSON' in value && typeof (value as { toJSON: unknown }).toJSON === 'function') return (value as { toJSON(): unknown }).toJSON();
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value)) {
      path.push(k);
      let v: unknown;
      try {
        v = (value as Record<string, unknown>)[k];
      } catch (err) {
        // Leave out an option nobody defined, but not an option whose value needs an undefined one.
        if (err instanceof OptionError && err.message.startsWith(`The option \`${showOption(path)}' was accessed but has no value`)) {
          path.pop();
          continue;
        }
        throw err;
      }
      const p = plain(v, path, within);
      path.pop();
      if (p !== undefined) out[k] = p;
    }
    return out;
  } finally {
    within.delete(value);
  }
}
