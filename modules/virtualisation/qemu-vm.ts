import type { ModuleArgs } from '../config.js';
import { VM_ROOT_LABEL, VM_STORE_LABEL } from '../../src/vm/constants.js';

/**
 * `virtualisation.*`: the machine `cairn vm` runs (memory, CPUs, state disk, port forwards).
 * `cairn vm` sets `virtualisation.vm` for the generation it boots: its root is then a persistent
 * state disk and its store a read-only disk of the closure (as NixOS's build-vm shares the store),
 * so the same configuration boots without building a full disk image. With
 * `virtualisation.useBootLoader` it boots a disk image instead (ESP, systemd-boot, store on the root). Definitions for a VM win
 * over the configuration's own file systems (priority 10, NixOS's mkVMOverride).
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, mkOverride, mkDefault, mkOptionDefault, types } = lib;
  const cfg = config.virtualisation;
  const vmOverride = (v: unknown) => mkOverride(10, v);
  return {
    options: {
      virtualisation: {
        vm: mkOption({
          type: types.bool,
          default: false,
          internal: true,
          description: 'Set by `cairn vm`: build the system to boot in QEMU with a state disk and the store on a read-only disk.',
        }),
        useBootLoader: mkOption({
          type: types.bool,
          default: false,
          description:
            'Boot the VM like a real machine: from a disk image with an EFI system partition, under OVMF and systemd-boot, the store ' +
            'on the (writable) root file system. Slower to start than the direct kernel boot, but boot entries, boot counting, ' +
            '`cairn boot` and remote deploys behave as on hardware (NixOS: virtualisation.useBootLoader).',
        }),
        useEFIBoot: mkOption({
          type: types.bool,
          defaultText: 'boot.loader.systemd-boot.enable',
          description:
            'With `useBootLoader`: boot under UEFI (OVMF, systemd-boot) rather than BIOS (SeaBIOS, GRUB). A machine with GRUB and ' +
            'systemd-boot (a hybrid disk, `raw-hybrid`) boots either way (NixOS: virtualisation.useEFIBoot).',
        }),
        memorySize: mkOption({ type: types.ints.positive, default: 1024, description: 'Memory of the VM in MiB (`cairn vm --mem` overrides it).' }),
        cores: mkOption({ type: types.ints.positive, default: 2, description: 'Virtual CPUs of the VM (`cairn vm --cpus` overrides it).' }),
        diskSize: mkOption({
          type: types.strMatching('[0-9]+[KMGT]?'),
          default: '4G',
          description: "Size of the VM's state disk (its root file system: /etc, /var, /home), made on first start.",
        }),
        vlans: mkOption({
          type: types.listOf(types.ints.between(1, 254)),
          default: [1],
          example: [1, 2],
          description:
            'Virtual networks a VM test machine is on (`cairn test`): on vlan v, the n-th machine (by name) is 192.168.v.n on eth1, eth2, … ' +
            '(eth0 is the user-mode network); every machine finds the others by name.',
        }),
        forwardPorts: mkOption({
          type: types.listOf(
            types.submodule({
              options: {
                from: mkOption({ type: types.enum(['host']), default: 'host', description: 'Forwards go from the host into the guest.' }),
                proto: mkOption({ type: types.enum(['tcp', 'udp']), default: 'tcp', description: 'Protocol.' }),
                hostPort: mkOption({ type: types.port, description: 'Port on the host (127.0.0.1).' }),
                guestPort: mkOption({ type: types.port, description: 'Port in the guest.' }),
              },
            }),
          ),
          default: [],
          example: [{ hostPort: 2222, guestPort: 22 }],
          description: 'Ports of the host forwarded into the VM (user-mode networking); `cairn vm --forward HOST:GUEST` adds more.',
        }),
      },
    },
    config: mkMerge([
      {
        virtualisation: {
          get useEFIBoot() {
            return mkOptionDefault(config.boot.loader['systemd-boot'].enable);
          },
        },
      },
      mkIf(cfg.vm, {
        fileSystems: {
          '/': { device: vmOverride(null), uuid: vmOverride(null), label: vmOverride(VM_ROOT_LABEL), fsType: vmOverride('ext4'), options: vmOverride(['defaults']) },
          '/cairn/store': mkIf(() => !cfg.useBootLoader, { label: VM_STORE_LABEL, fsType: 'ext4', options: ['ro', 'noatime'], neededForBoot: true }),
        },
        boot: {
          // eth0, eth1, … in the order of the VM's network cards, so a configuration's interface names
          // mean the same cards on every start (the first is the user-mode network).
          kernelParams: ['net.ifnames=0'],
          // No wireless in a VM. systemd-networkd asks for the nl80211 protocol when it starts, which
          // loads cfg80211 by its alias; emulated, that load waits behind udev's and holds
          // network.target (and so the login prompt and multi-user.target) for seconds.
          // Nor a SATA disk: the machine's disks are virtio, and q35's built-in AHCI controller has none.
          // Its driver would still load (libata, the SCSI core), probe six empty ports and add a SCSI
          // host each for udev and systemd to process: ~8% of a one-CPU boot's CPU under emulation.
          blacklistedKernelModules: ['cfg80211', 'ahci'],
          // No menu wait on every start; tests pick another entry with `bootctl set-oneshot` (GRUB:
          // `install-bootloader --once N`).
          loader: { timeout: mkDefault(0) },
        },
        // No time daemon in the guest: QEMU starts its clock from the host's (NixOS's qemu-vm does the
        // same, as a plain definition; here a default, so a configuration can still turn it on).
        services: { timesyncd: { enable: mkDefault(false) } },
      }),
    ]),
  };
};
