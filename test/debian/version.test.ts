import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { compareVersions, parseVersion, satisfiesVersion } from '../../src/debian/version.js';

const VERSIONS = [
  '0', '1', '1.0', '1.0-1', '1.0-1~bpo1', '1.0~rc1', '1.0~rc1-1', '1.0~~', '1.0~', '1.0+dfsg', '1.0a', '1.0.1', '1.00', '01.0',
  '1:0.9', '1:1.0', '2:0', '0:1.0', '1.0-0', '1.0-1+b1', '1.0-1.1', '1.0-10', '1.0-2', '2.36-9+deb12u14', '2.36-9+deb12u4',
  '252.39-1~deb12u1', '252.39-1', '252.38-1~deb12u1', '1:9.2p1-2+deb12u10', '1:9.2p1-2+deb12u9', '1.9.13p3-1+deb12u4', 'a', 'A',
  '1.0-a', '1.0-A', '1.2.3~alpha', '1.2.3~beta', '1.2.3', '10', '9', '1.0-1a', '1.0-1-1', '1.0+', '1.0.', '1~~a', '1~a', '1:1.2.13.dfsg-1',
];

describe('Debian version comparison', () => {
  it('splits epoch, upstream and revision', () => {
    expect(parseVersion('1:2.3-4-5')).toEqual({ epoch: 1, upstream: '2.3-4', revision: '5' });
    expect(parseVersion('2.3')).toEqual({ epoch: 0, upstream: '2.3', revision: '' });
  });

  it('orders ~ before everything and compares digits numerically', () => {
    expect(compareVersions('1.0~rc1', '1.0')).toBeLessThan(0);
    expect(compareVersions('1.0~~', '1.0~')).toBeLessThan(0);
    expect(compareVersions('1.10', '1.9')).toBeGreaterThan(0);
    expect(compareVersions('1:0.1', '9.9')).toBeGreaterThan(0);
    expect(compareVersions('1.00', '1.0')).toBe(0);
  });

  it('agrees with dpkg --compare-versions on every pair of a varied list', () => {
    // One dpkg call per pair would take minutes; sort with dpkg's own "lt" through a shell loop instead.
    const pairs: [string, string][] = [];
    for (const a of VERSIONS) for (const b of VERSIONS) if (a < b) pairs.push([a, b]);
    const script = pairs.map(([a, b]) => `if dpkg --compare-versions '${a}' lt '${b}'; then echo -1; elif dpkg --compare-versions '${a}' eq '${b}'; then echo 0; else echo 1; fi`).join('\n');
    const out = execFileSync('sh', [], { input: script, encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').map(Number);
    expect(out.length).toBe(pairs.length);
    const mismatches = pairs.filter(([a, b], i) => Math.sign(compareVersions(a, b)) !== out[i]).map(([a, b], i) => `${a} vs ${b}: dpkg ${out[i]}`);
    expect(mismatches).toEqual([]);
    expect(pairs.length).toBeGreaterThan(1000);
  }, 120_000);

  it('checks relation operators', () => {
    expect(satisfiesVersion('2.36-9', '>=', '2.34')).toBe(true);
    expect(satisfiesVersion('2.36-9', '<<', '2.36-9')).toBe(false);
    expect(satisfiesVersion('2.36-9', '<=', '2.36-9')).toBe(true);
    expect(satisfiesVersion('2.36-9', '=', '2.36-9')).toBe(true);
    expect(satisfiesVersion('2.36-9', '>>', '2.36-8')).toBe(true);
  });
});
