import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { stringify } from 'yaml';
import { writeFileAtomic } from '../../cache.js';
import { documentedOptions, findOption, parseOptionPath, type DocumentedOption } from '../../eval/inspect.js';
import { evalConfigFile, evalSystem, toJson, toPlain, type SystemEvaluation } from '../../eval/index.js';
import { formatLocation, showValue } from '../../lib/index.js';
import { fileSchema } from '../../lib/schema.js';
import { typeDeclarations } from '../../lib/typescript.js';
import { projectRoot } from '../../paths.js';

const out = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

function printWarnings(result: SystemEvaluation): void {
  for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
}

async function evaluate(config: string | undefined, assertions = true): Promise<SystemEvaluation> {
  return config === undefined ? evalSystem([], { assertions }) : evalConfigFile(config, { assertions });
}

interface EvalArgs {
  config: string;
  json?: boolean;
  option?: string;
}

const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval <config>',
  describe: 'Evaluate a configuration and print the merged options',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Configuration file (YAML, TypeScript, JavaScript)' })
      .option('json', { type: 'boolean', describe: 'Print JSON' })
      .option('option', { type: 'string', describe: 'Print only this option (or set of options)' }),
  handler: async (args) => {
    const result = await evalConfigFile(args.config);
    printWarnings(result);
    let value: unknown = result.config;
    if (args.option) {
      const found = findOption(result.evaluation, parseOptionPath(args.option));
      if ('namespace' in found) {
        value = found.namespace.slice(result.evaluation.prefix.length).reduce((v: unknown, k) => (v as Record<string, unknown>)[k], result.config);
      } else value = found.value!();
    }
    const path = args.option ? parseOptionPath(args.option) : [];
    out(args.json ? toJson(value, path) : toYaml(toPlain(value, path)));
  },
};

/**
 * A plain value as YAML. The YAML printer recurses per level of nesting and runs out of stack on
 * values a few thousand levels deep; JSON, which is YAML too, is printed without that limit.
 */
function toYaml(plain: unknown): string {
  try {
    return stringify(plain, { lineWidth: 0 });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return JSON.stringify(plain, null, 2) + '\n';
  }
}

interface OptionArgs {
  path: string;
  config?: string;
  json?: boolean;
}

const optionCommand: CommandModule<object, OptionArgs> = {
  command: 'option <path> [config]',
  describe: 'Show an option: value, type, default, description, where declared and defined',
  builder: (y) =>
    y
      .positional('path', { type: 'string', demandOption: true, describe: 'Option path, e.g. services.openssh.ports or users.users.<name>.uid' })
      .positional('config', { type: 'string', describe: 'Configuration to take the value from' })
      .option('json', { type: 'boolean', describe: 'Print JSON' }),
  handler: async (args) => {
    const result = await evaluate(args.config, false);
    const found = findOption(result.evaluation, parseOptionPath(args.path));
    if ('namespace' in found) {
      out(args.json ? JSON.stringify({ path: args.path, options: found.children }, null, 2) : `\`${args.path}' is a set of options:\n${found.children.map((c) => `  ${c}`).join('\n')}`);
      return;
    }
    const value = args.config !== undefined && found.value ? toPlain(found.value(), parseOptionPath(args.path)) : undefined;
    const definitions = args.config !== undefined && found.definitions ? found.definitions().map((d) => formatLocation(d.loc)) : [];
    const info = {
      path: found.path,
      type: found.type.description,
      ...(args.config !== undefined ? { value } : {}),
      default: found.defaultText ?? toPlain(found.default),
      example: toPlain(found.example),
      description: found.description,
      readOnly: found.readOnly,
      declarations: found.declarations.map(formatLocation),
      definitions,
    };
    if (args.json) return out(JSON.stringify(info, null, 2));
    const lines: string[] = [];
    if (args.config !== undefined) lines.push('Value:', indent(showBlock(value)));
    lines.push('Type:', indent(info.type));
    if (info.default !== undefined) lines.push('Default:', indent(found.defaultText ?? showBlock(info.default)));
    if (info.example !== undefined) lines.push('Example:', indent(showBlock(info.example)));
    if (info.description) lines.push('Description:', indent(info.description));
    if (info.readOnly) lines.push('Read-only: yes');
    lines.push('Declared in:', indent(info.declarations.join('\n') || '(unknown)'));
    if (args.config !== undefined) lines.push('Defined in:', indent(definitions.join('\n') || '(the default)'));
    out(lines.join('\n'));
  },
};

