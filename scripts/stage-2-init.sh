#!@bash@
# Stage 2 of a cairn boot: the initrd has mounted the root, pointed /usr at this generation's
# sw/usr and switched root to this script (`init=` on the kernel command line). It mounts the
# kernel's file systems, activates the generation and becomes systemd. Generated; do not edit.
systemConfig=@out@
export PATH=@sw@/usr/bin:@sw@/usr/sbin

echo "cairn stage 2: $systemConfig"

# Activation writes /etc, /var and the user database: the root must be writable.
if ! touch /.cairn-rw-test 2>/dev/null; then mount -o remount,rw / || echo "warning: cannot remount / read-write" >&2; fi
rm -f /.cairn-rw-test

mkdir -p /proc /sys /dev /run
mountpoint -q /proc || mount -t proc -o nosuid,nodev,noexec proc /proc
mountpoint -q /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mountpoint -q /dev || mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mountpoint -q /dev/pts || mount -t devpts -o mode=0620,gid=5,nosuid,noexec devpts /dev/pts
mountpoint -q /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run

# A failed snippet is reported, not fatal: a booted system can be repaired, a halted one less so.
"$systemConfig/activate" || echo "warning: activation reported errors; booting anyway" >&2
ln -sfn "$systemConfig" /run/booted-system

exec @systemd@ "$@"
