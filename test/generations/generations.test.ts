/**
 * Generations of a profile: adding (one link and one rename each), listing with their metadata,
 * comparing two (packages, units, /etc, kernel parameters, closure size), rollback and deletion,
 * through the library and `cairn generations`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store, removeTree } from '../../src/store/index.js';
import { buildSystem, type BuiltSystem } from '../../src/build/index.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { addGeneration, deleteGenerations, diffGenerations, listGenerations, parseAge, setCurrentGeneration, setGenerationDate } from '../../src/generations/index.js';

process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const CLI = resolve(import.meta.dirname, '../../bin/cairn.js');

let work: string;
let store: Store;
let one: BuiltSystem;
let two: BuiltSystem;

const base = (extra: string): string => `networking:\n  hostName: gen\nsystem:\n  stateVersion: "0.1"\n${extra}`;
const unit = (name: string, text: string): string =>
  `    ${name}:\n      description: ${name}\n      wantedBy: [multi-user.target]\n      serviceConfig: { Type: oneshot }\n      script: echo ${text}\n`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cairn-generations-'));
  store = Store.open(STORE_HOME);
  writeFileSync(join(work, 'one.yaml'), base(`environment:\n  etc:\n    motd: { text: "one\\n" }\nsystemd:\n  services:\n${unit('kept', 'same')}${unit('gone', 'bye')}${unit('edited', 'before')}`));
  writeFileSync(
    join(work, 'two.yaml'),
    base(`environment:\n  systemPackages: [less]\n  etc:\n    motd: { text: "two\\n" }\nboot:\n  kernelParams: [quiet]\nsystemd:\n  services:\n${unit('kept', 'same')}${unit('fresh', 'hi')}${unit('edited', 'after')}`),
  );
  one = await buildSystem(await evalConfigFile(join(work, 'one.yaml')), { store });
  two = await buildSystem(await evalConfigFile(join(work, 'two.yaml')), { store });
}, 900_000);

afterAll(() => {
  if (work) removeTree(work);
});

describe('a profile', () => {
  it('gets a generation per new toplevel, each a link, the profile moved by one rename', () => {
    const profile = join(work, 'profiles', 'system');
    expect(addGeneration(store, profile, one.toplevel)).toBe(1);
    expect(addGeneration(store, profile, two.toplevel)).toBe(2);
    expect(addGeneration(store, profile, two.toplevel)).toBe(2); // the same toplevel again: no new generation
    expect(readlinkSync(profile)).toBe('system-2-link');
    expect(readdirSync(join(work, 'profiles')).sort()).toEqual(['system', 'system-1-link', 'system-2-link']); // no temporary names left
    const gens = listGenerations(store, profile);
    expect(gens.map((g) => [g.number, g.toplevel, g.current])).toEqual([
      [1, one.toplevel, false],
      [2, two.toplevel, true],
    ]);
    expect(gens[1]!.label).toBe('cairn 0.1 (gen)');
    expect(gens[1]!.kernelVersion).toMatch(/^\d+\.\d+/);
    expect(gens[0]!.configurationHash).toMatch(/^[0-9a-f]{64}$/);
    expect(gens[0]!.configurationHash).not.toBe(gens[1]!.configurationHash);
  });

  it('compares two generations: packages, units, /etc, kernel parameters, closure size', () => {
    const d = diffGenerations(store, one.toplevel, two.toplevel);
    expect(d.packages.find((p) => p.name === 'less')).toMatchObject({ before: null, after: expect.stringMatching(/^\d/) });
    expect(d.units).toEqual(
      expect.arrayContaining([
        { unit: 'fresh.service', change: 'added' },
        { unit: 'gone.service', change: 'removed' },
        { unit: 'edited.service', change: 'changed' },
      ]),
    );
    expect(d.units.find((u) => u.unit === 'kept.service')).toBeUndefined();
    expect(d.etc).toContainEqual({ path: 'motd', change: 'changed' });
    expect(d.kernelParams?.after).toContain('quiet');
    expect(d.kernel).toBeNull();
    expect(d.closureBytes.after).toBeGreaterThan(d.closureBytes.before);
  });

  it('rolls back, and deletes generations but never the current one', () => {
    const profile = join(work, 'p2', 'system');
    for (const t of [one.toplevel, two.toplevel]) addGeneration(store, profile, t);
    setCurrentGeneration(store, profile, 1);
    expect(listGenerations(store, profile).find((g) => g.current)?.number).toBe(1);
    expect(() => deleteGenerations(store, profile, { numbers: [1] })).toThrow('generation 1 is the current one');
    setGenerationDate(profile, 2, Date.now() / 1000 - 40 * 86400);
    expect(deleteGenerations(store, profile, { olderThanSeconds: parseAge('30d') })).toEqual([2]);
    expect(listGenerations(store, profile).map((g) => g.number)).toEqual([1]);
    expect(() => parseAge('a month')).toThrow('expected a number and d, h, m or s');
  });
});

describe('cairn generations', () => {
  it('lists, diffs, rolls back and deletes from the command line', async () => {
    const profile = join(work, 'cli', 'system');
    const env = { CAIRN_HOME: STORE_HOME };
    const b1 = await execa('node', [CLI, 'build', join(work, 'one.yaml'), '--no-link', '--profile', profile], { env, reject: false });
    expect(b1.exitCode, b1.stderr).toBe(0);
    expect(b1.stderr).toContain(`generation 1 of ${profile}`);
    await execa('node', [CLI, 'build', join(work, 'two.yaml'), '--no-link', '--profile', profile], { env });
    const list = JSON.parse((await execa('node', [CLI, 'generations', 'list', '--profile', profile, '--json'], { env })).stdout);
    expect(list.map((g: { number: number; current: boolean }) => [g.number, g.current])).toEqual([
      [1, false],
      [2, true],
    ]);
    const diff = (await execa('node', [CLI, 'generations', 'diff', '1', '2', '--profile', profile], { env })).stdout;
    expect(diff).toMatch(/^packages:\n(.*\n)*  \+ less \d/m);
    expect(diff).toContain('  + fresh.service');
    expect(diff).toContain('  - gone.service');
    expect(diff).toContain('  ~ edited.service');
    expect(diff).toContain('  ~ motd');
    expect(diff).toMatch(/^kernel parameters: .* → .*quiet$/m);
    expect(diff).toMatch(/^closure: .* → .* \(\+/m);
    const rb = await execa('node', [CLI, 'generations', 'rollback', '--profile', profile], { env });
    expect(rb.stdout).toContain('is generation 1');
    const del = await execa('node', [CLI, 'generations', 'delete', '--keep', '1', '--profile', profile], { env, reject: false });
    expect(del.stdout).toContain('nothing to delete'); // generation 2 is newer and 1 is current
    const bad = await execa('node', [CLI, 'generations', 'delete', '--profile', profile], { env, reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('name generations, --older-than AGE or --keep N');
  }, 300_000);

  it('cairn switch refuses to run on a machine that is not a running cairn system, before building anything', async () => {
    for (const action of ['switch', 'activate', 'dry-activate', 'rollback']) {
      const r = await execa('node', [CLI, action, ...(action === 'rollback' ? [] : [join(work, 'one.yaml')])], { env: { CAIRN_HOME: STORE_HOME }, reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`cairn ${action} changes the machine it runs on, and this is not a running cairn system`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
