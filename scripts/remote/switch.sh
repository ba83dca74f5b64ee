# Moves the target to a generation, as `cairn switch|boot|activate|dry-activate|rollback` do
# locally. Set by the caller: action (switch|boot|test|dry-activate), toplevel (a valid store path
# here) or pick (rollback: `previous` or a generation number), token (names this deploy's
# units and files), timeout (seconds the magic rollback waits for a confirmation after the
# switch; 0: none), deploy (the text of the script that activates and watches, see deploy.sh).
# In order:
#   1. the new state is computed and checked; nothing has changed yet;
#   2. with magic rollback, a watchdog unit is started (armed before anything changes);
#   3. switch, boot: the profile gets generation N+1 (or, rollback, its chosen generation), by a
#      new link and one rename;
#   4. the generation's switch-to-configuration runs in a transient unit (deploy.sh activate).
mkdir -p "$R$rundir" || fail "cannot create $R$rundir"
[ "$action" = dry-activate ] || lock_deploys
prev_link="$(readlink "$profile_dir/$profile_name" 2>/dev/null || true)"
prev_current="$(readlink "$R/run/current-system" 2>/dev/null || true)"
new_link=""
target_link=""

if [ -n "$pick" ]; then
    mapfile -t gens < <(generations)
    cur="${prev_link#"$profile_name"-}"
    cur="${cur%-link}"
    n=""
    if [ "$pick" = previous ]; then
        for g in "${gens[@]}"; do
            if [ "$g" -lt "${cur:-0}" ]; then n="$g"; fi
        done
        [ -n "$n" ] || fail "there is no generation before the current one${cur:+ ($cur)} in $profile"
    else
        for g in "${gens[@]}"; do
            if [ "$g" = "$pick" ]; then n="$g"; fi
        done
        [ -n "$n" ] || fail "$profile has no generation $pick"
    fi
    target_link="$profile_name-$n-link"
    toplevel="$(readlink "$profile_dir/$target_link")"
elif [ "$action" = switch ] || [ "$action" = boot ]; then
    mapfile -t gens < <(generations)
    n=0
    [ "${#gens[@]}" -gt 0 ] && n="${gens[-1]}"
    # The newest generation is this toplevel already: it becomes current again, no new link.
    if [ "$n" -gt 0 ] && [ "$(readlink "$profile_dir/$profile_name-$n-link")" = "$toplevel" ]; then
        target_link="$profile_name-$n-link"
    else
        n=$((n + 1))
        new_link="$profile_name-$n-link"
        target_link="$new_link"
    fi
fi

case "$toplevel" in /cairn/store/*) ;; *) fail "$toplevel is not a store path" ;; esac
base="${toplevel#/cairn/store/}"
base="${base%%/*}"
valid "$base" || fail "$toplevel is not a valid store path here"
stc="$(stc_of "$toplevel")"
[ -x "$stc" ] || fail "$toplevel has no bin/switch-to-configuration"
[ "$action" = dry-activate ] && exec "$stc" dry-activate

profile_changed=0
[ -n "$target_link" ] && [ "$target_link" != "$prev_link" ] && profile_changed=1
watch=0
[ "$timeout" -gt 0 ] && { [ "$action" = switch ] || [ "$action" = test ]; } && watch=1
self="$R$rundir/$token.sh"
# This session: while it lives (or the switch's unit runs), the watchdog waits for the result.
session_pid=$$
{
    echo 'set -uo pipefail'
    declare -p R units rundir profile action toplevel token timeout prev_link new_link prev_current profile_changed watch session_pid
    printf '%s\n' "$deploy"
} >"$self.tmp" && mv -T "$self.tmp" "$self" || fail "cannot write $self"

# Until the switch begins, a failure or a dropped session leaves the target as it was.
started=0
undo() {
    [ "$profile_changed" = 1 ] && restore_profile "$prev_link" "$new_link"
    if [ "$watch" = 1 ]; then printf 'none\n' >"$R$rundir/$token.done"; else rm -f "$self"; fi
    exit 1
}
trap '[ "$started" = 1 ] || undo' HUP INT TERM

if [ "$watch" = 1 ]; then
    start_unit "cairn-rollback-$token" "$BASH" "$self" watchdog || { rm -f "$self"; fail "cannot start the rollback watchdog (systemd-run)"; }
fi
if [ "$profile_changed" = 1 ]; then
    { [ -z "$new_link" ] || set_link "$profile_dir" "$new_link" "$toplevel"; } && set_link "$profile_dir" "$profile_name" "$target_link" || {
        echo "cannot update $profile" >&2
        undo
    }
fi
if [ -n "$pick" ]; then
    echo "rolling back to generation $n" >&2
elif [ -n "$target_link" ]; then
    echo "generation $n of $profile" >&2
fi
started=1
run_unit "cairn-switch-$token" "$BASH" "$self" activate
