#!/bin/sh
# cairn stage 1: the initrd's /init. Runs on busybox alone.
#
# Loads the kernel modules the root file system needs (in the order the build resolved from
# modules.dep and modules.softdep), waits for the device `root=` names, mounts it on /sysroot,
# points the root's /usr at the generation named by `init=` (its sw/usr) and hands over to that
# generation's stage 2 with switch_root.
#
# Files the build puts beside this script:
#   /etc/cairn/modules   module files to insmod, one per line, in load order
#   /etc/cairn/fstab     "DEVICE MOUNTPOINT FSTYPE OPTIONS" for / and other file systems needed for boot
#
# Kernel command line: root=LABEL=…|UUID=…|/dev/…, init=/cairn/store/<hash>-<name>/init,
# rootfstype=, rootflags=, rootdelay=SECONDS (default 30), ro, boot.shell_on_fail, boot.trace.

export PATH=/bin:/sbin
umask 022

info() { echo "cairn stage 1: $*"; }

# On failure: say what failed and what to do; a shell only if the command line asks for one,
# otherwise exit, which makes the kernel panic (with panic=N it then reboots).
fail() {
    if [ -n "$shell_on_fail" ]; then
        echo
        echo "cairn stage 1: error: $*"
        echo "cairn stage 1: starting a shell (boot.shell_on_fail); exit it to retry the switch to stage 2."
        setsid cttyhack sh || sh
        return 0
    fi
    # The kernel panics as soon as this exits, and what the console has not written yet is lost
    # then; the kernel's own log is written out by the panic. So the last words go through it.
    set -- "cairn stage 1: error: $*" "cairn stage 1: add boot.shell_on_fail to the kernel command line for a rescue shell."
    if ! { printf '<2>%s\n' "$1" > /dev/kmsg && printf '<2>%s\n' "$2" > /dev/kmsg; } 2>/dev/null; then
        echo
        echo "$1"
        echo "$2"
    fi
    sync
    exit 1
}

mkdir -p /proc /sys /dev /run /sysroot /tmp
mount -t proc proc /proc || fail "cannot mount /proc"
mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev || fail "cannot mount /dev"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
# devtmpfs has device nodes only; stage 2 runs bash scripts before systemd adds these links,
# and process substitution (`< <(…)`) needs /dev/fd.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr

root=""
init=""
rootfstype=""
rootflags=""
rootdelay=30
rw_mode=rw
shell_on_fail=""
for word in $(cat /proc/cmdline); do
    case "$word" in
        root=*) root="${word#root=}" ;;
        init=*) init="${word#init=}" ;;
        rootfstype=*) rootfstype="${word#rootfstype=}" ;;
        rootflags=*) rootflags="${word#rootflags=}" ;;
        rootdelay=*) rootdelay="${word#rootdelay=}" ;;
        ro) rw_mode=ro ;;
        rw) rw_mode=rw ;;
        boot.shell_on_fail) shell_on_fail=1 ;;
        boot.trace) set -x ;;
    esac
done

# The other modules of the initrd are loaded for the hardware there is, as udev would: by the
# modaliases of the devices in /sys (busybox modprobe matches them against modules.alias). A
# driver's devices (virtio_pci's virtio devices) have modaliases of their own: repeat until no
# new device shows up. Returns 1 when nothing new was found.
read -r kernel_release < /proc/sys/kernel/osrelease
hardware_seen=""
load_hardware() {
    [ -f "/lib/modules/$kernel_release/modules.alias" ] || return 1
    aliases=$(cat /sys/bus/*/devices/*/modalias 2>/dev/null)
    [ "$aliases" != "$hardware_seen" ] || return 1
    hardware_seen=$aliases
    modprobe -qa $aliases 2>/dev/null
    return 0
}

# The drivers of ATA controllers probe slowly: each waits for every port's link (and a disk's
# spin-up), and the kernel makes every module load wait for probes under way. Their aliases come in
# (from the initrd's etc/cairn/modules.alias.late) only when a device stage 1 waits for is not
# there without them: a root on virtio or NVMe does not wait for empty SATA ports, whose drivers
# udev loads in stage 2. Returns 1 when they are in already.
add_late_drivers() {
    [ -f /etc/cairn/modules.alias.late ] || return 1
    cat /etc/cairn/modules.alias.late >> "/lib/modules/$kernel_release/modules.alias" || return 1
    rm -f /etc/cairn/modules.alias.late
    hardware_seen=""
}

# The hardware's drivers load in the background while the listed modules (the file systems') load
# here: a second CPU then overlaps with them. Both are done before the root is looked for.
(
    rounds=0
    while [ "$rounds" -lt 8 ] && load_hardware; do rounds=$((rounds + 1)); done
) &
hardware_job=$!

if [ -f /etc/cairn/modules ]; then
    while read -r module; do
        [ -n "$module" ] || continue
        # Failures are not fatal. "No such device" is the normal answer of a driver for absent
        # hardware or of an implementation the CPU cannot run (crc32c_intel without SSE4.2): silent.
        # The message goes through a file, not $(…): a subshell per module is boot time under emulation.
        insmod "$module" 2>/tmp/insmod.err && continue
        out=""
        read -r out < /tmp/insmod.err
        case "$out" in
            *"File exists"*|*"No such device"*) ;;
            *) info "could not load ${module##*/}: $out" ;;
        esac
    done < /etc/cairn/modules
fi

wait "$hardware_job"

# The fstab line for a mount point, as "DEVICE FSTYPE OPTIONS".
fstab_entry() {
    [ -f /etc/cairn/fstab ] || return 1
    while read -r dev mnt type opts; do
        case "$dev" in ''|'#'*) continue ;; esac
        if [ "$mnt" = "$1" ]; then echo "$dev $type $opts"; return 0; fi
    done < /etc/cairn/fstab
    return 1
}

