/**
 * The VM test driver, run on the VM tests in test/vm/cases/ (what `cairn test FILE` runs): the
 * server example reached by ssh and curl from the host, two machines on a vlan with block() and
 * unblock(), a failing unit seen at once, a state disk kept across crash() and start(), a
 * failing test reported with the failed call, its output and the machine's console; and the
 * generations cases on machines that boot like hardware: switching and boot entries, remote
 * deploys with magic rollback, power cuts during switches, cairn switching the machine it runs on.
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store } from '../../src/store/index.js';
import { runTest } from '../../src/testing/index.js';
import { QEMU } from '../../src/vm/index.js';

const hasQemu = (await execa(QEMU, ['--version'], { reject: false })).exitCode === 0;
process.env.CAIRN_DEBIAN_CACHE ??= join(tmpdir(), 'cairn-test-debian-cache');
const STORE_HOME = join(tmpdir(), 'cairn-test-store-home');
const CASES = resolve(import.meta.dirname, 'cases');
const CLI = resolve(import.meta.dirname, '../../bin/cairn.js');
const TIMEOUT = 900_000;

async function passes(file: string): Promise<void> {
  const r = await runTest(join(CASES, file), { store: Store.open(STORE_HOME), log: (m) => process.stderr.write(`${m}\n`) });
  process.stderr.write(`${r.name}: ${r.passed ? 'passed' : 'FAILED'} in ${r.seconds.toFixed(1)} s\n`);
  expect(r.error).toBeUndefined();
  expect(r.passed).toBe(true);
}

describe.skipIf(!hasQemu)('cairn test', () => {
  it('the server example: sshd and nginx active, ssh with a key and curl through forwarded ports', () => passes('server.test.ts'), TIMEOUT);
  it('two machines on a vlan find each other by name; block() cuts the link, unblock() restores it', () => passes('network.test.ts'), TIMEOUT);
  it('waitForUnit fails at once with the journal of a failed unit; crash() then start() keeps the state disk', () => passes('state.test.ts'), TIMEOUT);

  it(
    'generations under OVMF: dry-activate prints the plan; switch reloads, starts, stops and leaves untouched what it should and writes a counted boot entry; reboot, rollback, the other entry, a failing generation abandoned',
    () => passes('generations.test.ts'),
    TIMEOUT * 2,
  );
  it(
    'remote deploys over ssh: dry-activate, switch copying only what is missing, rollback; a switch nobody can confirm rolls itself back',
    () => passes('remote.test.ts'),
    TIMEOUT,
  );
  it(
    'cairn inside a cairn machine, offline from its lock: switch builds, activates and writes the boot entry of generation 2; generations list and diff show it; rollback brings 1 back live; delete drops 2 and its entry',
    () => passes('self.test.ts'),
    TIMEOUT * 3,
  );
  it('power cuts at random moments of ten remote switches: every boot reaches multi-user in the old or new generation, the store and ESP whole', () => passes('power-cut.test.ts'), TIMEOUT * 3);

  it('runs a YAML test whose script is inline JavaScript', async () => {
    const r = await execa('node', [CLI, 'test', join(CASES, 'inline.test.yaml'), '--json'], { reject: false, env: { CAIRN_HOME: STORE_HOME } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'a YAML test', passed: true, error: null });
    expect(r.stderr).toContain('machines: machine');
  }, TIMEOUT);

  it('--interactive gives a REPL with the machines in scope instead of running the script', async () => {
    const r = await execa('node', [CLI, 'test', join(CASES, 'failing.test.ts'), '--interactive'], {
      reject: false,
      env: { CAIRN_HOME: STORE_HOME },
      input: 'console.log("start is a " + typeof failer.start + ", machines: " + Object.keys(machines))\n.exit\n',
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('start is a function, machines: failer');
  }, TIMEOUT);

  it('exits 1 for a failing test, naming the call, its output and the console, and writes a JUnit report', async () => {
    const junit = join(mkdtempSync(join(tmpdir(), 'cairn-junit-')), 'report.xml');
    const r = await execa('node', [CLI, 'test', join(CASES, 'failing.test.ts'), '--junit', junit], { reject: false, env: { CAIRN_HOME: STORE_HOME } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('failed: a failing test');
    expect(r.stderr).toContain('failer: succeed("echo \\"about to fail\\"; false") failed with exit status 1; its output:\nabout to fail');
    expect(r.stderr).toContain("--- last lines of failer's console ---");
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain('<testsuite name="cairn" tests="1" failures="1"');
    expect(xml).toContain('<failure message="failer: succeed(');
  }, TIMEOUT);
});
