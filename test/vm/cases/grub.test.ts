/**
 * GRUB on a BIOS machine (SeaBIOS, `virtualisation.useBootLoader`, a raw-bios disk with GRUB's
 * boot sector and core image written by cairn):
 *   generation 1 boots to multi-user.target; grub.cfg lists it as the default.
 *   switch to 2: grub.cfg lists 2 and 1, newest first, 2 the default; the reboot boots 2.
 *   `install-bootloader --once 1`: the next boot is generation 1, and GRUB cleared its one-shot
 *     entry (save_env on the FAT partition), so the boot after would be the default again.
 * Then a hybrid disk (GRUB and systemd-boot, raw-hybrid) boots under OVMF.
 */
import type { Machine } from '../../../src/testing/index.js';
import { setProfile } from './host.js';

const generation = (page: string, extra: Record<string, unknown> = {}) => ({
  networking: { hostName: 'grubby' },
  system: { stateVersion: '0.1' },
  virtualisation: { useBootLoader: true },
  boot: { loader: { grub: { enable: true, device: '/dev/vda' } } },
  environment: { etc: { 'page': { text: `page ${page}\n` } } },
  ...extra,
});


export default {
  name: 'grub: BIOS boot, a menu entry per generation, switch, one-shot boot; a hybrid disk under OVMF',
  timeout: 1800,
  nodes: {
    bios: { configuration: generation('A'), alsoInStore: [generation('B')] },
    hybrid: generation('H', {
      networking: { hostName: 'hybrid' },
      boot: { loader: { grub: { enable: true, device: '/dev/vda' }, 'systemd-boot': { enable: true } } },
      virtualisation: { useBootLoader: true, useEFIBoot: true },
    }),
  },
  async testScript({ bios: m, hybrid: h }: Record<string, Machine>) {
    const [gen2] = m.otherSystems as [string];
    const booted = async () => (await m.succeed('readlink -f /run/booted-system')).trim();
    const ids = async () => [...(await m.succeed('cat /boot/grub/grub.cfg')).matchAll(/--id (\S+) \{/g)].map((x) => x[1]);
    const up = () => m.waitForUnit('multi-user.target');
    await m.start();
    await up();
    const first = await booted();
    if ((await m.succeed('cat /etc/page')) !== 'page A\n') throw new Error('generation 1 is not page A');
    if (JSON.stringify(await ids()) !== JSON.stringify(['cairn-generation-1'])) throw new Error(`the image's grub.cfg lists ${await ids()}`);
    // No UEFI here: the machine came up through SeaBIOS and GRUB.
    await m.fail('test -d /sys/firmware/efi');

    await m.succeed(`${setProfile(2, gen2)} && ${gen2}/bin/switch-to-configuration switch`);
    if (JSON.stringify(await ids()) !== JSON.stringify(['cairn-generation-2', 'cairn-generation-1'])) throw new Error(`after the switch grub.cfg lists ${await ids()}`);
    await m.succeed('grep -qx "set default=cairn-generation-2" /boot/grub/grub.cfg');

    await m.reboot();
    await up();
    if ((await booted()) !== gen2) throw new Error(`the reboot after the switch booted ${await booted()}, not generation 2`);
    if ((await m.succeed('cat /etc/page')) !== 'page B\n') throw new Error('generation 2 is not page B');

    await m.succeed(`${gen2}/bin/install-bootloader --once 1`);
    await m.succeed('grep -q "^next_entry=cairn-generation-1$" /boot/grub/grubenv');
    await m.reboot();
    await up();
    if ((await booted()) !== first) throw new Error(`the one-shot boot booted ${await booted()}, not generation 1`);
    // GRUB cleared it: the next boot is the default (generation 2) again.
    await m.fail('grep -q "^next_entry=cairn-generation-1$" /boot/grub/grubenv');
    await m.succeed('grep -qx "set default=cairn-generation-2" /boot/grub/grub.cfg');
    await m.shutdown();

    // A hybrid disk: the same partitions, GRUB and systemd-boot; under OVMF systemd-boot boots it.
    await h.start();
    await h.waitForUnit('multi-user.target');
    await h.succeed('test -d /sys/firmware/efi');
    await h.succeed('test -f /boot/grub/grub.cfg && test -f /boot/EFI/BOOT/BOOTX64.EFI && ls /boot/loader/entries/cairn-generation-1*.conf');
  },
};
