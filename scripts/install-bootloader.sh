#!@bash@
# install-bootloader of a cairn generation: makes the EFI system partition list the generations
# of the system profile, one Boot Loader Specification entry each, the profile's current one
# first. Run by switch-to-configuration `switch` and `boot` (after the caller set the profile),
# and after `cairn generations delete`. Generated; do not edit.
#
# Crash safety: every file is written under a temporary name, fsynced and renamed, kernels and
# initrds before the entries that name them; entries of dropped generations go first, their
# files after, so at any instant every entry on the ESP boots. Exit 3: nothing was written
# (no ESP mounted, or too little room on it).
#
# Boot counting: the current generation's entry, when new, is named `…+TRIES.conf`; systemd-boot
# counts it down at each boot and systemd-bless-boot renames it to `….conf` once
# boot-complete.target is reached. Existing entries keep their names (and so their counts).
# Entries sort by `sort-key`, then by `version`, newest first; those newer than the current
# generation (after a rollback) get a later sort key, so the first entry that is not out of
# tries is the current generation, or the one before it when it has failed: loader.conf names
# no default.
#
# GRUB (BIOS): `grub/grub.cfg` on the same partition, one menu entry per generation (newest
# first, the current one the default), written to a temporary name and renamed like the rest.
# No boot counting there. `install-bootloader --once N` makes GRUB boot generation N once.
set -uo pipefail
export PATH=@sw@/usr/bin:@sw@/usr/sbin
self=@out@
esp="${CAIRN_ESP:-@esp@}"
profile="${CAIRN_PROFILE:-/cairn/var/profiles/system}"
tries=@tries@ # 0: no boot counting
limit=@limit@ # 0: every generation gets an entry
sdboot=@sdboot@ # 1: systemd-boot's entries and loader
grub=@grub@ # 1: GRUB's grub.cfg

fail() { echo "install-bootloader: $*" >&2; exit 3; }

# Whether the ESP is mounted at $1. cairn's default ESP mount is an automount: looking up a
# name inside it (`$1/.`) mounts it. Until then, and when that mount fails, the mount point is
# autofs's own, which mountpoint(1) counts as mounted.
esp_mounted() {
    local type
    type="$(stat -f -c %T "$1/." 2>/dev/null)" && [ "$type" != autofs ] && mountpoint -q "$1"
}

