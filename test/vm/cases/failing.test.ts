/** A test that fails on purpose: `cairn test` must exit 1 and say which call failed. */
import type { Machine } from '../../../src/testing/index.js';

export default {
  name: 'a failing test',
  nodes: { failer: { networking: { hostName: 'failer' }, system: { stateVersion: '0.1' } } },
  async testScript({ failer }: Record<string, Machine>) {
    await failer.start();
    await failer.succeed('echo "about to fail"; false');
  },
};
