#!/usr/bin/bash
# switch-to-configuration of a cairn generation: moves the running system to this generation.
#   switch        write the boot entries (the caller set the profile), then activate now
#   test          activate now only
#   boot          write the boot entries only
#   dry-activate  print what `switch` would do to each unit, and why; change nothing
# Exit 3: nothing was activated: the boot entries could not be written (no ESP, or a full one),
# another switch was running, or `boot`/`dry-activate` was asked of another Debian release.
# It starts under the running system's bash: a generation of a newer Debian release has programs
# that need a newer C library than the running /usr holds (e.g. 12 → 13: GLIBC_2.38 not found). Then
# /usr moves to the new generation first (one rename, under the lock) and the script goes on under
# its own bash; a failure to write the boot entries moves /usr back.
# The plan follows NixOS's rules: the old and new generation's units are compared (unit file,
# template, drop-ins); removed units stop, changed services restart (stopped before activation
# and started after, unless X-StopIfChanged=false: then restarted after), reload with
# X-ReloadIfChanged=true, stay with X-RestartIfChanged=false; targets, slices and path units are
# never restarted, sockets and the root and store mounts are left alone; new units wanted by an
# active target start. Generated; do not edit.
set -uo pipefail
out=@out@
action="${1:-}"
case "$action" in
    switch|test|boot|dry-activate) ;;
    *) echo "usage: $0 switch|test|boot|dry-activate" >&2; exit 2 ;;
esac
if [ ! -d /cairn/store ] || [ ! -d /run/systemd/system ]; then
    echo "switch-to-configuration: this is not a running cairn system (no /cairn/store or systemd)" >&2
    exit 1
fi
# Whether this generation's programs run on the running /usr (its own bash is the test).
if @bash@ -c : 2>/dev/null; then
    export PATH=@sw@/usr/bin:@sw@/usr/sbin
    cross=
else
    export PATH=/usr/bin:/usr/sbin
    cross=1
    if [ "$action" = boot ] || [ "$action" = dry-activate ]; then
        echo "switch-to-configuration: $out is of another Debian release than the running system; its programs cannot run before /usr is moved, which only switch and test do; nothing was activated" >&2
        exit 3
    fi
fi
# One switch at a time, whoever started it (cairn switch here, a deploy, a magic rollback): the
# lock goes with this process. Exit 3 like every refusal before anything changed. The script run
# again after /usr moved holds it already (fd 8).
if [ "$action" != dry-activate ] && [ -z "${CAIRN_USR_BEFORE:-}" ]; then
    mkdir -p /run/cairn && exec 8>>/run/cairn/switch.lock && flock -n 8 || {
        echo "switch-to-configuration: another switch is running on this machine; nothing was activated" >&2
        exit 3
    }
fi
# /usr to DIR in one rename (a link beside it renamed over it).
move_usr() { ln -sfn "$1" /usr.cairn-new && mv -T /usr.cairn-new /usr; }
if [ -n "$cross" ]; then
    before="$(readlink /usr)"
    move_usr @sw@/usr || { echo "switch-to-configuration: cannot point /usr at $out's programs; nothing was activated" >&2; exit 3; }
    echo "switch: /usr moved to $out's programs first (another Debian release)" >&2
    CAIRN_USR_BEFORE="$before" exec @bash@ "$0" "$@"
fi
if [ "$action" = switch ] || [ "$action" = boot ]; then
    if [ -x "$out/bin/install-bootloader" ]; then
        "$out/bin/install-bootloader" || {
            [ -n "${CAIRN_USR_BEFORE:-}" ] && move_usr "$CAIRN_USR_BEFORE"
            echo "switch-to-configuration: the boot entries could not be written; nothing was activated" >&2
            exit 3
        }
    fi
fi
[ "$action" = boot ] && exit 0

old="$(readlink -f /run/current-system 2>/dev/null || true)"

