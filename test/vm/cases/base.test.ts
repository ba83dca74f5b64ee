/**
 * The base-system options a real server sets, together on one machine booted once: sysctl values,
 * a swap file made at boot and zram swap, the root file system grown to fill a larger disk, a
 * user logging in with an initial password on the console into zsh, the firewall's extra rules,
 * a udev rule and the microcode package.
 *
 * The driver's root is its state disk, an ext4 file system on the whole disk (no partition
 * table), made as large as `virtualisation.diskSize`: the test grows the disk under the running
 * machine (QMP block_resize) and runs the growth units that ran at boot again. growpart finds
 * no partition there and leaves it; the file system is then grown by systemd-growfs.
 */
import type { DriverContext, Machine } from '../../../src/testing/index.js';

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

const MIB = 1024 * 1024;
// Typed on the keyboard: letters, digits and spaces only.
const PASSWORD = 'Initial pass 42';

export default {
  name: 'base-system options',
  nodes: {
    machine: {
      networking: {
        hostName: 'base',
        firewall: {
          allowedTCPPortRanges: [{ from: 8000, to: 8010 }],
          interfaces: { eth0: { allowedUDPPorts: [5353] } },
          extraInputRules: 'tcp dport 4444 accept comment "cairn-extra-rule"',
        },
      },
      system: { stateVersion: '0.1' },
      // Its package is in non-free-firmware, which the option adds to the release's components.
      hardware: { cpu: { intel: { updateMicrocode: true } } },
      boot: {
        kernel: { sysctl: { 'vm.swappiness': 17, 'net.core.somaxconn': 777, 'net.ipv4.ip_forward': true } },
        // A word the kernel does not know and has no `=`: the kernel passes it to init as an argument.
        kernelParams: ['cairninitword'],
        growPartition: true,
      },
      virtualisation: { diskSize: '1G' },
      fileSystems: { '/': { autoResize: true } },
      swapDevices: [{ device: '/var/lib/swapfile', size: 64 }],
      zramSwap: { enable: true, memoryPercent: 25 },
      services: {
        udev: { extraRules: 'SUBSYSTEM=="mem", KERNEL=="null", SYMLINK+="cairn-udev-null"' },
      },
      programs: { zsh: { enable: true } },
      users: {
        defaultUserShell: '/bin/zsh',
        users: { alice: { isNormalUser: true, initialPassword: PASSWORD } },
      },
    },
  },
  async testScript({ machine }: Record<string, Machine>, { subtest }: DriverContext) {
    // Generous: under emulation on a busy host a boot can take minutes.
    await machine.start({ timeout: 1200 });
    await machine.waitForUnit('multi-user.target', { timeout: 900 });

    await subtest('sysctl values are applied', async () => {
      check((await machine.succeed('sysctl -n vm.swappiness')).trim() === '17', 'vm.swappiness');
      check((await machine.succeed('sysctl -n net.core.somaxconn')).trim() === '777', 'net.core.somaxconn');
      check((await machine.succeed('cat /proc/sys/net/ipv4/ip_forward')).trim() === '1', 'ip_forward (true is 1)');
    });

    await subtest('a swap file made at boot and zram swap are in use', async () => {
      await machine.waitUntilSucceeds('swapon --show=NAME --noheadings | grep -qx /var/lib/swapfile');
      await machine.waitUntilSucceeds('swapon --show=NAME --noheadings | grep -qx /dev/zram0');
      const size = (await machine.succeed('stat -c %s /var/lib/swapfile')).trim();
      check(size === String(64 * MIB), `the swap file is ${size} bytes`);
      check((await machine.succeed('stat -c %a /var/lib/swapfile')).trim() === '600', 'the swap file is mode 0600');
      const zram = (await machine.succeed('swapon --show=NAME,PRIO --noheadings | grep zram0')).trim();
      check(/\s5$/.test(zram), `zram0's priority: ${zram}`);
    });

    await subtest('the root file system grows to fill a larger disk', async () => {
      const before = Number((await machine.succeed('df --output=size -B1 / | tail -1')).trim());
      await machine.succeed('systemctl is-active growpart.service');
      await machine.resizeDisk(0, 2048 * MIB);
      await machine.waitUntilSucceeds('[ "$(cat /sys/block/$(basename $(readlink -f $(findmnt -n -o SOURCE /)))/size)" -ge 4194304 ]');
      // What runs at boot: growpart (nothing to do on a whole disk), then systemd-growfs.
      await machine.succeed('systemctl restart growpart.service systemd-growfs-root.service');
      const after = Number((await machine.succeed('df --output=size -B1 / | tail -1')).trim());
      check(before < 1100 * MIB && after > 1900 * MIB, `the root was ${before} bytes and is ${after} bytes`);
    });

    await subtest('the firewall has the extra rule, the port ranges and the per-interface ports', async () => {
      const rules = await machine.succeed('nft list ruleset');
      check(rules.includes('tcp dport 4444 accept comment "cairn-extra-rule"'), `no extra rule in:\n${rules}`);
      check(/tcp dport 8000-8010 accept/.test(rules), `no port range in:\n${rules}`);
      check(/iifname "eth0" udp dport 5353 accept/.test(rules), `no eth0 rule in:\n${rules}`);
    });

    await subtest('the udev rule is applied', async () => {
      check((await machine.succeed('readlink /dev/cairn-udev-null')).trim() === 'null', 'no /dev/cairn-udev-null link');
    });

    await subtest("/etc keeps the generation's entries where Debian's tmpfiles.d would link its own", async () => {
      // Debian's systemd has `L+ /etc/mtab` and `L+ /etc/default/locale`: run at boot (and by activation) they would replace these.
      const links = (await machine.succeed('systemd-tmpfiles --create --exclude-prefix=/dev; readlink /etc/mtab /etc/default/locale')).trim();
      check(links === '/etc/static/mtab\n/etc/static/default/locale', `after systemd-tmpfiles, /etc/mtab and /etc/default/locale link to:\n${links}`);
    });

    await subtest("the kernel file systems of systemd's mount units are mounted by stage 2, and the units are active", async () => {
      // The FUSE control file system too: its modprobe@fuse loads a module the kernel has built in.
      await machine.succeed('systemctl is-active dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount run-lock.mount sys-fs-fuse-connections.mount');
      const opts = (await machine.succeed('findmnt -rno FSTYPE,OPTIONS /dev/mqueue')).trim();
      check(/^mqueue rw,nosuid,nodev,noexec/.test(opts), `/dev/mqueue is mounted as ${opts}`);
      // systemd logs "Mounting …" for each mount it makes itself: none of these.
      const mounting = (await machine.succeed("journalctl -b -o cat SYSLOG_IDENTIFIER=systemd | grep -E '^Mounting (dev-hugepages|dev-mqueue|sys-kernel-debug|run-lock|sys-fs-fuse-connections)\\.mount' || true")).trim();
      check(mounting === '', `systemd mounted them itself:\n${mounting}`);
    });

    await subtest("the first boot's stage 2 and activation (bash's loadable builtins) leave the generation's links and modes, and no temporary files", async () => {
      const links = (await machine.succeed('readlink /run/booted-system /run/current-system /usr /run/current-system/sw')).trim().split('\n');
      check(links.length === 4 && links[0] === links[1] && links[2] === `${links[3]}/usr`, `booted-system, current-system, /usr, sw:\n${links.join('\n')}`);
      const modes = (await machine.succeed('stat -c "%n %a %U:%G" /tmp /var/tmp /var/empty /root /etc/shadow /etc/gshadow /etc/machine-id')).trim();
      check(modes === ['/tmp 1777 root:root', '/var/tmp 1777 root:root', '/var/empty 555 root:root', '/root 700 root:root', '/etc/shadow 640 root:shadow', '/etc/gshadow 640 root:shadow', '/etc/machine-id 444 root:root'].join('\n'), `modes:\n${modes}`);
      const tmp = (await machine.succeed('find / -xdev -name ".cairn-tmp.*" 2>/dev/null; true')).trim();
      check(tmp === '', `temporary files left:\n${tmp}`);
    });

    await subtest('systemd starts no process for what the generation settles before it; boot.kernelModules are loaded, blacklisted ones not even by stage 1', async () => {
      // The static device nodes come from the tree's tmpfiles.d, not from kmod at each boot; modprobe@ of a module already there is skipped.
      // So is modprobe@ of a module the system does not have (logind's drm, configfs), when the boot asked for it.
      const skipped = (await machine.succeed('for u in kmod-static-nodes.service modprobe@fuse.service modprobe@drm.service modprobe@configfs.service; do echo "$u $(systemctl show -p ConditionResult --value $u) $(systemctl show -p ConditionTimestampMonotonic --value $u)"; done')).trim().split('\n');
      check(skipped.every((l) => / no [1-9]\d*$/.test(l)), `conditions (unit, result, when checked):\n${skipped.join('\n')}`);
      // Suppressed: stage 1 mounted / with its fstab options and stage 2 made it writable (remount-fs), and two more.
      const masked = (await machine.succeed('systemctl is-enabled systemd-tmpfiles-setup-dev-early.service systemd-udev-load-credentials.service systemd-remount-fs.service || true')).trim();
      check(masked === 'masked\nmasked\nmasked', `suppressed units: ${JSON.stringify(masked)}`);
      const root = (await machine.succeed('findmnt -rno OPTIONS /')).trim();
      check(/^rw,/.test(root), `/ is mounted with ${root}`);
      // Mode 0666 is systemd's static-nodes-permissions.conf adjusting the node tmpfiles made; 10:200 in hex.
      const tun = (await machine.succeed('stat -c "%F %a %t:%T" /dev/net/tun /dev/loop-control')).trim();
      check(tun === 'character special file 666 a:c8\ncharacter special file 660 a:ed', `static nodes:\n${tun}`);
      // A module the system has loads through modprobe@.
      await machine.succeed('! test -e /sys/module/tun && systemctl start modprobe@tun.service && test -d /sys/module/tun');
      // The firewall's modules (boot.kernelModules), loaded while systemd started; systemd-modules-load found them there.
      await machine.succeed('test -d /sys/module/nf_tables && test -d /sys/module/nft_ct && systemctl is-active systemd-modules-load.service');
      check((await machine.succeed('systemctl show -p Result --value systemd-modules-load.service')).trim() === 'success', 'systemd-modules-load failed');
      // The VM's blacklist holds in stage 1 too: q35's AHCI controller is there, its driver never loaded.
      const sata = (await machine.succeed('cat /sys/bus/pci/devices/*/class; ls /sys/module')).split('\n');
      check(sata.includes('0x010601') && !sata.includes('ahci') && !sata.includes('libata'), `the AHCI controller (class 0x010601) is ${sata.includes('0x010601') ? '' : 'not '}there; modules: ${sata.filter((x) => /ahci|ata/.test(x)).join(' ')}`);
    });

    await subtest("PID 1 gets the kernel's arguments for init through stage 1 and 2, nothing else", async () => {
      const argv = (await machine.succeed("tr '\\0' '\\n' < /proc/1/cmdline")).trim().split('\n');
      check(argv.length === 2 && argv[1] === 'cairninitword', `PID 1's command line: ${JSON.stringify(argv)}`);
    });

    await subtest("the kernel's random numbers come from the host's entropy (virtio-rng), not from timer jitter on the emulated CPU", async () => {
      const rng = (await machine.succeed('cat /sys/devices/virtual/misc/hw_random/rng_current')).trim();
      check(rng.startsWith('virtio_rng'), `hardware random number generator: ${rng}`);
    });

    await subtest('the microcode package is in the system', async () => {
      await machine.succeed('ls /usr/lib/firmware/intel-ucode | grep -q .');
    });

    await subtest('a user logs in on the console with the initial password, into zsh', async () => {
      check((await machine.succeed('getent passwd alice')).trim().endsWith(':/bin/zsh'), 'alice\'s shell');
      await machine.succeed('grep -qx /bin/zsh /etc/shells');
      // tty1 is the active console: the keyboard types there.
      await machine.succeed('systemctl start getty@tty1.service');
      await machine.waitUntilSucceeds('pgrep -x -t tty1 agetty');
      await machine.sendChars('alice\n');
      // agetty hands over to login, which turns echo off (and drops earlier input) when it asks for the password.
      await machine.waitUntilSucceeds('pgrep -x -t tty1 login && stty -F /dev/tty1 -a | grep -qw -- -echo');
      await machine.sendChars(`${PASSWORD}\n`);
      await machine.waitUntilSucceeds('pgrep -u alice -x zsh');
      // Her login shell on the console (`who` cannot say: Debian 13's reads logind's sessions, not utmp).
      const tty = await machine.succeed('ps -o tty= -p "$(pgrep -u alice -x zsh)"');
      check(tty.trim() === 'tty1', `alice's zsh runs on ${JSON.stringify(tty)}`);
    });
  },
};
