import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const root = resolve(import.meta.dirname, '../..');
const cairn = (args: string[], cwd = root) => execa('node', [join(root, 'bin/cairn.js'), ...args], { cwd, reject: false, env: { CAIRN_HOME: home } });
let dir: string;
let home: string;

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-cli-'));
  home = mkdtempSync(join(tmpdir(), 'cairn-home-'));
});

describe('cairn eval', () => {
  it('ends quietly when its reader stops reading (| head)', async () => {
    // bash's own pipe: head exits after one line, closing the pipe while cairn still writes.
    const r = await execa('bash', ['-c', `set -o pipefail; node ${join(root, 'bin/cairn.js')} eval examples/server.yaml --json | head -n 1`], { cwd: root, reject: false, env: { ...process.env, CAIRN_HOME: home } });
    expect(r.stdout).toBe('{');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('prints the merged example configuration as JSON', async () => {
    const r = await cairn(['eval', 'examples/server.yaml', '--json']);
    expect(r.exitCode).toBe(0);
    const config = JSON.parse(r.stdout);
    expect(config.networking.hostName).toBe('web1');
    expect(config.system.name).toBe('web1');
    // Defined by the example's own TypeScript module from its options, reading config lazily.
    expect(config.environment.etc.motd.text).toBe('This is web1.\nManaged by cairn: local changes are replaced on the next switch.\n');
    // Submodule defaults that depend on other options of the same user.
    expect(config.users.users.alice).toMatchObject({ home: '/home/alice', shell: '/bin/bash', createHome: true, extraGroups: ['wheel'] });
    expect(config.users.users.deploy).toMatchObject({ home: '/var/empty', shell: '/usr/sbin/nologin' });
    // The user's packages, and those the enabled services need (sshd, nginx, the firewall…).
    expect(config.environment.systemPackages).toEqual(expect.arrayContaining(['curl', 'vim-tiny', 'less', 'openssh-server', 'nginx', 'nftables']));
  });

  it('--json prints the same value as the YAML output, formatted as JSON.stringify does', async () => {
    const [json, yaml] = await Promise.all([cairn(['eval', 'examples/server.yaml', '--json']), cairn(['eval', 'examples/server.yaml'])]);
    expect(json.exitCode).toBe(0);
    const value = JSON.parse(json.stdout);
    expect(value).toEqual(parseYaml(yaml.stdout));
    expect(json.stdout).toBe(JSON.stringify(value, null, 2));
  });

  it("evaluates a TypeScript module that imports an npm package written as CommonJS requiring Node's own modules", async () => {
    mkdirSync(join(dir, 'node_modules', 'host-facts'), { recursive: true });
    write('node_modules/host-facts/package.json', '{"name":"host-facts","main":"index.js"}');
    write('node_modules/host-facts/index.js', "const os = require('os');\nconst { sep } = require('node:path');\nmodule.exports = { name: 'facts' + os.EOL.length + sep };\n");
    const mod = write('facts.ts', "import facts from 'host-facts';\nexport default { networking: { hostName: facts.name.replace('/', '-x') } };\n");
    const r = await cairn(['eval', mod, '--option', 'networking.hostName']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('facts1-x');
  });

  it('prints one option with --option', async () => {
    const r = await cairn(['eval', 'examples/server.yaml', '--json', '--option', 'users.users.alice.home']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('/home/alice');
  });

  it('reports conflicting definitions with both positions and the priority hint, exit 1, no stack', async () => {
    const b = write('b.yaml', 'networking:\n  hostName: beta\n');
    const a = write('a.yaml', `imports: [./b.yaml]\nnetworking:\n  hostName: alpha\n`);
    const r = await cairn(['eval', a]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("The option `networking.hostName' has conflicting definition values:");
    expect(r.stderr).toContain(`${a}:3:3': "alpha"`);
    expect(r.stderr).toContain(`${b}:2:3': "beta"`);
    expect(r.stderr).toContain('!mkForce');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('gives TypeScript definitions their line and column too', async () => {
    const ts = write('t1.ts', "export default ({ lib }) => ({\n  networking: {\n    hostName: 'from-ts',\n  },\n  users: { users: { carol: { isNormalUser: true, uid: 1001 } } },\n});\n");
    const y = write('t2.yaml', 'imports: [./t1.ts]\nusers:\n  users:\n    carol:\n      uid: 1002\n');
    const r = await cairn(['eval', y]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("The option `users.users.carol.uid' has conflicting definition values:");
    expect(r.stderr).toContain(`${y}:5:7': 1002`);
    expect(r.stderr).toContain(`${ts}:5:50': 1001`);
  });

  it('lets !mkForce win a conflict', async () => {
    write('b2.yaml', 'networking:\n  hostName: beta\n');
    const a = write('a2.yaml', `imports: [./b2.yaml]\nnetworking:\n  hostName: !mkForce alpha\n`);
    const r = await cairn(['eval', a, '--json', '--option', 'networking.hostName']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('alpha');
  });

  it('names unknown options with their position and the nearest existing name', async () => {
    const c = write('c.yaml', 'networking:\n  hostname: x\nusers:\n  users:\n    bob:\n      isNormalUser: true\n      extraGroup: [a]\n');
    const r = await cairn(['eval', c]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("The option `networking.hostname' does not exist.");
    expect(r.stderr).toContain(`${c}:2:3'`);
    expect(r.stderr).toContain("Did you mean `networking.hostName'?");
    expect(r.stderr).toContain("The option `users.users.bob.extraGroup' does not exist.");
    expect(r.stderr).toContain(`${c}:7:7'`);
    expect(r.stderr).toContain("Did you mean `users.users.bob.extraGroups'?");
  });

  it('reports a value of the wrong type at its position, before evaluation', async () => {
    const d = write('d.yaml', 'users:\n  users:\n    bob:\n      isNormalUser: true\n      uid: "many"\n');
    const r = await cairn(['eval', d]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("A definition for option `users.users.bob.uid' is not of type `null or integer between 0 and 4294967294 (both inclusive)'");
    expect(r.stderr).toContain(`${d}:5:7': "many"`);
  });

  it('keeps compiled validators on disk: a later process reuses them, and a damaged one is replaced', async () => {
    const own = mkdtempSync(join(tmpdir(), 'cairn-home-'));
    const run = (file: string) => execa('node', [join(root, 'bin/cairn.js'), 'eval', file], { reject: false, env: { CAIRN_HOME: own } });
    const cached = () => readdirSync(join(own, 'cache', 'validators')).map((f) => join(own, 'cache', 'validators', f));
    const f = write('cached.yaml', 'networking:\n  hostname: x\nusers:\n  users:\n    bob:\n      isNormalUser: true\n      uid: "many"\n');
    const expectRejected = (r: { exitCode?: number; stderr: string }) => {
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain("The option `networking.hostname' does not exist.");
      expect(r.stderr).toContain(`${f}:2:3'`);
      expect(r.stderr).toContain("A definition for option `users.users.bob.uid' is not of type `null or integer between 0 and 4294967294 (both inclusive)'");
      expect(r.stderr).toContain(`${f}:7:7': "many"`);
    };
    const first = await run(f);
    expectRejected(first);
    const [file, ...others] = cached();
    expect(others).toEqual([]);
    const written = readFileSync(file!, 'utf8');
    const { ino } = statSync(file!);
    // Reused, not compiled again (which would replace the file): the same messages.
    const second = await run(f);
    expect(second.stderr).toBe(first.stderr);
    expect(statSync(file!).ino).toBe(ino);
    // Damaged files (cut short, or not code at all) are compiled again and replaced.
    for (const damaged of [written.slice(0, written.length / 2), 'garbage']) {
      writeFileSync(file!, damaged);
      const again = await run(f);
      expect(again.stderr).toBe(first.stderr);
      expect(readFileSync(file!, 'utf8')).toBe(written);
    }
  });

  it('marks data found valid: the same data against the same schema is not validated again', async () => {
    const own = mkdtempSync(join(tmpdir(), 'cairn-home-'));
    const run = (file: string) => execa('node', [join(root, 'bin/cairn.js'), 'eval', file, '--option', 'networking.hostName'], { reject: false, env: { CAIRN_HOME: own } });
    const dirOf = join(own, 'cache', 'validators');
    const f = write('marked.yaml', 'networking:\n  hostName: marked\n');
    expect((await run(f)).stdout).toContain('marked');
    const validators = readdirSync(dirOf).filter((n) => n.endsWith('.cjs'));
    expect(validators).toHaveLength(1);
    expect(readdirSync(dirOf).filter((n) => n.endsWith('.valid'))).toHaveLength(1);
    // A damaged validator is not even read for marked data; other data loads it, and replaces it.
    const validator = join(dirOf, validators[0]!);
    const code = readFileSync(validator, 'utf8');
    writeFileSync(validator, 'garbage');
    expect((await run(f)).stdout).toContain('marked');
    expect(readFileSync(validator, 'utf8')).toBe('garbage');
    writeFileSync(f, 'networking:\n  hostName: remarked\n');
    expect((await run(f)).stdout).toContain('remarked');
    expect(readFileSync(validator, 'utf8')).toBe(code);
    expect(readdirSync(dirOf).filter((n) => n.endsWith('.valid'))).toHaveLength(2);
  });

  it('prints the warnings of user modules on stderr and still succeeds', async () => {
    write(
      'legacy.ts',
      `export default ({ config, lib }) => ({
  options: { legacy: { enable: lib.mkEnableOption('the legacy mode') } },
  config: { warnings: lib.mkIf(config.legacy.enable, ['legacy.enable is deprecated; it goes away in the next release.']) },
});\n`,
    );
    const on = write('warn-on.yaml', 'imports: [./legacy.ts]\nlegacy:\n  enable: true\nwarnings:\n  - written in YAML\nnetworking:\n  hostName: warned\n');
    const r = await cairn(['eval', on, '--json']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr.split('\n')).toEqual(expect.arrayContaining(['warning: legacy.enable is deprecated; it goes away in the next release.', 'warning: written in YAML']));
    // Warnings go to stderr only: stdout stays the configuration.
    expect(JSON.parse(r.stdout)).toMatchObject({ networking: { hostName: 'warned' }, warnings: expect.arrayContaining(['written in YAML']) });
    const one = await cairn(['eval', on, '--option', 'networking.hostName']);
    expect(one.exitCode).toBe(0);
    expect(one.stderr).toContain('warning: written in YAML\n');
    expect(one.stdout.trim()).toBe('warned');
    // The module's warning follows its condition.
    const off = write('warn-off.yaml', 'imports: [./legacy.ts]\n');
    const quiet = await cairn(['eval', off]);
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stderr).not.toContain('warning:');
  });

  it('reports failed assertions', async () => {
    const e = write('e.yaml', 'users:\n  users:\n    bob: { isNormalUser: true, isSystemUser: true }\n');
    const r = await cairn(['eval', e]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Failed assertions:\n- users.users.bob: exactly one of isNormalUser and isSystemUser must be true.');
  });

  it('reports a cycle between options as infinite recursion naming the chain', async () => {
    const m = write(
      'cycle.ts',
      `export default ({ lib, config }) => ({
  options: { a: lib.mkOption({ type: lib.types.int, get default() { return config.b + 1; } }),
             b: lib.mkOption({ type: lib.types.int, get default() { return config.a + 1; } }) },
});\n`,
    );
    const r = await cairn(['eval', m]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("infinite recursion encountered: `a' → `b' → `a'");
  });

  it('a TypeScript module computes with config values in its body', async () => {
    const m = write(
      'plain.ts',
      `export default ({ config, lib }) => ({
  environment: { etc: { x: { text: \`host \${config.networking.hostName}\` }, y: lib.mkIf(config.networking.hostName.length > 3, { text: 'long' }) } },
  warnings: config.time.timeZone === 'UTC' ? ['still UTC'] : [],
});\n`,
    );
    const r = await cairn(['eval', m, '--json']);
    expect(r.exitCode).toBe(0);
    const config = JSON.parse(r.stdout);
    expect(config.environment.etc.x.text).toBe('host cairn');
    expect(config.environment.etc.y.text).toBe('long');
    expect(config.warnings).toContain('still UTC');
  });

  it('reports a cycle between plain reads as infinite recursion, without a stack trace', async () => {
    const m = write(
      'plain-cycle.ts',
      `export default ({ lib, config }) => ({
  options: { a: lib.mkOption({ type: lib.types.int }), b: lib.mkOption({ type: lib.types.int }) },
  config: { a: config.b + 1, b: config.a + 1 },
});\n`,
    );
    const r = await cairn(['eval', m, '--option', 'a']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("infinite recursion encountered: `a' → `b' → `a'");
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('points at YAML syntax errors', async () => {
    const y = write('bad.yaml', 'networking:\n  hostName: [a\n');
    const r = await cairn(['eval', y]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${y}:\\d+:\\d+: invalid YAML`));
  });

  it('shows a stack with --show-trace', async () => {
    const b = write('t.yaml', 'networking:\n  nope: 1\n');
    const r = await cairn(['eval', b, '--show-trace']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^\s+at /m);
  });

  it('exits 2 on usage errors', async () => {
    expect((await cairn(['eval'])).exitCode).toBe(2);
    expect((await cairn(['no-such-command'])).exitCode).toBe(2);
    expect((await cairn(['eval', 'examples/server.yaml', '--no-such-flag'])).exitCode).toBe(2);
  });

  it('says when the configuration file does not exist', async () => {
    const r = await cairn(['eval', join(dir, 'missing.yaml')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('no configuration file at');
  });
});

describe('cairn option / options / schema', () => {
  it('shows where an option is declared and where it is defined', async () => {
    const r = await cairn(['option', 'networking.hostName', 'examples/server.yaml']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Value:\n  "web1"');
    expect(r.stdout).toMatch(/Declared in:\n {2}modules\/networking\/hostname\.ts:\d+:\d+/);
    expect(r.stdout).toMatch(/Defined in:\n {2}examples\/server\.yaml:\d+:\d+/);
  });

  it('prints the type, default, example and description of an option', async () => {
    const r = await cairn(['option', 'networking.hostName']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^Type:\n {2}string matching the pattern /);
    expect(r.stdout).toContain('\nDefault:\n  "cairn"\n');
    expect(r.stdout).toContain('\nExample:\n  "web1"\n');
    expect(r.stdout).toMatch(/\nDescription:\n {2}The host name of the machine\b.*\n/);
    // A list default is shown as YAML; without a configuration there is no value.
    const ports = await cairn(['option', 'services.openssh.ports']);
    expect(ports.stdout).toContain('\nDefault:\n  - 22\n');
    expect(ports.stdout).toContain('\nDescription:\n  Ports sshd listens on.\n');
    expect(ports.stdout).not.toContain('Value:');
    const json = JSON.parse((await cairn(['option', 'services.openssh.ports', '--json'])).stdout);
    expect(json).toMatchObject({ default: [22], description: 'Ports sshd listens on.' });
  });

  it('documents submodule options by their <name> path and reads them from a configuration', async () => {
    const doc = await cairn(['option', 'users.users.<name>.home', '--json']);
    expect(doc.exitCode).toBe(0);
    expect(JSON.parse(doc.stdout)).toMatchObject({ type: 'absolute path', declarations: [expect.stringMatching(/^modules\/users\/users\.ts:\d+:\d+$/)] });
    const val = await cairn(['option', 'users.users.alice.home', 'examples/server.yaml', '--json']);
    expect(JSON.parse(val.stdout)).toMatchObject({ value: '/home/alice', definitions: [] });
  });

  it('suggests the nearest option for a misspelt path', async () => {
    const r = await cairn(['option', 'networking.hostNmae']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("Did you mean `networking.hostName'?");
  });

  it('prints the options manual', async () => {
    const r = await cairn(['options', '--format', 'json']);
    expect(r.exitCode).toBe(0);
    const docs = JSON.parse(r.stdout);
    expect(docs['networking.hostName']).toMatchObject({ type: expect.stringContaining('string matching'), default: 'cairn' });
    expect(docs['users.users.<name>.extraGroups']).toMatchObject({ type: 'list of user or group name' });
    expect(docs['systemd.services.<name>.script']).toBeDefined();
    expect(docs.assertions).toBeUndefined(); // internal
    const md = await cairn(['options']);
    expect(md.stdout).toContain('## `networking.hostName`');
  });

  it('builds cairn.schema.json as `cairn schema` prints it, and keeps it out of git', async () => {
    const r = await cairn(['schema']);
    expect(r.exitCode).toBe(0);
    // Written by `npm run build` (which the CLI tests need anyway): a stale copy is rebuilt, not committed.
    expect((await execa('git', ['ls-files', 'cairn.schema.json'], { cwd: root })).stdout).toBe('');
    expect((await execa('git', ['check-ignore', 'cairn.schema.json'], { cwd: root, reject: false })).stdout).toBe('cairn.schema.json');
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(join(root, 'cairn.schema.json'), 'utf8')));
    const schema = JSON.parse(r.stdout);
    expect(schema.properties.networking.properties.hostName.type).toBe('string');
    expect(schema.properties.users.properties.users.additionalProperties.properties.uid).toBeDefined();
  });
});
