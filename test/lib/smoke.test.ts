import { describe, it, expect } from 'vitest';
import { evalModulesSync, lib } from '../../src/lib/index.js';
const { mkOption, types, mkIf, mkForce, mkDefault } = lib;

describe('smoke', () => {
  it('evaluates', () => {
    const ev = evalModulesSync({ modules: [
      { options: { a: { enable: lib.mkEnableOption('a'), x: mkOption({ type: types.int, default: 1 }) }, list: mkOption({ type: types.listOf(types.str), default: [] }) } },
      ({ config }: any) => ({ config: mkIf(config.a.enable, { a: { x: 5 }, list: ['q'] }) }),
      { a: { enable: true } , list: ['p']},
      { a: { x: mkForce(7) } },
    ]});
    expect(ev.config).toMatchObject({ a: { enable: true, x: 7 }, list: ['q', 'p'] });
  });
});
