# Confirms deploy $token (set by the caller) over a new connection: waits (up to $wait_limit seconds)
# for its switch to end, then claims the verdict link before the watchdog can. Prints one line:
#   confirmed RC [WHY]  in time; RC is switch-to-configuration's exit code, WHY (stopped, killed)
#                  says how a switch that did not end by itself ended
#   ended RC       nothing to confirm: the switch did not activate (RC 3, or none: never began)
#   late RC        the deadline had passed: the target is rolling back
#   running        the switch has not ended after $wait_limit seconds
#   unknown        no such deploy here
d="$R$rundir"
waited=0
while [ ! -f "$d/$token.done" ]; do
    [ -f "$d/$token.sh" ] || { echo unknown; exit 0; }
    [ "$waited" -lt "$wait_limit" ] || { echo running; exit 0; }
    sleep 1
    waited=$((waited + 1))
done
rc="$(cat "$d/$token.done")"
case "$rc" in 3 | none) echo "ended $rc"; exit 0 ;; esac
if ln -s confirmed "$d/$token.verdict" 2>/dev/null || [ "$(readlink "$d/$token.verdict")" = confirmed ]; then
    echo "confirmed $rc"
else
    echo "late $rc"
fi
exit 0
