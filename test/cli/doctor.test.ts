import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkHostTools, hasTool, HOST_TOOLS, installCommand } from '../../src/host/tools.js';

const root = resolve(import.meta.dirname, '../..');

describe('cairn doctor', () => {
  it('installs every tool it checks for through scripts/setup', () => {
    const setup = readFileSync(join(root, 'scripts/setup'), 'utf8');
    const listed = new Set(/packages=\(([^)]*)\)/.exec(setup)![1]!.split(/\s+/).filter(Boolean));
    for (const t of HOST_TOOLS) expect(listed, `${t.package} (for ${t.name})`).toContain(t.package);
  });

  it('names the packages of missing tools in one install command', () => {
    const reports = checkHostTools([
      { name: 'sh', package: 'dash', purpose: 'present everywhere' },
      { name: 'cairn-no-such-tool', package: 'pkg-b', purpose: 'missing' },
      { name: '/no/such/file', package: 'pkg-a', purpose: 'missing' },
    ]);
    expect(reports.map((r) => r.present)).toEqual([true, false, false]);
    expect(installCommand(reports)).toMatch(/apt-get install -y --no-install-recommends pkg-a pkg-b$/);
    expect(installCommand(reports.slice(0, 1))).toBeUndefined();
  });

  it('finds sbin tools even when PATH lacks sbin', () => {
    expect(hasTool('mkfs.ext4', '/usr/bin')).toBe(true);
  });

  it('reports as JSON and exits 0 on a machine set up by scripts/setup', async () => {
    const r = await execa('node', [join(root, 'bin/cairn.js'), 'doctor', '--json'], { reject: false });
    const report = JSON.parse(r.stdout);
    expect(report.tools.length).toBe(HOST_TOOLS.length);
    expect(report.ok).toBe(r.exitCode === 0);
    expect(report.install).toBe(null);
    expect(r.exitCode).toBe(0);
  });
});
