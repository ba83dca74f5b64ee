/**
 * `cairn build` on the command line, against the store the build tests share (only what a test
 * changes is built): what it prints, and errors that only a build finds, named by the user's file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CACHE = join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const repo = resolve(import.meta.dirname, '../..');

let work: string;
const cairn = (args: string[]) => execa('node', [join(repo, 'bin/cairn.js'), ...args], { cwd: work, reject: false, env: { CAIRN_HOME: STORE_HOME, CAIRN_DEBIAN_CACHE: CACHE } });

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cairn-build-errors-'));
  copyFileSync(join(repo, 'examples', 'minimal.yaml'), join(work, 'minimal.yaml'));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('cairn build', () => {
  it('--json prints exactly one JSON document on stdout', async () => {
    const r = await cairn(['build', 'minimal.yaml', '--json', '--no-link']);
    expect(r.exitCode, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { toplevel: string };
    expect(json.toplevel).toMatch(/^\/cairn\/store\/[0-9a-z]{32}-cairn-system-minimal-0\.1$/);
  }, 600_000);

  it("names the user's definition of a group that is not declared", async () => {
    const file = join(work, 'groups.yaml');
    writeFileSync(file, 'imports: [./minimal.yaml]\nusers:\n  users:\n    admin:\n      extraGroups: [no-such-group]\n');
    const r = await cairn(['build', file, '--no-link']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toContain(`users.users.admin.extraGroups: the group 'no-such-group' is not declared; add users.groups.no-such-group = {} (`);
    expect(r.stderr).toContain('groups.yaml:5:7');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  }, 600_000);
});

describe('cairn eval', () => {
  it("names the user's definition of a user whose name is not a login name, not only cairn's module", async () => {
    const file = join(work, 'names.yaml');
    writeFileSync(file, 'users:\n  users:\n    "Bad User":\n      isNormalUser: true\n');
    const r = await cairn(['eval', file, '--option', 'users.users']);
    expect(r.exitCode, r.stderr).toBe(1);
    // Refused as an attribute name of users.users (types.attrsNamed), where the user wrote it.
    expect(r.stderr).toContain('The name "Bad User" in option `users.users\' is not a user or group name');
    expect(r.stderr).toContain('names.yaml:3:5');
  });
});