# The text that defines a unit in a generation, in REPLY: its unit file (from /etc or the
# packages), the template of an instance, and its drop-ins, in order. Empty: the generation has no
# such unit, or masks it. Builtins only (read, not cat; no command substitution): this runs twice
# for every active unit, and each process costs much on a slow machine.
# SOURCE is set to etc when the unit file is the generation's own (not a package's), to masked
# when the generation masks the unit.
unit_text() { # GENERATION UNIT
    local g="$1" u="$2" t="" d f x
    REPLY="" SOURCE=""
    case "$u" in *@*.*) t="${u%%@*}@.${u##*.}" ;; esac
    # Masked (a disabled unit links to /dev/null): the generation has no such unit, so it is stopped.
    [ "$g/etc/systemd/system/$u" -ef /dev/null ] && { SOURCE=masked; return 0; }
    for d in "$g/etc/systemd/system" "$g/sw/usr/lib/systemd/system"; do
        if [ -e "$d/$u" ]; then IFS= read -r -d '' x < "$d/$u"; REPLY+="## $u"$'\n'"$x"; break; fi
        if [ -n "$t" ] && [ -e "$d/$t" ]; then IFS= read -r -d '' x < "$d/$t"; REPLY+="## $t"$'\n'"$x"; break; fi
    done
    [ -n "$REPLY" ] && [ "$d" = "$g/etc/systemd/system" ] && SOURCE=etc
    for f in "$g/etc/systemd/system/$u.d"/*.conf; do
        [ -e "$f" ] && { IFS= read -r -d '' x < "$f"; REPLY+="## ${f##*/}"$'\n'"$x"; }
    done
}

# program_changed UNIT-TEXT: whether a program the unit runs from /usr (ExecStart=/usr/sbin/sshd)
# differs between the old and new generation, though the unit's text is the same: a new package
# under the same path restarts the service as a new store path does in NixOS (sshd of another
# version cannot even serve a connection: each one re-executes /usr/sbin/sshd). In REPLY: the path.
program_changed() {
    local line p
    while IFS= read -r line; do
        case "$line" in ExecStart=*|ExecStartPre=*|ExecStartPost=*|ExecReload=*) ;; *) continue ;; esac
        p="${line#*=}"
        while [ -n "$p" ] && [ -z "${p##[-@:+!]*}" ]; do p="${p:1}"; done
        p="${p%% *}"
        case "$p" in /usr/*) ;; /bin/*|/sbin/*|/lib/*|/lib64/*) p="/usr$p" ;; *) continue ;; esac
        [ -e "$out/sw$p" ] || continue
        [ "$old/sw$p" -ef "$out/sw$p" ] && continue
        cmp -s "$old/sw$p" "$out/sw$p" && continue
        REPLY="$p"
        return 0
    done <<< "$1"
    return 1
}

# key UNIT-TEXT KEY: the last value of an X- key in a unit's text.
key() { printf '%s\n' "$1" | sed -n "s/^$2=//p" | tail -n 1; }

declare -a stop=() start=() restart=() reload=() plan=()
note() { plan+=("$1"); }

# Units running now: the only ones a switch stops, restarts or reloads.
mapfile -t active < <(systemctl list-units --all --plain --no-legend --state=active,activating,reloading 2>/dev/null | awk '{ print $1 }')
declare -A isActive=()
for u in "${active[@]}"; do isActive["$u"]=1; done

for u in "${active[@]}"; do
    case "$u" in *.service|*.socket|*.timer|*.mount|*.target|*.path|*.slice) ;; *) continue ;; esac
    unit_text "$out" "$u"; new_text="$REPLY" new_source="$SOURCE"
    old_text=""
    [ -n "$old" ] && { unit_text "$old" "$u"; old_text="$REPLY"; }
    if [ -z "$new_text" ]; then
        # Only units a generation defined are ours to stop; systemd's own (e.g. sessions) stay.
        [ -n "$old_text" ] || continue
        if [ "$(key "$old_text" X-StopOnRemoval)" = false ]; then note "keep $u: removed, but X-StopOnRemoval=false"; continue; fi
        case "$(key "$old_text" RefuseManualStop)" in yes|true|on|1) note "keep $u: removed, but RefuseManualStop"; continue ;; esac
        stop+=("$u"); note "stop $u: ${new_source:-removed}"
        continue
    fi
    why=changed
    if [ "$new_text" = "$old_text" ]; then
        [ "$new_source" = etc ] && [ "${u##*.}" = service ] && program_changed "$new_text" || continue
        why="its program $REPLY changed"
    fi
    [ -n "$old_text" ] || continue # running but undeclared before (started by hand): left alone
    # systemd refuses to stop these (e.g. Debian 13's systemd-tmpfiles-setup); NixOS leaves them too.
    case "$(key "$new_text" RefuseManualStop)" in yes|true|on|1) note "keep $u: $why, but RefuseManualStop"; continue ;; esac
    case "$u" in
        *.target|*.slice|*.path) note "keep $u: changed, but ${u##*.} units are never restarted"; continue ;;
        *.socket) note "keep $u: changed, but sockets are left alone (their services restart)"; continue ;;
        -.mount|cairn-store.mount) reload+=("$u"); note "reload $u: changed (the root and the store are remounted, never unmounted)"; continue ;;
        *.mount|*.timer) restart+=("$u"); note "restart $u: changed"; continue ;;
    esac
    # Only the reload triggers differ: a reload is enough.
    if [ "$why" = changed ] && [ "$(printf '%s\n' "$new_text" | grep -v '^X-Reload-Triggers=')" = "$(printf '%s\n' "$old_text" | grep -v '^X-Reload-Triggers=')" ]; then
        reload+=("$u"); note "reload $u: reloadTriggers changed"; continue
    fi
    if [ "$(key "$new_text" X-ReloadIfChanged)" = true ]; then reload+=("$u"); note "reload $u: $why, reloadIfChanged"; continue; fi
    if [ "$(key "$new_text" X-RestartIfChanged)" = false ]; then note "keep $u: $why, but restartIfChanged = false"; continue; fi
    if [ "$(key "$new_text" X-StopIfChanged)" = false ]; then restart+=("$u"); note "restart $u: $why"; continue; fi
    stop+=("$u"); start+=("$u"); note "stop $u before activation, start it after: $why"
done

# New units that an active target wants: started.
for wants in "$out"/etc/systemd/system/*.target.wants; do
    [ -d "$wants" ] || continue
    target="$(basename "$wants" .wants)"
    [ -n "${isActive[$target]:-}" ] || continue
    for f in "$wants"/*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        u="${f##*/}"
        [ -n "${isActive[$u]:-}" ] && continue
        if [ -n "$old" ]; then unit_text "$old" "$u"; [ -n "$REPLY" ] && continue; fi
        start+=("$u"); note "start $u: new, wanted by $target"
    done