const indent = (s: string): string => s.split('\n').map((l) => `  ${l}`).join('\n');
const showBlock = (v: unknown): string => (typeof v === 'object' && v !== null ? toYaml(v).trimEnd() : showValue(v, 10_000));

interface OptionsArgs {
  format: 'json' | 'markdown';
  config?: string;
}

const optionsCommand: CommandModule<object, OptionsArgs> = {
  command: 'options [config]',
  describe: 'The options manual: every option of cairn (and of a configuration\'s own modules)',
  builder: (y) =>
    y
      .positional('config', { type: 'string', describe: 'Include the options this configuration declares' })
      .option('format', { choices: ['json', 'markdown'] as const, default: 'markdown' as const, describe: 'Output format' }),
  handler: async (args) => {
    const result = await evaluate(args.config, false);
    const docs = documentedOptions(result.evaluation.decls);
    out(args.format === 'json' ? JSON.stringify(Object.fromEntries(docs.map((d) => [d.path, jsonDoc(d)])), null, 2) : markdown(docs));
  },
};

function jsonDoc(d: DocumentedOption): Record<string, unknown> {
  return {
    type: d.type,
    description: d.description ?? '',
    ...(d.defaultText !== undefined ? { defaultText: d.defaultText } : d.default !== undefined ? { default: toPlain(d.default) } : {}),
    ...(d.example !== undefined ? { example: toPlain(d.example) } : {}),
    readOnly: d.readOnly,
    declarations: d.declarations.map(formatLocation),
  };
}

function markdown(docs: DocumentedOption[]): string {
  const parts = ['# cairn options', ''];
  for (const d of docs) {
    parts.push(`## \`${d.path}\``, '', d.description ?? '', '', `*Type:* ${d.type}`, '');
    if (d.defaultText !== undefined) parts.push(`*Default:* \`${d.defaultText}\``, '');
    else if (d.default !== undefined) parts.push(`*Default:* \`${JSON.stringify(toPlain(d.default))}\``, '');
    if (d.example !== undefined) parts.push(`*Example:* \`${JSON.stringify(toPlain(d.example))}\``, '');
    if (d.readOnly) parts.push('*Read-only.*', '');
    parts.push(`*Declared in:* ${d.declarations.map((l) => `\`${formatLocation(l)}\``).join(', ')}`, '');
  }
  return parts.join('\n');
}

const schemaCommand: CommandModule<object, { config?: string }> = {
  command: 'schema [config]',
  describe: 'Print the JSON Schema of configuration files (for editors such as yaml-language-server)',
  builder: (y) => y.positional('config', { type: 'string', describe: 'Include the options this configuration declares' }),
  handler: async (args) => {
    const result = await evaluate(args.config, false);
    out(JSON.stringify(fileSchema(result.evaluation.decls), null, 2));
  },
};

/** cairn's library declarations (`Lib`, `Package`), written by `npm run build` beside the bundle. */
const LIB_DECLARATIONS = join(projectRoot, 'dist', 'types', 'src', 'lib', 'index.d.ts');

const typesCommand: CommandModule<object, { config?: string; output?: string }> = {
  command: 'types [config]',
  describe: 'Print TypeScript declarations of the options (`config` as modules read it, and ModuleArgs) for editors and tsc',
  builder: (y) =>
    y
      .positional('config', { type: 'string', describe: 'Include the options this configuration declares' })
      .option('output', { alias: 'o', type: 'string', describe: 'Write them to this file (e.g. cairn.d.ts) instead of printing them' }),
  handler: async (args) => {
    const result = await evaluate(args.config, false);
    const found = existsSync(LIB_DECLARATIONS);
    if (!found) process.stderr.write(`warning: cairn's library declarations are missing (${LIB_DECLARATIONS}; \`npm run build\` writes them): \`lib' is left untyped\n`);
    const text = typeDeclarations(result.evaluation.decls, {
      libModule: found ? LIB_DECLARATIONS.replace(/\.d\.ts$/, '.js') : undefined,
      source: args.config === undefined ? "cairn's modules" : `cairn's modules and ${JSON.stringify(args.config)}`,
    });
    if (args.output === undefined) out(text);
    else writeFileAtomic(resolve(args.output), text);
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const evalCommands: CommandModule<any, any>[] = [evalCommand, optionCommand, optionsCommand, schemaCommand, typesCommand];
