# One deploy's activation and watchdog, written by switch.sh as $rundir/<token>.sh after the
# deploy's variables (see there).
#   activate   runs the generation's switch-to-configuration (in the unit cairn-switch-<token>);
#              exit 3 (boot entries not written, nothing activated) puts the profile back; the
#              exit code goes to <token>.done, followed by why when it did not end by itself
#              (`1 stopped`: a signal to stop; `1 killed`: see below).
#   watchdog   (the unit cairn-rollback-<token>) waits for <token>.done, then up to $timeout
#              seconds for the confirmation: the link <token>.verdict -> confirmed, which
#              confirm.sh makes. Whoever creates the link first decides (ln -s is exclusive):
#              at the deadline the watchdog makes it -> rollback, and rolls back.
#              A deploy that dies without a word (SIGKILL, the OOM killer) writes no result: once
#              neither its session nor its switch's unit runs, a switch that had begun
#              (<token>.started) counts as failed, and one that had not is undone.
done_file="$R$rundir/$token.done"
started_file="$R$rundir/$token.started"
verdict="$R$rundir/$token.verdict"
self="$R$rundir/$token.sh"

finish() { printf '%s\n' "$1" >"$done_file.tmp" && mv -T "$done_file.tmp" "$done_file"; }
# Whether the deploy may still write its result: its session runs, or its switch's unit (whose
# cgroup systemd removes when it stops). Bash tests only: this runs five times a second.
deploy_alive() {
    [ -d "/proc/${session_pid:-0}" ] && return 0
    [ "$units" = systemd ] && [ -d "/sys/fs/cgroup/system.slice/cairn-switch-$token.service" ]
}
now_ms() { date +%s%3N; }

case "${1:-}" in
activate)
    trap 'finish "1 stopped"; exit 1' HUP INT TERM
    : >"$started_file"
    "$(stc_of "$toplevel")" "$action"
    rc=$?
    if [ "$rc" = 3 ] && [ "$profile_changed" = 1 ]; then
        restore_profile "$prev_link" "$new_link"
        echo "nothing was activated (switch-to-configuration exited 3): $profile is back at ${prev_link:-nothing}" >&2
    fi
    finish "$rc"
    [ "$watch" = 1 ] || rm -f "$self" "$done_file" "$started_file"
    exit "$rc"
    ;;
watchdog)
    # Its script gone (the next deploy removes those of deploys that no longer run, e.g. a switch
    # killed before it could say how it ended): nobody will write the result; waiting would be forever.
    while [ ! -f "$done_file" ]; do
        [ -e "$self" ] || exit 0
        if ! deploy_alive && [ ! -f "$done_file" ]; then
            if [ -e "$started_file" ]; then
                echo "the switch ended without a result (killed): it counts as failed" >&2
                finish "1 killed"
                break
            fi
            echo "the deploy ended before its switch began (killed): undoing it" >&2
            [ "$profile_changed" = 1 ] && restore_profile "$prev_link" "$new_link"
            rm -f "$self"
            exit 0
        fi
        sleep 0.2
    done
    rm -f "$started_file"
    case "$(cat "$done_file")" in 3 | none)
        rm -f "$self"
        exit 0
        ;;
    esac
    deadline=$(($(now_ms) + timeout * 1000))
    while [ ! -L "$verdict" ] && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.2; done
    if ! ln -s rollback "$verdict" 2>/dev/null; then
        rm -f "$self" "$done_file" "$verdict"
        exit 0
    fi
    rm -f "$self"
    echo "no confirmation within ${timeout}s: rolling back" >&2
    if [ "$action" = switch ] && [ -n "$prev_link" ]; then
        [ "$profile_changed" = 1 ] && restore_profile "$prev_link" "$new_link"
        exec "$(stc_of "$(readlink "$profile_dir/$prev_link")")" switch
    fi
    [ -n "$prev_current" ] && exec "$(stc_of "$prev_current")" test
    exit 0
    ;;
*) fail "usage: $0 activate|watchdog" ;;
esac
