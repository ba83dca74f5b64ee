import type { Config, ModuleArgs } from '../config.js';

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
    // lib.systemd.unitKind serves every unit kind, so it hands over a socket's options untyped.
    (def) => {
      const socket = def as Config['systemd']['sockets'][string];
      return { ListenStream: socket.listenStreams, ListenDatagram: socket.listenDatagrams };
    },
  );
  return {
    options: { systemd: { sockets: lib.mkOption({ type: sockets.type, default: {}, description: 'systemd socket units, by unit name without `.socket`.' }) } },
    config: sockets.config,
  };
};
