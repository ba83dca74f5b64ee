import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CairnError } from '../../src/errors.js';
import { evalConfigFile } from '../../src/eval/index.js';
import { loadModuleFile } from '../../src/lib/loader.js';
import { parseYaml } from '../../src/lib/yaml.js';
import { asyncErrorOf, deep, errorOf, scratchWithHome } from './helpers.js';

const scratch = scratchWithHome('cairn-frontend');

function write(name: string, content: string | Buffer): string {
  const file = join(scratch.dir(), name);
  writeFileSync(file, content);
  return file;
}

const load = (file: string) => loadModuleFile(file, { file: '<test>' });
const loaded = async (file: string) => deep(((await load(file)) as { value: unknown }).value);

describe('YAML aliases', () => {
  it('an anchor bomb (9 levels of 10 aliases) is refused with a named error, at once', () => {
    const lines = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i < 10; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const msg = errorOf(() => parseYaml(`${lines.join('\n')}\n`, '/virtual/bomb.yaml'));
    expect(msg).toMatch(/^\/virtual\/bomb\.yaml:\d+:\d+: YAML aliases expand to more than \d+ values \(the alias expansion limit\)/);
  }, 3000);

  it('an alias inside its own anchor is refused, not expanded forever', () => {
    expect(errorOf(() => parseYaml('a: &x [1, *x]\n', '/virtual/self.yaml'))).toBe("/virtual/self.yaml:1:11: the alias `*x' refers to a value that contains it");
  });

  it('reused mappings keep working', () => {
    const entries = Array.from({ length: 40 }, (_, i) => `  u${i}: *user`).join('\n');
    const v = parseYaml(`base: &user {isNormalUser: true, extraGroups: [wheel, audio]}\nusers:\n${entries}\n`, '/virtual/ok.yaml') as any;
    expect(Object.keys(v.users)).toHaveLength(40);
    expect(v.users.u39).toEqual({ isNormalUser: true, extraGroups: ['wheel', 'audio'] });
  });

  it('a key named __proto__ is an entry, not the prototype', () => {
    const v = parseYaml('__proto__: {a: 1}\n', '/virtual/p.yaml') as object;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
  });
});

describe('configuration bytes and keys', () => {
  it('bytes that are not UTF-8 are refused with file:line, in YAML and JSON', async () => {
    const yaml = write('latin1.yaml', Buffer.concat([Buffer.from('networking:\n  hostName: "w'), Buffer.from([0xe9]), Buffer.from('b"\n')]));
    expect(await asyncErrorOf(() => load(yaml))).toBe(`${yaml}:2:15: the file is not UTF-8 text (byte 0xe9); save it as UTF-8`);
    const json = write('bad.json', Buffer.concat([Buffer.from('{"networking":\n {"hostName": "w'), Buffer.from([0xff]), Buffer.from('"}}\n')]));
    expect(await asyncErrorOf(() => load(json))).toBe(`${json}:2:17: the file is not UTF-8 text (byte 0xff); save it as UTF-8`);
  });

  it('UTF-8 text (a byte-order mark, U+FFFD written on purpose) still loads', async () => {
    const file = write('bom.json', '\uFEFF{"motd": "caf\u00e9 \uFFFD"}');
    expect(await loaded(file)).toEqual({ motd: 'caf\u00e9 \uFFFD' });
  });

  it('a key written twice in one JSON object is refused with file:line, as in YAML', async () => {
    const json = write('dup.json', '{"a": {"c": "x,}{[\\"c\\""},\n "b": {"c": 2,\n  "c": 3}}\n');
    expect(await asyncErrorOf(() => load(json))).toBe(`${json}:3:3: the key \`c' appears twice in one object`);
    const yaml = write('dup.yaml', 'b:\n  c: 2\n  c: 3\n');
    expect(await asyncErrorOf(() => load(yaml))).toMatch(new RegExp(`^${yaml}:3:3: invalid YAML: Map keys must be unique`));
    // The same key in different objects is no duplicate.
    expect(await loaded(write('nodup.json', '{"a": {"c": 1}, "b": {"c": 2}, "l": [{"c": 1}, {"c": 2}]}'))).toEqual({ a: { c: 1 }, b: { c: 2 }, l: [{ c: 1 }, { c: 2 }] });
  });
});

describe('freeform settings in YAML, JSON and TypeScript', () => {
  const configs = {
    yaml: (v: string) => `services:\n  openssh:\n    enable: true\n    settings:\n      MaxAuthTries: ${v}\n`,
    json: (v: string) => `{"services": {"openssh": {"enable": true, "settings": {"MaxAuthTries": ${JSON.stringify(JSON.parse(v))}}}}}\n`,
    ts: (v: string) => `export default { services: { openssh: { enable: true, settings: { MaxAuthTries: ${v} } } } };\n`,
  };

  it('an undeclared key of the freeform type is accepted by all three', async () => {
    for (const [ext, text] of Object.entries(configs)) {
      const { config } = await evalConfigFile(write(`freeform.${ext}`, text('3')));
      expect(config.services.openssh.settings.MaxAuthTries, ext).toBe(3);
      expect(config.services.openssh.settings.PermitRootLogin, ext).toBe('prohibit-password');
    }
  }, 30_000);

  it('a value not of the freeform type is refused by all three, naming the option', async () => {
    for (const [ext, text] of Object.entries(configs)) {
      const err = await (async () => {
        try {
          return deep((await evalConfigFile(write(`freeform-bad.${ext}`, text('{"a": 1}')))).config.services.openssh.settings);
        } catch (e) {
          return e;
        }
      })();
      expect(err, ext).toBeInstanceOf(CairnError);
      expect((err as Error).message, ext).toContain('services.openssh.settings.MaxAuthTries');
    }
  }, 30_000);
});
