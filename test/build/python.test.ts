/**
 * Python's compiled modules (src/build/python.ts): which files of a package are compiled, and which
 * interpreter a system has. That the running system loads them is checked in the services VM case.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { moduleSources, systemInterpreters } from '../../src/build/python.js';

let root: string;
const file = (rel: string, text = 'x = 1\n') => {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), text);
};

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'cairn-python-'));
  file('usr/lib/python3.13/json/__init__.py');
  file('usr/lib/python3.13/json/README');
  file('usr/lib/python3/dist-packages/app/main.py');
  file('usr/lib/python3.11/old.py');
  file('usr/share/app/private.py');
  // Debian's: a link into /etc, whose file the administrator may change (and the building machine has its own).
  symlinkSync('/etc/python3.13/sitecustomize.py', join(root, 'usr/lib/python3.13/sitecustomize.py'));
  symlinkSync('main.py', join(root, 'usr/lib/python3/dist-packages/app/alias.py'));
  symlinkSync('../../../../../../outside.py', join(root, 'usr/lib/python3/dist-packages/app/escape.py'));
  symlinkSync('gone.py', join(root, 'usr/lib/python3/dist-packages/app/dangling.py'));
  writeFileSync(join(dirname(root), 'outside.py'), 'y = 2\n');
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(join(dirname(root), 'outside.py'), { force: true });
});

describe('Python modules compiled at build time', () => {
  it("compiles a package's modules for the system's interpreter, and links only to its own files", () => {
    expect(moduleSources(root, '3.13')).toEqual(['usr/lib/python3.13/json/__init__.py', 'usr/lib/python3/dist-packages/app/alias.py', 'usr/lib/python3/dist-packages/app/main.py']);
    expect(moduleSources(root, '3.11')).toEqual(['usr/lib/python3.11/old.py', 'usr/lib/python3/dist-packages/app/alias.py', 'usr/lib/python3/dist-packages/app/main.py']);
  });

  it("finds the system's interpreters with the packages they run from", () => {
    const pkg = (name: string) => ({ name, storePath: `/cairn/store/x-${name}` });
    const base = ['libc6', 'zlib1g', 'python3.13-minimal', 'libpython3.13-minimal', 'libpython3.13-stdlib', 'fail2ban'].map(pkg);
    const v313 = { version: '3.13', packages: ['libc6', 'libpython3.13-minimal', 'libpython3.13-stdlib', 'python3.13-minimal', 'zlib1g'].map(pkg) };
    expect(systemInterpreters(base)).toEqual([v313]);
    expect(systemInterpreters(base.filter((p) => p.name !== 'python3.13-minimal'))).toEqual([]);
    // Without its standard library it could not run the compiler: nothing is compiled for it.
    expect(systemInterpreters(base.filter((p) => p.name !== 'libpython3.13-stdlib'))).toEqual([]);
    const both = [...base, ...['python3.14-minimal', 'libpython3.14-minimal', 'libpython3.14-stdlib'].map(pkg)];
    expect(systemInterpreters(both).map((i) => i.version)).toEqual(['3.13', '3.14']);
  });
});
