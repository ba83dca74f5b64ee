/**
 * Virtual networks of VM tests, without root on the host: each vlan is a hub in this process that
 * QEMU's `-netdev stream` connects to over a unix socket (frames prefixed with their length, as
 * QEMU's socket netdevs send them); every frame goes to every other machine on the vlan.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { evalVmConfig } from '../vm/index.js';
import type { ModuleInput } from '../lib/index.js';

export class Vlan {
  private server?: Server;
  private readonly ports = new Set<Socket>();

  constructor(
    readonly number: number,
    readonly socket: string,
  ) {}

  listen(): Promise<void> {
    rmSync(this.socket, { force: true });
    this.server = createServer((conn) => this.attach(conn));
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.socket, () => resolve());
    });
  }

  private attach(conn: Socket): void {
    this.ports.add(conn);
    let buf: Buffer = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      // Forward whole frames only: 4-byte big-endian length, then the Ethernet frame.
      let off = 0;
      while (buf.length - off >= 4) {
        const len = buf.readUInt32BE(off);
        if (buf.length - off < 4 + len) break;
        const frame = buf.subarray(off, off + 4 + len);
        for (const other of this.ports) if (other !== conn && !other.destroyed) other.write(frame);
        off += 4 + len;
      }
      buf = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    });
    const drop = (): void => {
      this.ports.delete(conn);
    };
    conn.on('close', drop);
    conn.on('error', drop);
  }

  close(): void {
    for (const p of this.ports) p.destroy();
    this.server?.close();
    rmSync(this.socket, { force: true });
  }
}

export interface VlanPlan {
  vlanNumbers: number[];
  /** The module each machine is evaluated with: its vlan addresses and everyone's host names. */
  modules: Record<string, ModuleInput>;
  /** QEMU arguments of a machine's vlan cards (eth1, eth2, … after the user network's eth0). */
  qemuArgs: (name: string, socketOf: (vlan: number) => string) => string[];
}

/**
 * Numbers machines in name order (1, 2, …) and reads each one's `virtualisation.vlans`: on vlan v,
 * machine n is 192.168.v.n on its card for that vlan, and every machine's /etc/hosts names every
 * machine at its address on its first vlan.
 */
export async function vlanModule(names: string[], files: Record<string, string>): Promise<VlanPlan> {
  const vlansOf: Record<string, number[]> = {};
  for (const n of names) {
    const { spec } = await evalVmConfig(files[n]!, [{ testing: { enable: true } }]);
    vlansOf[n] = [...new Set(spec.vm.vlans)];
  }
  const index = (n: string): number => names.indexOf(n) + 1;
  const hosts: Record<string, string[]> = {};
  for (const n of names) {
    const first = vlansOf[n]![0];
    if (first !== undefined) hosts[`192.168.${first}.${index(n)}`] = [n];
  }
  const modules: Record<string, ModuleInput> = {};
  for (const n of names) {
    const interfaces: Record<string, unknown> = {};
    vlansOf[n]!.forEach((v, k) => {
      interfaces[`eth${k + 1}`] = { ipv4: { addresses: [{ address: `192.168.${v}.${index(n)}`, prefixLength: 24 }] } };
    });
    modules[n] = { networking: { interfaces, hosts } };
  }
  return {
    vlanNumbers: [...new Set(Object.values(vlansOf).flat())].sort((a, b) => a - b),
    modules,
    qemuArgs: (n, socketOf) =>
      vlansOf[n]!.flatMap((v, k) => {
        const mac = `52:54:00:12:${v.toString(16).padStart(2, '0')}:${index(n).toString(16).padStart(2, '0')}`;
        return ['-netdev', `stream,id=vlan${v},server=off,addr.type=unix,addr.path=${socketOf(v)}`, '-device', `virtio-net-pci,netdev=vlan${v},id=nic${k + 1},mac=${mac},romfile=`];
      }),
  };
}
