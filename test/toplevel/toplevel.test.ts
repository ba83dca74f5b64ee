/** The toplevel's file contract: boot.json and configuration.json, as the build writes them and later stages read them. */
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import type { Store } from '../../src/store/index.js';
import { treeDerivation, type TreeEntry } from '../../src/build/index.js';
import { projectRoot } from '../../src/paths.js';
import {
  bootJsonText,
  configurationHash,
  configurationJsonText,
  readBootspec,
  readConfiguration,
  readImageSettings,
  type BootRecord,
} from '../../src/toplevel/index.js';
import { tempStore } from '../store/helpers.js';

const record: BootRecord = {
  label: 'cairn 0.1 (web1)',
  kernel: '/cairn/store/aaaa-linux/boot/vmlinuz-6.1.0-1-amd64',
  kernelVersion: '6.1.0-1-amd64',
  initrd: '/cairn/store/bbbb-initrd/initrd',
  kernelParams: ['console=ttyS0,115200', 'quiet'],
  root: { device: 'LABEL=root', fsType: 'ext4' },
  loader: { type: 'systemd-boot', efi: '/cairn/store/cccc-sw/efi', timeout: null, editor: false, configurationLimit: 3, tries: 0, esp: '/boot' },
};

/** A toplevel-like store path holding `files`. */
async function toplevel(store: Store, files: Record<string, TreeEntry>): Promise<string> {
  return store.build(treeDerivation('cairn-system-test', files));
}

describe('boot.json', () => {
  it('is written in a fixed layout (part of every toplevel hash): keys, order, indentation', () => {
    expect(bootJsonText({ ...record, loader: null, root: null })).toBe(
      [
        '{',
        '  "org.cairn.bootspec.v1": {',
        '    "label": "cairn 0.1 (web1)",',
        '    "kernel": "/cairn/store/aaaa-linux/boot/vmlinuz-6.1.0-1-amd64",',
        '    "kernelVersion": "6.1.0-1-amd64",',
        '    "initrd": "/cairn/store/bbbb-initrd/initrd",',
        '    "init": "@out@/init",',
        '    "kernelParams": [',
        '      "console=ttyS0,115200",',
        '      "quiet"',
        '    ],',
        '    "system": "x86_64-linux",',
        '    "toplevel": "@out@",',
        '    "root": null,',
        '    "loader": null',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('reads back what was written, with @out@ as the toplevel', async () => {
    const store = tempStore();
    const top = await toplevel(store, { 'boot.json': { text: bootJsonText(record) } });
    expect(readBootspec(store, top)).toEqual({
      toplevel: top,
      label: record.label,
      kernel: record.kernel,
      kernelVersion: record.kernelVersion,
      initrd: record.initrd,
      init: `${top}/init`,
      kernelParams: record.kernelParams,
      root: record.root,
      loader: record.loader,
    });
  });

  it('a toplevel that cannot boot from a disk is named with the reason', async () => {
    const store = tempStore();
    const noKernel = await toplevel(store, { 'boot.json': { text: bootJsonText({ ...record, kernel: null, kernelVersion: null, initrd: null }) } });
    expect(() => readBootspec(store, noKernel)).toThrow(new RegExp(`${noKernel} has no kernel or initrd`));
    const noRoot = await toplevel(store, { 'boot.json': { text: bootJsonText({ ...record, root: null }) } });
    expect(() => readBootspec(store, noRoot)).toThrow(/declares no root file system/);
    const notCairn = await toplevel(store, { other: { text: 'x' } });
    expect(() => readBootspec(store, notCairn)).toThrow(/is not a system built by cairn \(no readable boot\.json\)/);
  });
});

describe('configuration.json', () => {
  it('records the lock hash and the configuration without paths of the building machine', async () => {
    const store = tempStore();
    const config = { image: { headroom: '1G', espSize: 'auto' }, files: ['/home/me/conf/motd.txt', `${projectRoot}/templates/x.mustache`, '/etc/other'] };
    const text = configurationJsonText('ab'.repeat(32), config, '/home/me/conf');
    const top = await toplevel(store, { 'configuration.json': { text } });
    expect(JSON.parse(text).lock).toBe(`sha256:${'ab'.repeat(32)}`);
    expect(readConfiguration(store, top)).toEqual({ image: { headroom: '1G', espSize: 'auto' }, files: ['./motd.txt', '<cairn>/templates/x.mustache', '/etc/other'] });
    expect(readImageSettings(store, top)).toEqual({ headroom: '1G', espSize: 'auto' });
    expect(configurationHash(store, top)).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('a toplevel without one has no configuration hash, and image settings are refused with the reason', async () => {
    const store = tempStore();
    const bare = await toplevel(store, { other: { text: 'x' } });
    expect(configurationHash(store, bare)).toBeNull();
    expect(() => readConfiguration(store, bare)).toThrow(/is not a system built by cairn \(no readable configuration\.json\)/);
    const old = await toplevel(store, { 'configuration.json': { text: configurationJsonText('00'.repeat(32), { system: {} }, '/x') } });
    expect(() => readImageSettings(store, old)).toThrow(/records no image\.headroom and image\.espSize/);
  });
});
