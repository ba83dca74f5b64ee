/** Printing evaluated values: toJson writes what JSON.stringify(toPlain(value)) would, without the copy. */
import { describe, expect, it } from 'vitest';
import { toJson, toPlain } from '../../src/eval/index.js';
import { OptionError } from '../../src/lib/index.js';

describe('toJson', () => {
  it('agrees with JSON.stringify of the plain copy', () => {
    const cases: unknown[] = [
      1,
      'a\nb "quoted"',
      null,
      true,
      [],
      {},
      [1, [2, {}], { a: undefined, b: () => 1 }],
      { x: { y: [undefined, () => 2, NaN, -0] }, z: {}, '': 'empty key' },
      { d: new Date(0), n: { toJSON: () => ({ a: [1, 2], b: 'x' }) } },
      [{ toJSON: () => undefined }],
      { u: { toJSON: () => undefined }, deep: [[[]], [{}]] },
    ];
    for (const c of cases) expect(toJson(c)).toBe(JSON.stringify(toPlain(c), null, 2));
  });

  it('leaves out options nobody defined, as toPlain does, and names a value that contains itself', () => {
    const value = {
      kept: 1,
      get unset(): never {
        throw new OptionError("The option `unset' was accessed but has no value defined. Try setting the option.");
      },
    };
    expect(toJson(value)).toBe('{\n  "kept": 1\n}');
    const cycle: Record<string, unknown> = { a: {} };
    (cycle.a as Record<string, unknown>).back = cycle;
    expect(() => toJson(cycle, ['top'])).toThrow("The value at `top.a.back' is one that contains it (a cycle)");
  });
});
