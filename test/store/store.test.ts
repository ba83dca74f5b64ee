import { describe, expect, it } from 'vitest';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../../src/errors.js';
import { buildEnv, collectGarbage, diffClosures, formatChange, hashPart, registerBuilder, splitName, Store, toNixBase32, verifyStore, type Derivation } from '../../src/store/index.js';
import { tempHome, tempStore } from './helpers.js';

const tree = (name: string, files: Record<string, unknown>, inputs: string[] = []): Derivation => ({ name, builder: 'test:tree', args: { files }, inputs });

describe('store paths', () => {
  it('encodes hashes in Nix base32, 32 characters for 160 bits', () => {
    // Known value: Nix prints sha256("") truncated ... here we check the bit order on a simple input.
    expect(toNixBase32(Buffer.from([0xff]))).toBe('7z');
    expect(toNixBase32(Buffer.from([0x01, 0x00]))).toBe('0001');
    expect(hashPart('x')).toMatch(/^[0-9abcdfghijklmnpqrsvwxyz]{32}$/);
  });

  it('gives the same recipe the same path in any store, and a different recipe another', () => {
    const a = tempStore();
    const b = tempStore();
    const drv = tree('hello-1.0', { f: 'x' }, ['/cairn/store/00000000000000000000000000000000-dep']);
    expect(a.outputPath(drv)).toBe(b.outputPath({ ...drv, args: { files: { f: 'x' } } }));
    expect(a.outputPath(drv)).toMatch(/^\/cairn\/store\/[0-9a-z]{32}-hello-1\.0$/);
    expect(a.outputPath({ ...drv, args: { files: { f: 'y' } } })).not.toBe(a.outputPath(drv));
    expect(a.outputPath({ ...drv, inputs: ['/cairn/store/11111111111111111111111111111111-dep'] })).not.toBe(a.outputPath(drv));
    expect(a.outputPath({ ...drv, builder: 'other' })).not.toBe(a.outputPath(drv));
    // Key order of args does not matter.
    const x = { name: 'k', builder: 'b', args: { p: 1, q: 2 }, inputs: [] };
    const y = { name: 'k', builder: 'b', args: { q: 2, p: 1 }, inputs: [] };
    expect(a.outputPath(x)).toBe(a.outputPath(y));
  });

  it('rejects bad names with a CairnError', () => {
    const s = tempStore();
    for (const name of ['', '.hidden', 'a/b', 'sp ace', 'ü', 'epoch:1', 'x'.repeat(212)]) {
      expect(() => s.outputPath(tree(name, {})), name).toThrow(CairnError);
    }
    expect(s.outputPath(tree('ok+name._?=-1', {}))).toContain('-ok+name._?=-1');
    expect(s.outputPath(tree('x'.repeat(211), {}))).toBeTruthy();
  });

  it('maps between logical and physical paths and resolves links', async () => {
    const s = tempStore();
    const p = await s.addText('note', 'hi');
    const phys = s.toPhysical(p);
    expect(phys).toBe(join(s.dir, p.slice('/cairn/store/'.length)));
    expect(s.toLogical(phys)).toBe(p);
    expect(s.toLogical(p + '/sub')).toBe(p + '/sub');
    expect(() => s.toPhysical('/etc/passwd')).toThrow(CairnError);
    const link = join(s.home, 'result');
    s.addRoot(link, p);
    expect(readlinkSync(link)).toBe(phys);
    expect(s.resolve(link)).toBe(p);
    expect(s.resolve(phys)).toBe(p);
    expect(() => s.pathInfo('/cairn/store/00000000000000000000000000000000-nope')).toThrow(CairnError);
  });
});

