import { describe, it, expect } from 'vitest';
import { analysePackage, shellCommands } from '../../src/debian/scripts.js';
import { TarLister } from '../../src/debian/tar.js';
import { debStoreName, mergedPath } from '../../src/debian/deb.js';

// The postinst of bookworm's mawk and a shortened openssh-server one (real texts, as shipped).
const MAWK_POSTINST = `#!/bin/sh
set -e
# Automatically added by dh_installalternatives/13.11.4
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\
            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\
            --slave /usr/bin/nawk nawk /usr/bin/mawk \\
            --slave /usr/share/man/man1/nawk.1.gz nawk.1.gz /usr/share/man/man1/mawk.1.gz
fi
# End automatically added section
`;

const SSH_POSTINST = `#!/bin/sh
set -e
. /usr/share/debconf/confmodule
setup_sshd_user() {
	if ! getent passwd sshd >/dev/null; then
		adduser --quiet --system --no-create-home --home /run/sshd --shell /usr/sbin/nologin sshd
	fi
}
if [ "$1" = configure ]; then
	create_keys
	setup_sshd_user
	dpkg-divert --package openssh-server --divert /usr/sbin/sshd.real --rename --add /usr/sbin/sshd
	addgroup --system ssl-cert
	adduser sshd ssl-cert
	ldconfig
fi
`;

describe('maintainer script duties', () => {
  it('reads debhelper alternatives with slaves', () => {
    const d = analysePackage({ postinst: MAWK_POSTINST });
    expect(d.alternatives).toEqual([{
      link: '/usr/bin/awk', name: 'awk', path: '/usr/bin/mawk', priority: 5, source: 'debhelper',
      slaves: [
        { link: '/usr/share/man/man1/awk.1.gz', name: 'awk.1.gz', path: '/usr/share/man/man1/mawk.1.gz' },
        { link: '/usr/bin/nawk', name: 'nawk', path: '/usr/bin/mawk' },
        { link: '/usr/share/man/man1/nawk.1.gz', name: 'nawk.1.gz', path: '/usr/share/man/man1/mawk.1.gz' },
      ],
    }]);
  });

  it('reads system users, groups, memberships, diversions and notable commands', () => {
    const d = analysePackage({ postinst: SSH_POSTINST, triggers: 'activate-noawait ldconfig\n' }, [{ file: 'x.conf', text: 'u messagebus - "System Message Bus" /nonexistent\ng render - -\n' }]);
    expect(d.users).toContainEqual({ name: 'sshd', system: true, home: '/run/sshd', shell: '/usr/sbin/nologin', source: 'postinst: adduser' });
    expect(d.users).toContainEqual({ name: 'messagebus', system: true, gecos: 'System Message Bus', home: '/nonexistent', source: 'sysusers.d/x.conf' });
    expect(d.groups.map((g) => g.name)).toEqual(['ssl-cert', 'render']);
    expect(d.memberships).toContainEqual({ user: 'sshd', group: 'ssl-cert', source: 'postinst: adduser' });
    expect(d.diversions).toEqual([{ path: '/usr/sbin/sshd', divertTo: '/usr/sbin/sshd.real', package: 'openssh-server', rename: true, source: 'postinst: dpkg-divert' }]);
    expect(d.triggers).toEqual(['activate-noawait ldconfig']);
    expect(d.other).toContainEqual({ script: 'postinst', command: 'ldconfig' });
  });

  it('splits shell text into commands without redirections or keywords', () => {
    expect(shellCommands('if ! getent passwd x >/dev/null; then useradd -r x 2>&1; fi').map((c) => c.words)).toEqual([['getent', 'passwd', 'x'], ['useradd', '-r', 'x']]);
  });
});

describe('deb unpacking helpers', () => {
  it('names store paths from package and version', () => {
    expect(debStoreName('zlib1g', '1:1.2.13.dfsg-1')).toBe('zlib1g-1_1.2.13.dfsg-1');
    expect(debStoreName('systemd', '252.39-1~deb12u1')).toBe('systemd-252.39-1_deb12u1');
  });

  it('maps merged-/usr paths', () => {
    expect(mergedPath('bin/sh')).toBe('usr/bin/sh');
    expect(mergedPath('lib64/ld-linux-x86-64.so.2')).toBe('usr/lib64/ld-linux-x86-64.so.2');
    expect(mergedPath('etc/passwd')).toBe('etc/passwd');
    expect(mergedPath('library/x')).toBe('library/x');
  });

  it('lists tar members with full modes across chunk boundaries and pax paths', () => {
    const header = (name: string, mode: number, size: number, type = '0'): Buffer => {
      const h = Buffer.alloc(512);
      h.write(name, 0);
      h.write(mode.toString(8).padStart(7, '0'), 100);
      h.write(size.toString(8).padStart(11, '0'), 124);
      h.write(type, 156);
      h.write('ustar', 257);
      return h;
    };
    const long = 'usr/' + 'x'.repeat(150) + '/su';
    const rec = ` path=${long}\n`;
    const pax = `${rec.length + String(rec.length + 3).length}${rec}`;
    const paxData = Buffer.alloc(512);
    paxData.write(pax);
    const tarball = Buffer.concat([
      header('./usr/bin/', 0o755, 0, '5'),
      header('./usr/bin/passwd', 0o4755, 3), Buffer.alloc(512),
      header('PaxHeaders/x', 0o644, Buffer.byteLength(pax), 'x'), paxData,
      header('./truncated', 0o4755, 0),
      Buffer.alloc(1024),
    ]);
    const seen: [string, number][] = [];
    const l = new TarLister((e) => seen.push([e.path, e.mode]));
    for (let i = 0; i < tarball.length; i += 100) l.push(tarball.subarray(i, i + 100));
    expect(seen).toEqual([['usr/bin', 0o755], ['usr/bin/passwd', 0o4755], [long, 0o4755]]);
  });
});