if [ "${1:-}" = --once ]; then
    # GRUB's environment block, read (and cleared) by grub.cfg at the next boot.
    n="${2:-}"
    [ "$grub" = 1 ] || fail "--once is for GRUB; with systemd-boot use bootctl set-oneshot"
    [ -n "$esp" ] && esp_mounted "$esp" || fail "$esp is not mounted (boot.loader.efi.efiSysMountPoint)"
    case "$n" in ''|*[!0-9]*) fail "--once takes a generation number" ;; esac
    grep -q -- "--id cairn-generation-$n " "$esp/grub/grub.cfg" 2>/dev/null || fail "generation $n has no menu entry in $esp/grub/grub.cfg"
    block="# GRUB Environment Block"$'\n'"next_entry=cairn-generation-$n"$'\n'
    pad=$((1024 - ${#block}))
    { printf '%s' "$block"; head -c "$pad" /dev/zero | tr '\0' '#'; } > "$esp/grub/grubenv.tmp" && sync "$esp/grub/grubenv.tmp" && mv -f "$esp/grub/grubenv.tmp" "$esp/grub/grubenv" || fail "cannot write $esp/grub/grubenv"
    sync -f "$esp/grub/grubenv"
    echo "generation $n boots once at the next boot"
    exit 0
fi

if [ -z "$esp" ]; then exit 0; fi # no ESP in this system (a directly booted VM)
esp_mounted "$esp" || fail "$esp is not mounted (boot.loader.efi.efiSysMountPoint): boot entries not written"
[ -L "$profile" ] || fail "$profile is not a profile"

# The generations, oldest first, and the current one.
current="$(readlink "$profile")"; current="${current%-link}"; current="${current##*-}"
mapfile -t all < <(for l in "$profile"-*-link; do [ -L "$l" ] || continue; n="${l%-link}"; echo "${n##*-}"; done | sort -n)
[ "${#all[@]}" -gt 0 ] && [ -L "$profile-$current-link" ] || fail "$profile lists no generations, or not its current one ($current)"
keep=()
if [ "$limit" -gt 0 ] && [ "${#all[@]}" -gt "$limit" ]; then
    for n in "${all[@]: -$limit}"; do keep+=("$n"); done
    case " ${keep[*]} " in *" $current "*) ;; *) keep=("$current" "${keep[@]}") ;; esac
else
    keep=("${all[@]}")
fi
declare -A kept=() top=()
for n in "${keep[@]}"; do kept[$n]=1; top[$n]="$(readlink -f "$profile-$n-link")"; done

entries="$esp/loader/entries"
mkdir -p "$esp/EFI/cairn" || fail "cannot make folders on $esp"
if [ "$sdboot" = 1 ]; then mkdir -p "$entries" "$esp/EFI/BOOT" || fail "cannot make folders on $esp"; fi
if [ "$grub" = 1 ]; then mkdir -p "$esp/grub" || fail "cannot make folders on $esp"; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# put SOURCE DEST: DEST gets SOURCE's bytes, atomically, unless it has them already.
put() {
    if [ -e "$2" ] && cmp -s "$1" "$2"; then return 0; fi
    cp "$1" "$2.tmp" && sync "$2.tmp" && mv -f "$2.tmp" "$2"
}

# The entry file of generation N now on the ESP (with or without a boot counter), if any.
entry_of() {
    local f
    for f in "$entries/cairn-generation-$1.conf" "$entries/cairn-generation-$1+"*.conf; do
        [ -e "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# 1. Entries of generations that lost theirs (deleted, or beyond the limit).
for f in "$entries"/cairn-generation-*.conf; do
    [ -e "$f" ] || continue
    n="${f##*/cairn-generation-}"; n="${n%.conf}"; n="${n%%+*}"
    [ -n "${kept[$n]:-}" ] || rm -f "$f"
done
rm -f "$entries"/*.tmp "$esp"/EFI/cairn/*.tmp "$esp"/grub/*.tmp

# 2. Kernels and initrds no kept generation names; then room for the new ones.
declare -A wanted=()
need=0
for n in "${keep[@]}"; do
    g="${top[$n]}"
    [ -d "$g/boot/efi" ] || fail "generation $n ($g) has no boot files (boot/efi): it cannot get a boot entry"
    for f in "$g"/boot/efi/*; do
        name="${f##*/}"
        [ -n "${wanted[$name]:-}" ] && continue
        wanted[$name]="$f"
        [ -e "$esp/EFI/cairn/$name" ] || need=$((need + $(stat -L -c %s "$f")))
    done
done
for f in "$esp"/EFI/cairn/*; do
    [ -e "$f" ] || continue
    [ -n "${wanted[${f##*/}]:-}" ] || rm -f "$f"
done
[ "$sdboot" = 1 ] && ! cmp -s "$self/boot/systemd-boot.efi" "$esp/EFI/BOOT/BOOTX64.EFI" && need=$((need + $(stat -L -c %s "$self/boot/systemd-boot.efi")))
free="$(df -B1 --output=avail "$esp" | tail -n 1 | tr -d ' ')"
# Entries, loader.conf and the FAT's own rounding: 1 MiB is plenty.
if [ "$need" -gt 0 ] && [ $((need + 1048576)) -gt "$free" ]; then
    fail "the ESP ($esp) has $((free / 1048576)) MiB free, the new boot files need $(((need + 1048575) / 1048576)) MiB: delete old generations (cairn generations delete --older-than 30d) or set boot.loader.systemd-boot.configurationLimit"
fi

# 3. New kernels and initrds, then the loader itself.
for name in "${!wanted[@]}"; do
    [ -e "$esp/EFI/cairn/$name" ] || put "${wanted[$name]}" "$esp/EFI/cairn/$name" || fail "cannot write $esp/EFI/cairn/$name"
