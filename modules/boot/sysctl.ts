import type { ModuleArgs } from '../config.js';

/**
 * `boot.kernel.sysctl`: kernel parameters set at boot by systemd-sysctl from
 * /etc/sysctl.d/60-cairn.conf (after the packages' files, before /etc/sysctl.conf's), and again on
 * a switch that changes them.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const cfg = () => config.boot.kernel.sysctl;
  // NixOS's "sysctl option value": a string, integer or boolean (true is 1), null leaves it out.
  const value = types.nullOr(types.oneOf([types.bool, types.int, types.singleLineStr]));
  const text = (): string =>
    Object.entries(cfg())
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}=${v === true ? 1 : v === false ? 0 : v}\n`)
      .join('');
  return {
    options: {
      boot: {
        kernel: {
          sysctl: mkOption({
            // A key is a path of /proc/sys, dotted or slashed, possibly a glob (`net.ipv4.conf.*.rp_filter`); `-` first ignores errors.
            type: types.attrsNamed(types.strMatching('-?[A-Za-z0-9_*][A-Za-z0-9_.*/:@-]*'), value),
            default: {},
            example: { 'net.ipv4.tcp_keepalive_time': 120, 'net.ipv4.ip_forward': true, 'vm.swappiness': 10 },
            description:
              'Runtime parameters of the Linux kernel, as /proc/sys keys (sysctl.d(5)): `true` is written as 1 and `false` as 0; `null` leaves ' +
              'the key out (as if unset). Applied by systemd-sysctl at boot and when a switch changes them.',
          }),
        },
      },
    },
    config: lib.mkIf(() => Object.keys(cfg()).length > 0, lib.systemd.packagedService('systemd-sysctl', { configFile: 'sysctl.d/60-cairn.conf', text })),
  };
};
