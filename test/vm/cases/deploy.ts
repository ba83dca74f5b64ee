/**
 * What the deploy cases share: a key pair the host deploys with, generations of a machine that
 * boots like hardware and lets root (and `deployer`, through sudo) in with that key, and cairn run
 * from the host against it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverContext, Machine } from '../../../src/testing/index.js';
import { freePort, run, sshKeyPair } from './host.js';

export { freePort, run };

const pair = await sshKeyPair('deployer@host', 'cairn-test-deploy-');
const publicKey = pair.publicKey;
export const SSH_OPTS = ['-i', pair.key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes'];

/** A generation: its marker service says which; `extra` replaces top-level sections. */
export const generation = (marker: string, extra: Record<string, unknown> = {}) => ({
  networking: { hostName: 'deployed' },
  system: { stateVersion: '0.1' },
  // What the driver adds to its machines, so that generations deployed from the host keep the test shell.
  virtualisation: { vm: true, useBootLoader: true },
  testing: { enable: true },
  services: { openssh: { enable: true } },
  // Root, and a user who deploys through sudo (--use-remote-sudo), both with the host's key.
  users: { users: { root: { openssh: { authorizedKeys: { keys: [publicKey] } } }, deployer: { isNormalUser: true, extraGroups: ['wheel'], openssh: { authorizedKeys: { keys: [publicKey] } } } } },
  security: { sudo: { wheelNeedsPassword: false } },
  systemd: { services: { marker: { description: `generation ${marker}`, wantedBy: ['multi-user.target'], script: `echo ${marker}; exec sleep infinity` } } },
  ...extra,
});

/**
 * The host's configuration files, and the locks their builds write beside them: this run's own
 * (the key's folder is kept from run to run, and a lock kept there would pin later runs to
 * package versions the archive may since have dropped).
 */
const configs = mkdtempSync(join(tmpdir(), 'cairn-test-deploy-'));

/** A configuration file of the host. */
export function configFile(name: string, config: unknown): string {
  const f = join(configs, `${name}.json`);
  writeFileSync(f, JSON.stringify(config));
  return f;
}

export interface CairnRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Waits for the machine's boot (sshd too) and forwards `port` of the host to its ssh. */
export async function up(m: Machine, port: number): Promise<void> {
  await m.waitForUnit('multi-user.target');
  await m.waitForUnit('sshd.service');
  await m.forwardPort(port, 22);
}

/** Runs cairn on the host (with the machines' store), deploying to the machine behind `port`. */
export function cairnOn(driver: DriverContext, port: number, user = 'root') {
  const env = { ...process.env, CAIRN_HOME: driver.storeHome, CAIRN_SSHOPTS: SSH_OPTS.join(' ') };
  return async (...args: string[]): Promise<CairnRun> => {
    const [node, cli] = driver.cairn;
    const r = await run(node, [cli, ...args, '--target-host', `${user}@127.0.0.1:${port}`], { env, maxBuffer: 64 << 20 }).then(
      (x) => ({ code: 0, stdout: x.stdout, stderr: x.stderr }),
      (e: { code?: number; stdout: string; stderr: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout, stderr: e.stderr }),
    );
    driver.log(`cairn ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    return r;
  };
}
