# Receives store paths as one tar stream on stdin (built by cairn's copyClosure):
#   <base>/…            the trees of the paths, owned by root
#   info/<base>.json    their metadata
#   setuid              NUL-separated pairs: octal mode, <base>/<file>
#   order               the bases, references first; the last member, so its presence means the
#                       stream arrived whole
# The stream is extracted into a temporary folder in the store; then each path's files get their
# setuid modes, everything is flushed, and each path becomes valid as the store's rule says:
# metadata written (temporary name + rename) first, tree renamed into place last. A path appears
# whole or not at all; what an interrupted receive leaves is removed by the next one.
[ -d "$store" ] || fail "there is no $store: not a cairn system"
[ -w "$store" ] || fail "$store is not writable (mounted read-only?)"
mkdir -p "$info" || fail "cannot create $info"
me="$(process_token)"
# Leftovers of receives (and, as the store names them, temporary metadata) of dead processes.
for d in "$store"/.receive-* "$info"/.tmp-*; do
    lexists "$d" || continue
    t="${d##*/}"
    t="${t#.*-}"
    alive "${t%%-*}" || remove_tree "$d"
done

tmp="$store/.receive-$me-$RANDOM"
mkdir "$tmp" || fail "cannot create $tmp"
trap 'remove_tree "$tmp"; rm -f "$info/.tmp-$me-"*' EXIT
trap 'exit 1' HUP INT TERM PIPE

tar -C "$tmp" -xf - --numeric-owner || fail "the stream of store paths broke off"
[ -f "$tmp/order" ] || fail "the stream of store paths ended early"
mapfile -t bases <"$tmp/order"
for base in "${bases[@]}"; do
    lexists "$tmp/$base" && [ -f "$tmp/info/$base.json" ] || fail "the stream lacks $base"
done

# Setuid/setgid modes the building machine's store cannot hold (chmod keeps the file type).
while IFS= read -r -d '' mode && IFS= read -r -d '' file; do
    case "/$file/" in //* | */../*) fail "bad setuid entry $file" ;; esac
    [ -f "$tmp/$file" ] && [ ! -L "$tmp/$file" ] || [ -d "$tmp/$file" ] || fail "setuid entry $file is not in the stream"
    chmod "$mode" "$tmp/$file" || fail "cannot give $file mode $mode"
done <"$tmp/setuid"

for base in "${bases[@]}"; do
    cp "$tmp/info/$base.json" "$info/.tmp-$me-$base.json" || fail "cannot write the metadata of $base"
done
sync -f "$tmp" && sync -f "$info" || fail "cannot flush the received paths to disk"

for base in "${bases[@]}"; do
    valid "$base" && continue # received meanwhile by another deploy
    # An entry without metadata is what a crash leaves: garbage, out of the way first.
    if lexists "$store/$base"; then mv -T "$store/$base" "$tmp/stale-$base" || fail "cannot remove the invalid $store/$base"; fi
    mv -T "$info/.tmp-$me-$base.json" "$info/$base.json" || fail "cannot write the metadata of $base"
    mv -T "$tmp/$base" "$store/$base" || valid "$base" || fail "cannot move $base into the store"
done
sync -f "$store" && sync -f "$info" || fail "cannot flush the store to disk"
exit 0