done
if [ "$sdboot" = 1 ]; then put "$self/boot/systemd-boot.efi" "$esp/EFI/BOOT/BOOTX64.EFI" || fail "cannot write $esp/EFI/BOOT/BOOTX64.EFI"; fi

# 4. The entries. Options the image added for its machine (a serial console) stay added.
extra="$(cat "$esp/loader/cairn-extra-options" 2>/dev/null || true)"
if [ "$grub" = 1 ]; then
    # grub.cfg: the head names the current generation the default; entries newest first.
    sed -e "s/@default@/cairn-generation-$current/g" "$self/boot/grub-head.cfg" > "$tmp/grub.cfg" || fail "cannot read $self/boot/grub-head.cfg"
    for n in $(printf '%s\n' "${keep[@]}" | sort -rn); do
        g="${top[$n]}"
        [ -f "$g/boot/grub-entry.cfg" ] || fail "generation $n ($g) has no GRUB menu entry (boot/grub-entry.cfg): it was built without boot.loader.grub.enable"
        sed -e "s/@generation@/$n/g" "$g/boot/grub-entry.cfg" > "$tmp/gentry"
        # Only a plain console=… word is added (it is quoted as GRUB reads it).
        case "$extra" in
            console=*[!A-Za-z0-9=,]* | '') ;;
            console=*)
                grep -q -e "^  linux .* '${extra%%,*}'" -e "^  linux .* '${extra%%,*}," "$tmp/gentry" || sed -i "s|^  linux .*|& '$extra'|" "$tmp/gentry"
                ;;
        esac
        printf '\n' >> "$tmp/grub.cfg"
        cat "$tmp/gentry" >> "$tmp/grub.cfg"
    done
    printf '\n' >> "$tmp/grub.cfg"
    cat "$self/boot/grub-extra.cfg" >> "$tmp/grub.cfg"
    put "$tmp/grub.cfg" "$esp/grub/grub.cfg" || fail "cannot write $esp/grub/grub.cfg"
    if [ ! -s "$esp/grub/grubenv" ]; then
        { printf '# GRUB Environment Block\n'; head -c 999 /dev/zero | tr '\0' '#'; } > "$tmp/grubenv" && put "$tmp/grubenv" "$esp/grub/grubenv"
    fi
    sync -f "$esp/grub/grub.cfg"
fi
[ "$sdboot" = 1 ] || { echo "boot entries: generations ${keep[*]} on $esp, generation $current the default"; exit 0; }
for n in "${keep[@]}"; do
    g="${top[$n]}"
    key=cairn
    [ "$n" -gt "$current" ] && key=cairn-newer
    sed -e "s/@generation@/$n/" -e "s/^sort-key .*/sort-key $key/" "$g/boot/entry.conf" > "$tmp/entry"
    if [ -n "$extra" ]; then
        opts="$(sed -n 's/^options //p' "$tmp/entry")"
        case " $opts " in
            *" ${extra%%,*} "* | *" ${extra%%,*},"*) ;;
            *) sed -i "s|^options .*|& $extra|" "$tmp/entry" ;;
        esac
    fi
    if dest="$(entry_of "$n")"; then
        put "$tmp/entry" "$dest" || fail "cannot write $dest"
    elif [ "$n" = "$current" ] && [ "$tries" -gt 0 ]; then
        put "$tmp/entry" "$entries/cairn-generation-$n+$tries.conf" || fail "cannot write the entry of generation $n"
    else
        put "$tmp/entry" "$entries/cairn-generation-$n.conf" || fail "cannot write the entry of generation $n"
    fi
done

# 5. loader.conf (the menu settings of the generation being installed), then everything to disk.
put "$self/boot/loader.conf" "$esp/loader/loader.conf" || fail "cannot write $esp/loader/loader.conf"
printf 'type1\n' > "$tmp/srel" && put "$tmp/srel" "$esp/loader/entries.srel"
sync -f "$esp/loader/loader.conf"
echo "boot entries: generations ${keep[*]} on $esp, generation $current first"
