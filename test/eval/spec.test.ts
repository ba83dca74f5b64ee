/** The spec: what the build, image, VM and test stages read of an evaluated configuration. */
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { evalSystem, systemSpec } from '../../src/eval/index.js';
import { buildSystem } from '../../src/build/index.js';
import { prepareVm, userNetFor } from '../../src/vm/index.js';
import { CairnError } from '../../src/errors.js';
import { tempStore } from '../store/helpers.js';

const spec = async (config: Record<string, unknown>, extra: Record<string, unknown>[] = []) => (await evalSystem([...extra.map((c) => ({ config: c })), { config }])).spec;

describe('the system spec', () => {
  it('gives the evaluated values, with the defaults of the option declarations', async () => {
    const s = await spec({ environment: { systemPackages: ['nginx'] }, system: { debian: { release: 'bookworm' } }, packages: { repositories: [{ suite: 'bookworm-security' }] } });
    expect(s.name).toBe('cairn');
    expect(s.packages.kernel).toBe('linux-image-amd64');
    expect(s.packages.system).toContain('nginx');
    expect(s.packages.bootOnly).toContain('busybox-static');
    expect(s.packages.installRecommends).toBe(false);
    // No uri or keyring: the host's for that suite are taken (they are left out, not null).
    expect(s.packages.repositories).toEqual([{ suite: 'bookworm-security', components: ['main'], architecture: 'amd64' }]);
    expect(s.boot.root).toEqual({ device: 'LABEL=root', fsType: 'ext4' });
    expect(s.boot.kernelParams).toEqual(['console=tty0', 'console=ttyS0,115200', 'loglevel=4']);
    expect(s.boot.systemdBoot).toEqual({ timeout: 5, editor: false, configurationLimit: null, tries: 3, esp: '/boot' });
    expect(s.image).toEqual({ headroom: '512M', espSize: 'auto' });
    expect(s.vm).toMatchObject({ enable: false, useBootLoader: false, memorySize: 1024, cores: 2, vlans: [1], forwardPorts: [] });
  });

  it("follows the user's settings: kernel, loader, users, activation snippets, /etc", async () => {
    const s = await spec({
      system: { name: 'web1', activationScripts: { plain: 'echo hi', ordered: { text: 'echo two', deps: ['plain'] } } },
      boot: { kernelPackage: 'linux-image-cloud-amd64', loader: { 'systemd-boot': { timeout: 2, configurationLimit: 4, bootCounting: { enable: false } } } },
      users: { users: { deploy: { isSystemUser: true, group: 'deploy', uid: 555 } }, groups: { deploy: {} } },
      environment: { etc: { 'app/conf': { text: 'x\n', mode: '0640' } } },
    });
    expect(s.name).toBe('web1');
    expect(s.packages.kernel).toBe('linux-image-cloud-amd64');
    expect(s.boot.systemdBoot).toEqual({ timeout: 2, editor: false, configurationLimit: 4, tries: 0, esp: '/boot' });
    expect(s.users.users.deploy).toMatchObject({ name: 'deploy', uid: 555, isSystemUser: true, group: 'deploy', hashedPassword: null });
    expect(s.users.groups.deploy).toEqual({ name: 'deploy', gid: null, members: [] });
    expect(s.users.mutableUsers).toBe(true);
    expect(s.activationScripts.plain).toBe('echo hi');
    expect(s.activationScripts.ordered).toEqual({ text: 'echo two', deps: ['plain'] });
    expect(s.etc['app/conf']).toEqual({ enable: true, target: 'app/conf', text: 'x\n', source: null, symlink: null, mode: '0640', user: '+0', group: '+0' });
  });

  it('a directly booted VM has no ESP; its network is read from networking', async () => {
    const s = await spec(
      {
        networking: { interfaces: { eth0: { ipv4: { addresses: [{ address: '192.0.2.10', prefixLength: 24 }] } } }, defaultGateway: { address: '192.0.2.1', interface: 'eth0' }, nameservers: ['192.0.2.53'] },
        virtualisation: { vlans: [2, 1], forwardPorts: [{ hostPort: 2222, guestPort: 22 }] },
      },
      [{ virtualisation: { vm: true } }],
    );
    expect(s.boot.systemdBoot?.esp).toBeNull();
    expect(s.boot.root).toEqual({ device: 'LABEL=cairn-vm-root', fsType: 'ext4' });
    expect(s.vm).toMatchObject({ enable: true, vlans: [2, 1], forwardPorts: [{ proto: 'tcp', hostPort: 2222, guestPort: 22 }] });
    expect(s.vm.network).toEqual({ eth0Ipv4: { address: '192.0.2.10', prefixLength: 24 }, defaultGateway: '192.0.2.1', nameservers: ['192.0.2.53'] });
    // QEMU's user network takes the machine's own subnet, its end at the gateway.
    expect(userNetFor(s.vm.network)).toEqual({ net: '192.0.2.0/24', host: '192.0.2.1', guest: '192.0.2.10', dns: '192.0.2.53' });
  });

  it('reads a part only when it is used: a failing /etc entry does not stop reading the VM settings', async () => {
    const etc = {
      get broken(): never {
        throw new CairnError('the entry fails');
      },
    };
    // Without assertions: the etc module's own assertion would read the entry first.
    const { spec: s } = await evalSystem([{ config: { environment: { etc } } }], { assertions: false });
    expect(s.vm.memorySize).toBe(1024);
    expect(() => s.etc).toThrow(/the entry fails/);
  });

  it('names the option when a value has another shape than the build expects, or is not declared', () => {
    expect(() => systemSpec({ system: { name: 42 } }).name).toThrow(CairnError);
    expect(() => systemSpec({ system: { name: 42 } }).name).toThrow(/^system\.name: expected a string, got 42/);
    expect(() => systemSpec({ system: { name: 'x' } }).label).toThrow(/the option `system\.label' is not declared/);
    expect(() => systemSpec({ users: { users: { bob: { name: 'bob', uid: 'x' } }, groups: {}, mutableUsers: false } }).users).toThrow(/^users\.users\.bob\.uid: expected an integer, got "x"/);
  });
});

describe('stages take an evaluation', () => {
  it('buildSystem needs one of a configuration file (its lock is beside it)', async () => {
    const err = await buildSystem(await evalSystem([]), { store: tempStore() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect((err as Error).message).toMatch(/built from a configuration file/);
  });

  it('a VM needs a configuration evaluated for a VM, refused before anything is built', async () => {
    const store = tempStore();
    const err = await prepareVm(await evalSystem([]), { store, state: join(store.home, 'state.qcow2') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect((err as Error).message).toMatch(/virtualisation\.vm is not set/);
  });
});
