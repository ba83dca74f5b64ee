import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalSystem } from '../../src/eval/index.js';
import { lockPackages, realisePackages } from '../../src/debian/index.js';
import { Store } from '../../src/store/index.js';
import { etcText, fakeRoot, hasCommand, writeEtc } from './helpers.js';
import { TEST_STORE_HOME } from './store-programs.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function evalWith(...modules: unknown[]): Promise<any> {
  return (await evalSystem(modules as never[])).config;
}

const DROPIN = 'systemd/system/qemu-guest-agent.service.d/overrides.conf';
const qemuEntries = (c: { environment: { etc: Record<string, unknown> } }) => Object.keys(c.environment.etc).filter((k) => k.includes('qemu'));

describe('services.qemuGuest', () => {
  it('is off by default: no package, no unit', async () => {
    const c = await evalWith({});
    expect(c.services.qemuGuest.enable).toBe(false);
    expect(String(c.services.qemuGuest.package)).toBe('qemu-guest-agent');
    expect(c.environment.systemPackages.map(String)).not.toContain('qemu-guest-agent');
    expect(qemuEntries(c)).toEqual([]);
  });

  it('enabled, installs the package and uses its unit as it is (udev starts it)', async () => {
    const c = await evalWith({ services: { qemuGuest: { enable: true } } });
    expect(c.environment.systemPackages.map(String)).toContain('qemu-guest-agent');
    // No unit of cairn's own, no drop-in and no link: the packaged unit and udev rule do it all.
    expect(qemuEntries(c)).toEqual([]);
  });

  it('installs another package when `package` names it', async () => {
    const c = await evalWith({ services: { qemuGuest: { enable: true, package: 'qemu-guest-agent-custom' } } });
    const packages = c.environment.systemPackages.map(String);
    expect(packages).toContain('qemu-guest-agent-custom');
    expect(packages).not.toContain('qemu-guest-agent');
  });

  it("a user's changes to the service become a drop-in over the packaged unit", async () => {
    const c = await evalWith({
      services: { qemuGuest: { enable: true } },
      systemd: { services: { 'qemu-guest-agent': { serviceConfig: { ExecStart: ['', '-/usr/sbin/qemu-ga --block-rpcs=guest-exec'] } } } },
    });
    expect(c.environment.etc['systemd/system/qemu-guest-agent.service']).toBeUndefined();
    expect(etcText(c, DROPIN)).toMatch(/\[Service\]\nExecStart=\nExecStart=-\/usr\/sbin\/qemu-ga --block-rpcs=guest-exec\n/);
  });

  describe("with Debian's qemu-guest-agent", () => {
    it('ships the unit and the udev rule that start the agent on the virtio port, and they pass systemd-analyze verify', async () => {
      mkdirSync(process.env.CAIRN_DEBIAN_CACHE!, { recursive: true });
      const store = Store.open(TEST_STORE_HOME);
      const { lock, repositories } = await lockPackages({ packages: ['qemu-guest-agent'] });
      const realised = await realisePackages(lock, repositories, store);
      const pkg = store.toPhysical(realised.find((p) => p.name === 'qemu-guest-agent')!.storePath);
      const unitFile = join(pkg, 'usr/lib/systemd/system/qemu-guest-agent.service');
      const unit = readFileSync(unitFile, 'utf8');
      expect(unit).toContain('BindsTo=dev-virtio\\x2dports-org.qemu.guest_agent.0.device\n');
      expect(unit).toMatch(/^ExecStart=-\/usr\/sbin\/qemu-ga$/m);
      // A continued line: the match is on the rule as udev joins it.
      const rule = readFileSync(join(pkg, 'usr/lib/udev/rules.d/60-qemu-guest-agent.rules'), 'utf8').replace(/\\\n\s*/g, '');
      expect(rule).toMatch(/SUBSYSTEM=="virtio-ports", ATTR\{name\}=="org\.qemu\.guest_agent\.0",\s*TAG\+="systemd", ENV\{SYSTEMD_WANTS\}="qemu-guest-agent\.service"/);
      if (!hasCommand('systemd-analyze')) return;

      const c = await evalWith({
        services: { qemuGuest: { enable: true } },
        systemd: { services: { 'qemu-guest-agent': { serviceConfig: { ExecStart: ['', '-/usr/sbin/qemu-ga --block-rpcs=guest-exec'] } } } },
      });
      const { dir } = fakeRoot();
      copyFileSync(unitFile, join(dir, 'usr/lib/systemd/system/qemu-guest-agent.service'));
      copyFileSync(join(pkg, 'usr/sbin/qemu-ga'), join(dir, 'usr/sbin/qemu-ga'));
      writeEtc(c, dir);
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${dir}`, 'qemu-guest-agent.service'], { encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
      expect(r.status).toBe(0);
    });
  });
});
