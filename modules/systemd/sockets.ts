import type { ModuleArgs } from '../../src/lib/index.js';

/** `systemd.sockets.<name>`: socket units (socket activation), with NixOS's shape. */
export default (args: ModuleArgs) => {
  const { lib } = args;
  const sockets = lib.systemd.unitKind(
    args,
    'socket',
    { name: 'Socket', option: 'socketConfig', description: 'Entries of the `[Socket]` section.' },
    () => ({
      listenStreams: lib.mkOption({ type: lib.types.listOf(lib.types.singleLineStr), default: [], example: ['0.0.0.0:993', '/run/my.sock'], description: 'Stream sockets to listen on (`ListenStream=`).' }),
      listenDatagrams: lib.mkOption({ type: lib.types.listOf(lib.types.singleLineStr), default: [], description: 'Datagram sockets to listen on (`ListenDatagram=`).' }),
    }),
    (def) => ({ ListenStream: def.listenStreams as string[], ListenDatagram: def.listenDatagrams as string[] }),
  );
  return {
    options: { systemd: { sockets: lib.mkOption({ type: sockets.type, default: {}, description: 'systemd socket units, by unit name without `.socket`.' }) } },
    config: sockets.config,
  };
};
