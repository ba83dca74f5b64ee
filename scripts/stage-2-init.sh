#!@bash@
# Stage 2 of a cairn boot: the initrd has mounted the root, pointed /usr at this generation's
# sw/usr and switched root to this script (`init=` on the kernel command line). It mounts the
# kernel's file systems, activates the generation and becomes systemd. Generated; do not edit.
systemConfig=@out@
export PATH=@sw@/usr/bin:@sw@/usr/sbin

echo "cairn stage 2: $systemConfig"

# Tests here are bash builtins, not programs: under emulation every process started costs tens
# of milliseconds, and this runs before anything else of the system. So are mkdir and ln: bash's
# loadable ones (bash-builtins, in sw), where the generation has them.
enable -f @sw@/usr/lib/bash/mkdir mkdir 2>/dev/null
enable -f @sw@/usr/lib/bash/ln ln 2>/dev/null

# Activation writes /etc, /var and the user database: the root must be writable (access(2)
# answers EROFS for a read-only mount).
if [ ! -w / ]; then mount -o remount,rw / || echo "warning: cannot remount / read-write" >&2; fi

# Whether a path is a mount point, from the kernel's mount table (none yet: nothing is).
mounted() {
  local dev mnt rest
  [ -r /proc/self/mounts ] || return 1
  while read -r dev mnt rest; do [ "$mnt" = "$1" ] && return 0; done < /proc/self/mounts
  return 1
}
for d in /proc /sys /dev /run; do [ -d "$d" ] || mkdir -p "$d"; done
mounted /proc || mount -t proc -o nosuid,nodev,noexec proc /proc
mounted /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mounted /dev || mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev
for d in /dev/pts /dev/shm; do [ -d "$d" ] || mkdir -p "$d"; done
mounted /dev/pts || mount -t devpts -o mode=0620,gid=5,nosuid,noexec devpts /dev/pts
mounted /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
# The kernel file systems systemd would mount through a unit each (two processes apiece): all in
# one process (src/build/api-mounts.ts). What fails here is left to systemd's units, as before.
[ -s "$systemConfig/api-mounts" ] && { mount -a -T "$systemConfig/api-mounts" 2>/dev/null || true; }

# A failed snippet is reported, not fatal: a booted system can be repaired, a halted one less so.
"$systemConfig/activate" || echo "warning: activation reported errors; booting anyway" >&2
ln -sf "$systemConfig" /run/booted-system

# boot.kernelModules start loading now, beside systemd's own start (~2 s of one CPU under
# emulation) rather than after it in systemd-modules-load, which then finds them loaded (the
# kernel lets a second load of a module wait for the first). After activation: /etc/modprobe.d
# (options, blacklists) is in place. modprobe becomes systemd's child; its errors are the unit's.
if [ -s "$systemConfig/etc/modules-load.d/cairn.conf" ]; then
  mapfile -t modules < "$systemConfig/etc/modules-load.d/cairn.conf"
  modprobe -q -a "${modules[@]}" < /dev/null > /dev/null 2>&1 &
fi

exec @systemd@ "$@"