done

# A new systemd (its manager or its libraries differ) replaces the running one, its state
# kept, as NixOS does; otherwise the manager reloads its units.
reexec=
if [ -n "$old" ]; then
    # Its libraries are in /usr/lib/systemd on Debian 12, /usr/lib/x86_64-linux-gnu/systemd on 13.
    for a in "$old"/sw/usr/lib/systemd/systemd "$old"/sw/usr/lib/{,x86_64-linux-gnu/}systemd/libsystemd-{shared,core}-*.so; do
        [ -e "$a" ] || continue
        cmp -s "$a" "$out/sw${a#"$old/sw"}" || { reexec=1; note "reexec systemd: its package changed"; break; }
    done
fi

if [ "$action" = dry-activate ]; then
    echo "would activate $out"
    for line in "${plan[@]}"; do echo "would $line"; done
    exit 0
fi

rc=0
for line in "${plan[@]}"; do echo "switch: $line"; done
[ "${#stop[@]}" -gt 0 ] && { systemctl stop -- "${stop[@]}" || rc=1; }
"$out/activate" || rc=1
if [ -n "$reexec" ]; then systemctl daemon-reexec || rc=1; else systemctl daemon-reload || rc=1; fi
systemctl reset-failed 2>/dev/null || true
[ "${#reload[@]}" -gt 0 ] && { systemctl reload-or-restart -- "${reload[@]}" || rc=1; }
[ "${#restart[@]}" -gt 0 ] && { systemctl restart -- "${restart[@]}" || rc=1; }
[ "${#start[@]}" -gt 0 ] && { systemctl start -- "${start[@]}" || rc=1; }
failed="$(systemctl list-units --failed --plain --no-legend 2>/dev/null | awk '{ print $1 }' | tr '\n' ' ')"
if [ -n "${failed// /}" ]; then echo "switch: failed units: $failed" >&2; rc=4; fi
exit "$rc"
