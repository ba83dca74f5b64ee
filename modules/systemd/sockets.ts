import type { ModuleArgs } from '../../src/lib/index.js';
import { unitKindModule } from './unit.js';

/** `systemd.sockets.<name>`: socket units (socket activation), with NixOS's shape. */
export default unitKindModule(
  'socket',
  { name: 'Socket', option: 'socketConfig', description: 'Entries of the `[Socket]` section.' },
  ({ lib }: ModuleArgs) => ({
    listenStreams: lib.mkOption({ type: lib.types.listOf(lib.types.singleLineStr), default: [], example: ['0.0.0.0:993', '/run/my.sock'], description: 'Stream sockets to listen on (`ListenStream=`).' }),
    listenDatagrams: lib.mkOption({ type: lib.types.listOf(lib.types.singleLineStr), default: [], description: 'Datagram sockets to listen on (`ListenDatagram=`).' }),
  }),
  (def) => ({ ListenStream: def.listenStreams as string[], ListenDatagram: def.listenDatagrams as string[] }),
);