describe('building', () => {
  it('builds once: a valid path is never built again', async () => {
    const s = tempStore();
    let runs = 0;
    registerBuilder('test:count', async (ctx) => {
      runs++;
      writeFileSync(ctx.out, 'x');
    });
    const drv: Derivation = { name: 'count', builder: 'test:count', args: null, inputs: [] };
    const [p1, p2] = await Promise.all([s.build(drv), s.build(drv)]);
    const p3 = await Store.open(s.home).build(drv);
    expect(p1).toBe(p2);
    expect(p3).toBe(p1);
    expect(runs).toBe(1);
  });

  it('builds side by side through two handles of one store in one process (concurrent VM test cases do)', async () => {
    const a = tempStore();
    const b = Store.open(a.home);
    let started = 0;
    let release: () => void = () => {};
    const bothStarted = new Promise<void>((r) => (release = r));
    registerBuilder('test:slow', async (ctx) => {
      mkdirSync(ctx.out);
      writeFileSync(join(ctx.out, 'name'), String(ctx.drv.args));
      // Both builders are in their output directories at once.
      if (++started === 2) release();
      await bothStarted;
      writeFileSync(join(ctx.out, 'done'), '');
    });
    const drv = (n: string): Derivation => ({ name: n, builder: 'test:slow', args: n, inputs: [] });
    const [p, q] = await Promise.all([a.build(drv('one')), b.build(drv('two'))]);
    expect(readFileSync(join(a.toPhysical(p), 'name'), 'utf8')).toBe('one');
    expect(readFileSync(join(b.toPhysical(q), 'name'), 'utf8')).toBe('two');
  });

  it('canonicalises: mtime 1 s, no write bits, setuid stripped and recorded', async () => {
    const s = tempStore();
    const p = await s.build(
      tree('modes', {
        'bin/tool': { text: '#!/bin/sh\n', mode: 0o4755 },
        'bin/grp': { text: 'g', mode: 0o2711 },
        'etc/conf': { text: 'c', mode: 0o666 },
        'lib/link': { link: '../etc/conf' },
      }),
    );
    const root = s.toPhysical(p);
    const check = (rel: string, mode: number): void => {
      const st = lstatSync(join(root, rel));
      expect(st.mtimeMs, rel).toBe(1000);
      if (!st.isSymbolicLink()) expect((st.mode & 0o7777).toString(8), rel).toBe(mode.toString(8));
    };
    check('', 0o555);
    check('bin', 0o555);
    check('bin/tool', 0o555);
    check('bin/grp', 0o555);
    check('etc/conf', 0o444);
    check('lib/link', 0);
    expect(s.pathInfo(p).setuid).toEqual([
      { path: 'bin/grp', mode: 0o2711 },
      { path: 'bin/tool', mode: 0o4755 },
    ]);
  });

  it('records setuid modes a builder reports', async () => {
    const s = tempStore();
    registerBuilder('test:reports-setuid', async (ctx) => {
      mkdirSync(join(ctx.out, 'bin'), { recursive: true });
      writeFileSync(join(ctx.out, 'bin/su'), 'su', { mode: 0o755 });
      return { setuid: [{ path: '/bin/su', mode: 0o4755 }] };
    });
    const p = await s.build({ name: 'su', builder: 'test:reports-setuid', args: {}, inputs: [] });
    expect(s.pathInfo(p).setuid).toEqual([{ path: 'bin/su', mode: 0o4755 }]);
    expect(statSync(join(s.toPhysical(p), 'bin/su')).mode & 0o7777).toBe(0o555);
  });

  it('finds references by scanning contents and symlinks; closure follows them', async () => {
    const s = tempStore();
    const a = await s.addText('a', 'leaf');
    const b = await s.addText('b', 'unused input');
    const c = await s.build(tree('c', { 'x': `uses ${a}/bin`, 'l': { link: `${a}` } }, [a, b]));
    const d = await s.build(tree('d', { 'y': { link: `${c}/x` } }, [c]));
    const selfRef = await s.build(tree('self', { 'z': 'nothing' }));
    expect(s.pathInfo(c).references).toEqual([a]);
    expect(s.pathInfo(d).references).toEqual([c]);
    expect(s.pathInfo(selfRef).references).toEqual([]);
    expect(s.closure([d])).toEqual([a, c, d].sort());
    // A reference to a path of the inputs' closure, not only direct inputs.
    const e = await s.build(tree('e', { 'w': `deep ${a}` }, [d]));
    expect(s.pathInfo(e).references).toEqual([a]);
  });

  it('refuses inputs that are not valid, and unknown builders', async () => {
    const s = tempStore();
    await expect(s.build(tree('x', {}, ['/cairn/store/00000000000000000000000000000000-missing']))).rejects.toThrow(/not a valid store path/);
    await expect(s.build({ name: 'x', builder: 'nope', args: null, inputs: [] })).rejects.toThrow(/no builder named 'nope'/);
  });

  it('cleans up when a builder fails, and the path stays invalid', async () => {
    const s = tempStore();
    registerBuilder('test:fails', async (ctx) => {
      mkdirSync(join(ctx.out, 'half'), { recursive: true });
      throw new CairnError('boom');
    });
    const drv: Derivation = { name: 'fails', builder: 'test:fails', args: null, inputs: [] };
    await expect(s.build(drv)).rejects.toThrow(/boom/);
    expect(s.isValid(s.outputPath(drv))).toBe(false);
    expect(readdirSync(s.dir)).toEqual([]);
  });

  it('builds derivations in dependency order with buildAll', async () => {
    const s = tempStore();
    const base = tree('base', { f: 'base' });
    const basePath = s.outputPath(base);
    const top = tree('top', { f: `needs ${basePath}` }, [basePath]);
    const seen: string[] = [];
    const outs = await s.buildAll([top, base], { jobs: 2, onProgress: (done, total, name) => seen.push(`${done}/${total} ${name}`) });
    expect(outs).toEqual([s.outputPath(top), basePath]);
    expect(seen).toEqual(['1/2 base', '2/2 top']);
    expect(s.pathInfo(outs[0]!).references).toEqual([basePath]);
  });
});

