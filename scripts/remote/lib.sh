# Helpers of cairn's remote deploys, run on the target by bash with only the system's tools
# (coreutils, tar, systemd). The caller defines first:
#   R        the target's root: '' on a real target, a folder in tests
#   units    systemd: transient units of systemd-run; plain: detached processes (tests)
#   rundir   where a deploy's state lives (/run/cairn)
#   profile  the system profile (/cairn/var/profiles/system)
store="$R/cairn/store"
info="$R/cairn/var/db/info"
profile_dir="$R${profile%/*}"
profile_name="${profile##*/}"

fail() { echo "$*" >&2; exit 1; }
lexists() { [ -e "$1" ] || [ -L "$1" ]; }

# valid BASE: the store's validity rule, metadata and entry both present.
valid() { [ -f "$info/$1.json" ] && lexists "$store/$1"; }

# Process identity as the store writes it (<pid>_<start time>), so a recycled pid is not taken
# for the process that left a temporary folder behind.
start_time() {
    local s
    s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    s="${s##*) }"
    set -- $s
    printf '%s' "${20}"
}
process_token() { printf '%s_%s' "$$" "$(start_time "$$" || echo 0)"; }
alive() {
    local now
    now="$(start_time "${1%_*}")" || return 1
    [ "${1#*_}" = 0 ] || [ "$now" = "${1#*_}" ]
}

# remove_tree PATH: deletes a tree whose folders may be read-only (store objects' are).
remove_tree() {
    lexists "$1" || return 0
    find "$1" -type d ! -perm -u+w -exec chmod u+w {} + 2>/dev/null
    rm -rf "$1"
}

# set_link DIR NAME TARGET: DIR/NAME points at TARGET after one rename; DIR is flushed.
set_link() {
    local tmp="$1/.$2.tmp-$$-$RANDOM"
    ln -s "$3" "$tmp" && mv -T "$tmp" "$1/$2" && sync "$1"
}

# Generation numbers of the profile, ascending.
generations() {
    local f n
    for f in "$profile_dir/$profile_name"-*-link; do
        lexists "$f" || continue
        n="${f##*/"$profile_name"-}"
        n="${n%-link}"
        case "$n" in '' | *[!0-9]*) continue ;; esac
        echo "$n"
    done | sort -n
}

# restore_profile PREV NEW: the profile points at link PREV again (none before: no profile), and
# NEW, the link a deploy added, is gone. The profile never points at a missing link meanwhile.
restore_profile() {
    if [ -n "$1" ]; then set_link "$profile_dir" "$profile_name" "$1"; else rm -f "$profile_dir/$profile_name"; fi
    if [ -n "$2" ]; then rm -f "$profile_dir/$2"; fi
    sync "$profile_dir"
}

# run_unit NAME CMD…: runs CMD in a transient unit and waits for it, its output on ours: a dropped
# SSH session cannot stop it halfway. Its exit code is CMD's.
run_unit() {
    local name="$1"
    shift
    if [ "$units" = systemd ]; then
        systemd-run --wait --pipe --collect --quiet --unit="$name" -- "$@"
    else
        "$@"
    fi
}

# start_unit NAME CMD…: starts CMD in a transient unit that outlives this session; returns once it runs.
start_unit() {
    local name="$1"
    shift
    if [ "$units" = systemd ]; then
        systemd-run --collect --quiet --service-type=exec --unit="$name" -- "$@"
    else
        setsid "$@" </dev/null >>"$R$rundir/$name.log" 2>&1 &
    fi
}

# lock_deploys: one deploy at a time on this machine. The lock (fd 9) goes with this script and
# what it starts without systemd; a deploy whose switch or magic-rollback watchdog still runs in
# its transient units (which hold no fds of ours) counts too. Scripts of deploys that no longer run
# (killed) are removed.
lock_deploys() {
    local f t
    exec 9>>"$R$rundir/deploy.lock" || fail "cannot open $R$rundir/deploy.lock"
    flock -n 9 || fail "another deploy to this machine is in progress: try again when it has ended"
    for f in "$R$rundir"/*.sh; do
        [ -e "$f" ] || continue
        t="${f##*/}"
        t="${t%.sh}"
        if [ "$units" = systemd ] && systemctl is-active --quiet "cairn-switch-$t.service" "cairn-rollback-$t.service"; then
            fail "another deploy to this machine is in progress (its units cairn-switch-$t and cairn-rollback-$t: the switch, or the magic rollback's wait for a confirmation): try again when it has ended"
        fi
        rm -f "$f" "$R$rundir/$t.done" "$R$rundir/$t.verdict" "$R$rundir/$t.started"
    done
}

stc_of() { printf '%s/bin/switch-to-configuration' "$R$1"; }
