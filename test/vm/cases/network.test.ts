/**
 * Two machines on one vlan: one serves HTTP, the other fetches it by name; after block() the
 * fetch fails, after unblock() it works again.
 */
import type { Machine } from '../../../src/testing/index.js';

export default {
  name: 'two machines on a vlan',
  nodes: {
    server: {
      networking: { hostName: 'server', firewall: { allowedTCPPorts: [80] } },
      system: { stateVersion: '0.1' },
      services: { nginx: { enable: true, virtualHosts: { server: { default: true, root: '/etc/www' } } } },
      environment: { etc: { 'www/index.html': { text: 'hello from server\n' } } },
    },
    client: {
      networking: { hostName: 'client' },
      system: { stateVersion: '0.1' },
      environment: { systemPackages: ['curl'] },
    },
  },
  async testScript({ server, client }: Record<string, Machine>) {
    await Promise.all([server.start(), client.start()]);
    await server.waitForUnit('nginx.service');
    await server.waitForOpenPort(80);
    const page = await client.waitUntilSucceeds('curl -fsS --max-time 5 http://server/');
    if (page !== 'hello from server\n') throw new Error(`client got ${JSON.stringify(page)}`);
    await server.block();
    await client.fail('curl -fsS --max-time 5 http://server/');
    await server.unblock();
    await client.waitUntilSucceeds('curl -fsS --max-time 5 http://server/');
  },
};
