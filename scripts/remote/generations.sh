# The target's system generations; with `delete` set (generation numbers, space-separated), those
# are deleted first. Prints `N SECONDS CURRENT TOPLEVEL` a line (CURRENT: 1 or 0), oldest first.
# Deleted generations lose their boot entries and, when no other uses them, their kernels: the
# current generation's install-bootloader rewrites the ESP, as `cairn generations delete` does there.
[ -d "$store" ] || fail "there is no $store: not a cairn system"
cur="$(readlink "$profile_dir/$profile_name" 2>/dev/null || true)"
if [ -n "$delete" ]; then
    [ "$(id -u)" = 0 ] || fail "logged in as $(id -un), but deleting generations needs root: log in as root, or add --use-remote-sudo (sudo without a password)"
    lock_deploys
    for n in $delete; do
        lexists "$profile_dir/$profile_name-$n-link" || fail "$profile has no generation $n"
        [ "$profile_name-$n-link" != "$cur" ] || fail "generation $n is the current one; switch to another first"
    done
    for n in $delete; do rm -f "$profile_dir/$profile_name-$n-link"; done
    sync "$profile_dir"
    ib="$R$(readlink -f "$profile_dir/$profile_name")/bin/install-bootloader"
    if [ -x "$ib" ]; then "$ib" >&2 || fail "the boot entries could not be rewritten ($ib exited $?)"; fi
fi
for n in $(generations); do
    link="$profile_dir/$profile_name-$n-link"
    c=0
    [ "$profile_name-$n-link" = "$cur" ] && c=1
    printf '%s %s %s %s\n' "$n" "$(stat -c %Y "$link")" "$c" "$(readlink "$link")"
done
exit 0
