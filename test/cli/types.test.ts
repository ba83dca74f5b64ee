/**
 * `cairn types`: declarations of the option tree that type-check a TypeScript module with tsc,
 * outside the checkout, including the options a configuration's own modules declare.
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { scratchWithHome } from '../lib/helpers.js';

const root = resolve(import.meta.dirname, '../..');
const TSC = join(root, 'node_modules/.bin/tsc');
const scratch = scratchWithHome('cairn-types');

/** Runs tsc (strict) on one module file next to the declarations. */
function tsc(file: string) {
  const dir = scratch.dir();
  const config = join(dir, `tsconfig.${file}.json`);
  writeFileSync(
    config,
    JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: [] }, files: [file] }),
  );
  return execa(TSC, ['-p', config], { cwd: dir, reject: false });
}

describe('cairn types', () => {
  beforeAll(async () => {
    const dir = scratch.dir();
    // A configuration whose own module declares options.
    writeFileSync(
      join(dir, 'greeting.ts'),
      `export default ({ lib }: any) => ({
  options: {
    greeting: {
      text: lib.mkOption({ type: lib.types.str, default: 'hello', description: 'What the machine says.' }),
      volume: lib.mkOption({ type: lib.types.enum(['quiet', 'loud']), default: 'quiet' }),
    },
  },
});
`,
    );
    writeFileSync(join(dir, 'configuration.yaml'), 'imports: [./greeting.ts]\nnetworking:\n  hostName: typed\n');
    const r = await execa('node', [join(root, 'bin/cairn.js'), 'types', 'configuration.yaml', '-o', 'cairn.d.ts'], { cwd: dir, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it('types config for a module: built-in options, their descriptions, the configuration own options, and lib', async () => {
    const text = readFileSync(join(scratch.dir(), 'cairn.d.ts'), 'utf8');
    expect(text).toContain('/** What the machine says. */');
    writeFileSync(
      join(scratch.dir(), 'good.ts'),
      `import type { ModuleArgs } from './cairn.js';
export default ({ config, lib }: ModuleArgs) => {
  const ports: number[] = config.services.openssh.ports;
  const root: 'yes' | 'prohibit-password' | 'forced-commands-only' | 'no' = config.services.openssh.settings.PermitRootLogin;
  const text: string = config.greeting.text;
  const volume: 'quiet' | 'loud' = config.greeting.volume;
  return { config: lib.mkIf(config.services.openssh.enable, { networking: { hostName: lib.mkDefault(\`\${text}-\${volume}-\${root}-\${ports[0]}\`) } }) };
};
`,
    );
    const r = await tsc('good.ts');
    expect(r.exitCode, r.stdout).toBe(0);
  });

  it('makes a misspelt option name, a value of the wrong type, or a misspelt lib function a type error', async () => {
    writeFileSync(
      join(scratch.dir(), 'bad.ts'),
      `import type { ModuleArgs } from './cairn.js';
export default ({ config, lib }: ModuleArgs) => {
  const settings = config.services.openssh.setings;
  const text: number = config.greeting.text;
  const volume: 'whisper' = config.greeting.volume;
  return { settings, text, volume, name: lib.mkDefalt('x') };
};
`,
    );
    const r = await tsc('bad.ts');
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/bad\.ts\(3,\d+\): error TS\d+: Property 'setings' does not exist/);
    // The configuration's own options, by their declared types.
    expect(r.stdout).toMatch(/bad\.ts\(4,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
    expect(r.stdout).toMatch(/bad\.ts\(5,\d+\): error TS2322: Type '"quiet" \| "loud"' is not assignable to type '"whisper"'/);
    // lib is cairn's own.
    expect(r.stdout).toMatch(/bad\.ts\(6,\d+\): error TS2551: Property 'mkDefalt' does not exist .* Did you mean 'mkDefault'\?/);
  });
});
