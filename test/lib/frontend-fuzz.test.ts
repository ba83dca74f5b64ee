import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CairnError } from '../../src/errors.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { loadModuleFile } from '../../src/lib/loader.js';
import { scratchWithHome } from './helpers.js';

/**
 * Arbitrary documents loaded as configurations either load (and evaluate) or give a CairnError:
 * never another exception, never a hang. The seed is fixed so that a failure reproduces; fast-check
 * prints the shrunk counterexample and its path.
 */
const SEED = 1303;

const scratch = scratchWithHome('cairn-fuzz');
let n = 0;

function write(ext: string, content: string | Uint8Array): string {
  const file = join(scratch.dir(), `doc${n++}.${ext}`);
  writeFileSync(file, content);
  return file;
}

/** Runs `fn`; anything thrown must be a CairnError. */
async function onlyCairnErrors(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof CairnError)) throw new Error(`not a CairnError: ${(err as Error)?.stack ?? String(err)}`);
  }
}

// Keys that mean something to cairn or to JavaScript objects, and plain ones.
const key = fc.constantFrom('networking', 'hostName', 'services', 'openssh', 'settings', 'environment', 'etc', 'text', 'imports', 'config', 'options', 'users', 'a', 'b', '__proto__', 'constructor', 'toString', '0', '');
const scalar = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(key, tie('value'), { maxKeys: 4 })),
}));

// YAML text from pieces that make tags, anchors, aliases, flow and block structure likely.
const yamlPiece = fc.constantFrom(
  'a:', 'b: ', 'networking:', '  hostName: ', 'services:\n  openssh:\n    settings:\n      ', '\n', '  ', '- ', '&x ', '&y ', '*x', '*y', '<<: *x', '[', ']', '{', '}', ', ', ': ',
  '!mkForce ', '!mkDefault ', '!mkOverride 900 ', '!mkOverride:90 ', '!mkOrder ', '!mkMerge ', '!mkOption ', '!unknown ', '!!str ', '"', "'", '#', '|\n  ', '>-\n', '1', '-7', 'true', 'null', '~', '.inf', 'web1', '\t', '\u00e9', '\uFFFD', '---\n', '...\n', '? ',
);
const yamlText = fc.array(yamlPiece, { maxLength: 30 }).map((p) => p.join(''));

// Nested anchors and aliases: each level repeats the previous one a few times.
const aliasLevels = fc.tuple(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 12 })).map(([levels, width]) => {
  const lines = ['l0: &l0 [x, y]'];
  for (let i = 1; i <= levels; i++) lines.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(', ')}]`);
  return `${lines.join('\n')}\n`;
});

const run = <T extends unknown[]>(prop: fc.IAsyncProperty<T>, numRuns: number) => fc.assert(prop, { numRuns, seed: SEED, endOnFailure: true });

describe('the YAML and JSON front end on arbitrary input', () => {
  it('random bytes, as YAML and as JSON', async () => {
    await run(fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (bytes) => {
      await onlyCairnErrors(() => loadModuleFile(write('yaml', bytes), { file: '<fuzz>' }));
      await onlyCairnErrors(() => loadModuleFile(write('json', bytes), { file: '<fuzz>' }));
    }), 300);
  }, 20_000);

  it('random YAML text with tags, anchors and aliases', async () => {
    await run(fc.asyncProperty(fc.oneof(yamlText, aliasLevels, fc.string({ maxLength: 60 })), async (text) => {
      await onlyCairnErrors(() => loadModuleFile(write('yaml', text), { file: '<fuzz>' }));
    }), 250);
  }, 20_000);

  it('random JSON text, with keys written twice', async () => {
    const json = fc.tuple(value, fc.boolean()).map(([v, dup]) => {
      const text = JSON.stringify(v);
      // A copy of the first entry of the first object, written again after it.
      return dup ? text.replace(/\{("(?:[^"\\]|\\.)*":(?:[^,{}[\]]*))/, '{$1,$1') : text;
    });
    await run(fc.asyncProperty(fc.oneof(json, fc.string({ maxLength: 40 })), async (text) => {
      await onlyCairnErrors(() => loadModuleFile(write('json', text), { file: '<fuzz>' }));
    }), 300);
  }, 20_000);

  it('random nested documents evaluate as configurations or give a CairnError', async () => {
    // Some documents at the places where options are, so that evaluation gets past the top level.
    const doc = fc.oneof(
      value,
      value.map((v) => ({ networking: { hostName: v } })),
      value.map((v) => ({ services: { openssh: { settings: { MaxAuthTries: v } } } })),
      value.map((v) => ({ environment: { etc: { motd: v } } })),
    );
    await run(fc.asyncProperty(doc, fc.boolean(), async (v, asJson) => {
      const file = asJson ? write('json', JSON.stringify(v)) : write('yaml', stringify(v, { aliasDuplicateObjects: true }));
      await onlyCairnErrors(async () => JSON.stringify((await evalConfigFile(file)).config.environment.etc));
    }), 25);
  }, 60_000);
});
