/** The device nodes of a module tree, written at build time for tmpfiles (src/build/kernel.ts staticNodes). */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATIC_NODES, staticNodes } from '../../src/build/kernel.js';
import { tempDir } from '../modules/helpers.js';

function tree(devname: string): { root: string; modules: string } {
  const root = tempDir('cairn-static-nodes-');
  const modules = join(root, 'usr/lib/modules/6.12.0-test');
  mkdirSync(modules, { recursive: true });
  writeFileSync(join(modules, 'modules.devname'), devname);
  return { root, modules };
}

describe('static device nodes', () => {
  it("turns modules.devname into kmod static-nodes' tmpfiles lines, each folder once, and drops modules.devname", () => {
    const { root, modules } = tree(
      '# Device nodes to trigger on-demand module loading.\nfuse fuse c10:229\ntun net/tun c10:200\nppp_generic ppp c108:0\nloop loop-control c10:237\ndm_mod mapper/control c10:236\nfoo net/foo b7:12\n',
    );
    staticNodes(modules, root);
    expect(readFileSync(join(root, STATIC_NODES), 'utf8')).toBe(
      [
        'c! /dev/fuse 0600 - - - 10:229',
        'd /dev/net 0755 - - -',
        'c! /dev/net/tun 0600 - - - 10:200',
        'c! /dev/ppp 0600 - - - 108:0',
        'c! /dev/loop-control 0600 - - - 10:237',
        'd /dev/mapper 0755 - - -',
        'c! /dev/mapper/control 0600 - - - 10:236',
        'b! /dev/net/foo 0600 - - - 7:12',
        '',
      ].join('\n'),
    );
    expect(existsSync(join(modules, 'modules.devname'))).toBe(false);
  });

  it('refuses a line it cannot read rather than drop a node', () => {
    const { root, modules } = tree('tun net/tun x10:200\n');
    expect(() => staticNodes(modules, root)).toThrow(/modules\.devname: cannot read the line `tun net\/tun x10:200'/);
  });

  it('writes nothing for a tree without modules.devname', () => {
    const root = tempDir('cairn-static-nodes-');
    staticNodes(join(root, 'usr/lib/modules/x'), root);
    expect(existsSync(join(root, STATIC_NODES))).toBe(false);
  });
});
