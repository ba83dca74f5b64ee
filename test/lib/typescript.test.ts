/** TypeScript declarations of an option tree (`cairn types`): how each option type is written. */
import { describe, expect, it } from 'vitest';
import { lib, mkOptionType, type ModuleInput } from '../../src/lib/index.js';
import { typeDeclarations } from '../../src/lib/typescript.js';
import { evaluate } from './helpers.js';

const { mkOption, types } = lib;

/** The `Config` interface for some modules' declarations. */
function configOf(...modules: ModuleInput[]): string {
  const text = typeDeclarations(evaluate(...modules).decls, { libModule: '/cairn/lib.js', source: 'a test' });
  return text.slice(text.indexOf('export interface Config'), text.indexOf('export interface ModuleArgs'));
}

describe('cairn types: declarations of options', () => {
  it('maps option types to TypeScript types', () => {
    const custom = mkOptionType({ name: 'mine', description: 'mine', check: () => true, merge: (_l, defs) => defs[0]!.value, jsonSchema: () => ({}) });
    // A type of a module's own making that holds a string (its JSON Schema says so), as services.fstrim.interval.
    const calendar = mkOptionType({ name: 'calendar', description: 'calendar', check: (v) => typeof v === 'string', merge: (_l, defs) => defs[0]!.value, jsonSchema: () => ({ type: 'string', pattern: '^\\S+$' }) });
    const level = mkOptionType({ name: 'level', description: 'level', check: (v) => typeof v === 'number', merge: (_l, defs) => defs[0]!.value, jsonSchema: () => ({ type: 'integer' }) });
    const config = configOf({
      options: {
        a: {
          flag: mkOption({ type: types.bool }),
          port: mkOption({ type: types.port }),
          ratio: mkOption({ type: types.float }),
          text: mkOption({ type: types.lines }),
          unit: mkOption({ type: types.unitName }),
          mode: mkOption({ type: types.enum(['a', 'b', 3]) }),
          list: mkOption({ type: types.listOf(types.either(types.str, types.int)) }),
          maybe: mkOption({ type: types.nullOr(types.listOf(types.path)) }),
          byName: mkOption({ type: types.attrsNamed(types.fileName, types.oneOf([types.bool, types.str, types.enum(['x'])])) }),
          lazy: mkOption({ type: types.lazyAttrsOf(types.uniq(types.int)) }),
          pkg: mkOption({ type: types.package }),
          any: mkOption({ type: types.anything }),
          own: mkOption({ type: custom }),
          when: mkOption({ type: types.nullOr(calendar) }),
          levels: mkOption({ type: types.listOf(level) }),
          untyped: mkOption({}),
        },
      },
    });
    expect(config).toContain('    flag: boolean;\n    port: number;\n    ratio: number;\n    text: string;\n    unit: string;\n');
    expect(config).toContain('    mode: "a" | "b" | 3;\n');
    expect(config).toContain('    list: (string | number)[];\n');
    expect(config).toContain('    maybe: string[] | null;\n');
    // A literal beside its whole type is left out.
    expect(config).toContain('    byName: Record<string, boolean | string>;\n');
    expect(config).toContain('    lazy: Record<string, number>;\n');
    expect(config).toContain('    pkg: Package;\n');
    expect(config).toContain('    any: unknown;\n    own: unknown;\n    when: string | null;\n    levels: number[];\n    untyped: unknown;\n');
  });

  it('writes submodules as object types, freeform sets with an index signature, descriptions as JSDoc', () => {
    const config = configOf({
      options: {
        hosts: mkOption({
          type: types.attrsOf(
            types.submodule(({ name }: { name: string }) => ({
              freeformType: types.attrsOf(types.int),
              options: { root: mkOption({ type: types.str, default: `/srv/${name}`, description: 'Where the files are.\nEnds a comment: */ not.' }) },
            })),
          ),
        }),
        'odd-name': mkOption({ type: types.str, description: 'One line.' }),
      },
    });
    expect(config).toContain(
      [
        '  hosts: Record<string, {',
        '    /**',
        '     * Where the files are.',
        '     * Ends a comment: *\\/ not.',
        '     */',
        '    root: string;',
        '    [name: string]: number | string;',
        '  }>;',
        '  /** One line. */',
        '  "odd-name": string;',
      ].join('\n'),
    );
  });

  it('leaves out removed options; a submodule within itself is unknown', () => {
    const tree: ReturnType<typeof types.submodule> = types.submodule(() => ({
      options: { left: mkOption({ type: types.nullOr(tree) }), right: mkOption({ type: types.nullOr(tree) }), value: mkOption({ type: types.int }) },
    }));
    // A new type at each level: cut at a depth, before the declarations grow past reading.
    const fresh = (): ReturnType<typeof types.submodule> => types.submodule(() => ({ options: { a: mkOption({ type: fresh() }), b: mkOption({ type: fresh() }) } }));
    const config = configOf(lib.mkRemovedOptionModule(['old'], 'gone'), { options: { tree: mkOption({ type: tree }), fresh: mkOption({ type: fresh() }) } });
    expect(config).not.toContain('old');
    expect(config).toContain('  tree: {\n    left: unknown;\n    right: unknown;\n    value: number;\n  };\n');
    expect(config).toContain('a: unknown;');
    expect(config.length).toBeLessThan(100_000);
  });
});