describe('verify', () => {
  it('finds changed contents and missing metadata', async () => {
    const s = tempStore();
    const p = await s.build(tree('v', { f: 'original' }));
    const q = await s.addText('q', 'q');
    expect(await verifyStore(s, { checkContents: true })).toEqual([]);
    const file = join(s.toPhysical(p), 'f');
    chmodSync(file, 0o644);
    writeFileSync(file, 'tampered');
    expect((await verifyStore(s)).length).toBe(0); // without --check-contents, contents are not read
    const problems = await verifyStore(s, { checkContents: true });
    expect(problems.map((x) => x.path)).toEqual([p]);
    expect(problems[0]!.problem).toMatch(/contents changed/);
    unlinkSync(join(s.infoDir, `${q.slice('/cairn/store/'.length)}.json`));
    expect(s.isValid(q)).toBe(false);
    expect((await verifyStore(s)).map((x) => [x.path, x.problem])).toEqual([[q, expect.stringMatching(/metadata missing/)]]);
  });
});

describe('buildenv', () => {
  it('merges inputs with hard links, copies symlinks, skips .cairn, records inputs as references', async () => {
    const s = tempStore();
    const a = await s.build(tree('a-1.0', { 'usr/bin/a': 'A', 'usr/share/doc/same': 'S', 'usr/lib/l': { link: 'x.so' }, '.cairn/control': 'meta a' }));
    const b = await s.build(tree('b-2.0', { 'usr/bin/b': 'B', 'usr/share/doc/same': 'S', '.cairn/control': 'meta b' }));
    const env = await s.build(buildEnv('sw', [a, b]));
    const root = s.toPhysical(env);
    expect(statSync(join(root, 'usr/bin/a')).ino).toBe(statSync(join(s.toPhysical(a), 'usr/bin/a')).ino);
    expect(statSync(join(root, 'usr/bin/b')).ino).toBe(statSync(join(s.toPhysical(b), 'usr/bin/b')).ino);
    expect(readFileSync(join(root, 'usr/share/doc/same'), 'utf8')).toBe('S');
    expect(readlinkSync(join(root, 'usr/lib/l'))).toBe('x.so');
    expect(lstatSync(join(root, 'usr')).isDirectory()).toBe(true);
    expect(existsSync(join(root, '.cairn/control'))).toBe(false);
    expect(s.pathInfo(env).references).toEqual([a, b].sort());
    expect(s.closure([env])).toEqual([a, b, env].sort());
    // The inputs keep their canonical mode and mtime (the shared inode was not touched).
    const st = statSync(join(s.toPhysical(a), 'usr/bin/a'));
    expect([st.mode & 0o7777, st.mtimeMs, st.nlink]).toEqual([0o444, 1000, 2]);
    expect(await verifyStore(s, { checkContents: true })).toEqual([]);
  });

  it('names both store paths and the file on a conflict', async () => {
    const s = tempStore();
    const a = await s.build(tree('a', { 'etc/x': 'one' }));
    const b = await s.build(tree('b', { 'etc/x': 'two' }));
    const err = await s.build(buildEnv('sw', [a, b])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect((err as Error).message).toContain('etc/x');
    expect((err as Error).message).toContain(a);
    expect((err as Error).message).toContain(b);
    expect(readdirSync(s.dir).filter((e) => e.startsWith('.'))).toEqual([]);
  });

  it('resolves conflicts by allowConflicts (first wins) or priority (lower wins)', async () => {
    const s = tempStore();
    const a = await s.build(tree('a-1', { 'etc/x': 'one' }));
    const b = await s.build(tree('b-1', { 'etc/x': 'two' }));
    const allowed = await s.build(buildEnv('sw', [a, b], { allowConflicts: ['etc/x'] }));
    expect(readFileSync(join(s.toPhysical(allowed), 'etc/x'), 'utf8')).toBe('one');
    const prio = await s.build(buildEnv('sw', [a, b], { priority: { b: 1 } }));
    expect(readFileSync(join(s.toPhysical(prio), 'etc/x'), 'utf8')).toBe('two');
  });

  it('carries setuid modes of inputs over', async () => {
    const s = tempStore();
    const a = await s.build(tree('sudo-1', { 'usr/bin/sudo': { text: 's', mode: 0o4755 } }));
    const env = await s.build(buildEnv('sw', [a]));
    expect(s.pathInfo(env).setuid).toEqual([{ path: 'usr/bin/sudo', mode: 0o4755 }]);
  });
});

describe('gc', () => {
  it('keeps every rooted closure whole and removes the rest; dry-run deletes nothing', async () => {
    const home = tempHome();
    const s = Store.open(home);
    const dep = await s.addText('dep', 'dep');
    const viaProfile = await s.build(tree('profiled', { f: dep }, [dep]));
    const viaResult = await s.addText('result-target', 'r');
    const viaGcroot = await s.addText('gcrooted', 'g');
    const garbage = await s.build(tree('garbage', { f: 'x' }));
    const garbageDep = await s.addText('garbage-dep', 'gd');
    const garbageTop = await s.build(tree('garbage-top', { f: garbageDep }, [garbageDep]));
    const forgottenResult = await s.addText('forgotten', 'f');

    mkdirSync(join(s.profilesDir, 'system'), { recursive: true });
    symlinkSync(s.toPhysical(viaProfile), join(s.profilesDir, 'system', 'system-1-link'));
    symlinkSync('system/system-1-link', join(s.profilesDir, 'current'));
    symlinkSync(viaGcroot, join(s.gcrootsDir, 'pinned')); // a logical target works too
    s.addRoot(join(home, 'result'), viaResult);
    s.addRoot(join(home, 'old-result'), forgottenResult);
    unlinkSync(join(home, 'old-result'));

    // This process used every path it built: temporary roots keep them until it exits.
    // A later process is simulated by dropping them (a new Store object would not do: roots are per process).
    rmSync(s.tempRootsDir, { recursive: true });
    mkdirSync(s.tempRootsDir);

    const before = readdirSync(s.dir).sort();
    const dry = await collectGarbage(s, { dryRun: true });
    expect(dry.deleted).toEqual([forgottenResult, garbage, garbageDep, garbageTop].sort());
    expect(dry.freedBytes).toBeGreaterThan(0);
    expect(readdirSync(s.dir).sort()).toEqual(before);

    const res = await collectGarbage(s);
    expect(res.deleted).toEqual(dry.deleted);
    for (const p of [dep, viaProfile, viaResult, viaGcroot]) expect(s.isValid(p), p).toBe(true);
    for (const p of dry.deleted) {
      expect(s.isValid(p)).toBe(false);
      expect(existsSync(s.toPhysical(p))).toBe(false);
    }
    expect(await verifyStore(s, { checkContents: true })).toEqual([]);
    expect(readdirSync(s.autoRootsDir).length).toBe(1); // the dangling auto root is gone
  });

  it('keeps paths that a running process still uses (temporary roots)', async () => {
    const s = tempStore();
    const p = await s.addText('in-use', 'x');
    const res = await collectGarbage(s);
    expect(res.deleted).toEqual([]);
    expect(s.isValid(p)).toBe(true);
  });

  it('removes leftovers of crashed processes', async () => {
    const s = tempStore();
    const dead = '999999999_1';
    mkdirSync(join(s.dir, `.build-${dead}-0/sub`), { recursive: true });
    chmodSync(join(s.dir, `.build-${dead}-0`), 0o555);
    writeFileSync(join(s.infoDir, '0000000000000000000000000000000a-orphan.json'), '{}');
    writeFileSync(join(s.locksDir, 'x.lock'), dead + '\n');
    await collectGarbage(s);
    expect(readdirSync(s.dir)).toEqual([]);
    expect(readdirSync(s.infoDir)).toEqual([]);
    expect(readdirSync(s.locksDir)).toEqual([]);
  });
});

describe('diff-closures', () => {
  it('shows version changes and size deltas per package', async () => {
    const s = tempStore();
    const ssl1 = await s.build(tree('openssl-3.0.11-1~deb12u2', { lib: 'a'.repeat(1000) }));
    const ssl2 = await s.build(tree('openssl-3.0.13-1~deb12u1', { lib: 'a'.repeat(13600) }));
    const same = await s.build(tree('base-files-12.4', { 'etc/os': 'same' }));
    const gone = await s.build(tree('oldtool-1.0', { 'bin/old': 'old' }));
    const added = await s.build(tree('newtool', { 'bin/new': 'new' }));
    const sys1 = await s.build(buildEnv('system', [ssl1, same, gone]));
    const sys2 = await s.build(buildEnv('system', [ssl2, same, added]));
    const lines = diffClosures(s, sys1, sys2).map(formatChange);
    expect(lines).toEqual([
      expect.stringMatching(/^newtool: ∅ → ε, \+\d+ bytes$/),
      expect.stringMatching(/^oldtool: 1\.0 → ∅, -\d+ bytes$/),
      'openssl: 3.0.11-1~deb12u2 → 3.0.13-1~deb12u1, +12.3 KiB',
      // The environment holds (hard links to) the packages' files, so its own size follows theirs.
      'system: +12.3 KiB',
    ]);
    expect(splitName('python3.11-minimal-3.11.2-6')).toEqual({ pname: 'python3.11-minimal', version: '3.11.2-6' });
  });
});

describe('build errors', () => {
  it('rejects (does not throw) for a bad name', async () => {
    const s = tempStore();
    const p = s.build(tree('bad name', {}));
    await expect(p).rejects.toThrow(CairnError);
  });
});