# Prints the device node for LABEL=…, UUID=… or a path, once it exists.
find_device() {
    case "$1" in
        LABEL=*|UUID=*) findfs "$1" 2>/dev/null ;;
        /dev/*) [ -b "$1" ] && echo "$1" ;;
        *) return 1 ;;
    esac
}

# Waits (bounded by rootdelay) for a device to appear and prints its node.
wait_device() {
    tries=$((rootdelay * 5))
    while [ "$tries" -gt 0 ]; do
        dev=$(find_device "$1") && [ -n "$dev" ] && { echo "$dev"; return 0; }
        # Disks behind a controller (SCSI, SATA, USB) appear after its driver has probed it.
        add_late_drivers || :
        load_hardware || :
        tries=$((tries - 1))
        sleep 0.2
    done
    return 1
}

# The fstab line's fields where the command line gave none. A function's own arguments: the
# script's ("$@", the words of the kernel command line the kernel passes to init, such as
# `emergency`) go on to stage 2 and systemd as they came.
root_defaults() { # DEVICE FSTYPE OPTIONS
    [ -n "$root" ] || root="$1"
    [ -n "$rootfstype" ] || rootfstype="${2:-auto}"
    [ -n "$rootflags" ] || rootflags="${3:-defaults}"
}
root_defaults $(fstab_entry /)
[ -n "$root" ] || fail "no root= on the kernel command line and no / in the initrd's fstab"
[ -n "$init" ] || fail "no init= on the kernel command line: it names the generation to boot (init=/cairn/store/…/init)"

info "waiting for the root device $root"
while ! rootdev=$(wait_device "$root"); do
    fail "the root device $root did not appear within ${rootdelay}s (block devices: $(ls /sys/class/block 2>/dev/null | tr '\n' ' '))"
done

mount_fs() { # DEVICE MOUNTPOINT FSTYPE OPTIONS
    if [ "$3" = auto ]; then mount -o "$4" "$1" "$2"; else mount -t "$3" -o "$4" "$1" "$2"; fi
}
info "mounting $rootdev ($rootfstype) on /"
while ! mount_fs "$rootdev" /sysroot "$rootfstype" "$rw_mode,$rootflags"; do
    fail "cannot mount the root file system $rootdev ($rootfstype, options $rw_mode,$rootflags)"
done

# Other file systems needed for boot (e.g. a separate /cairn), below the new root.
if [ -f /etc/cairn/fstab ]; then
    while read -r dev mnt type opts; do
        case "$dev" in ''|'#'*) continue ;; esac
        [ "$mnt" = / ] && continue
        node=$(wait_device "$dev") || { fail "the device $dev for $mnt did not appear"; continue; }
        mkdir -p "/sysroot$mnt"
        mount_fs "$node" "/sysroot$mnt" "$type" "$opts" || fail "cannot mount $dev on $mnt"
    done < /etc/cairn/fstab
fi

# The generation: init= is <toplevel>/init. Its entries are absolute links into /cairn/store,
# which resolve only inside the new root: follow them by hand, below /sysroot.
toplevel="${init%/init}"
in_root() { # PATH → the same path below /sysroot, its last component's link (if any) followed once
    if [ -L "/sysroot$1" ]; then
        target=$(readlink "/sysroot$1")
        case "$target" in /*) echo "/sysroot$target" ;; *) echo "/sysroot${1%/*}/$target" ;; esac
    else
        echo "/sysroot$1"
    fi
}
while [ ! -e "$(in_root "$init")" ] || [ ! -d "$(in_root "$toplevel/sw")/usr" ]; do
    fail "the generation $toplevel is not on the root file system (no $init or $toplevel/sw/usr there)"
done

# Replaces a symlink (or creates it) without a moment in which the path is missing:
# make the new link under a temporary name, then rename it over the old one.
relink() { # TARGET LINK
    ln -sfn "$1" "$2.cairn-new" && mv -fT "$2.cairn-new" "$2"
}
# /usr names the generation's sw itself, as activation links it (then it has nothing to redo).
usr="$toplevel/sw/usr"
if [ -L "/sysroot$toplevel/sw" ]; then
    sw=$(readlink "/sysroot$toplevel/sw")
    case "$sw" in /cairn/store/*) usr="$sw/usr" ;; esac
fi
if [ -d /sysroot/usr ] && [ ! -L /sysroot/usr ]; then
    fail "/usr on the root file system is a folder, not a link cairn manages; it is left alone"
elif [ "$(readlink /sysroot/usr)" != "$usr" ]; then
    # Only when it changes: a root mounted read-only (`ro`) that already points right boots as is.
    relink "$usr" /sysroot/usr || fail "cannot point /usr at $usr"
fi
# Merged /usr: the top-level program and library folders are relative links into usr/.
for d in bin sbin lib lib64; do
    if [ -L "/sysroot/$d" ]; then
        [ "$(readlink "/sysroot/$d")" = "usr/$d" ] || relink "usr/$d" "/sysroot/$d"
    elif [ -e "/sysroot/$d" ]; then
        info "warning: /$d on the root is not a link to usr/$d; programs there shadow the generation's"
    else
        ln -s "usr/$d" "/sysroot/$d"
    fi
done

for d in dev proc sys run; do
    mkdir -p "/sysroot/$d"
    mount --move "/$d" "/sysroot/$d" || fail "cannot move /$d to the new root"
done

info "switching to $init"
exec switch_root /sysroot "$init" "$@"
fail "switch_root to $init failed"
