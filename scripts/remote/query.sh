# Is this a cairn system cairn can deploy to? Then: which of the store base names on stdin (one a
# line) are valid here, printed one a line.
[ -d "$store" ] || fail "there is no $store: not a cairn system"
[ "$(id -u)" = 0 ] || fail "logged in as $(id -un), but deploying needs root: log in as root, or add --use-remote-sudo (sudo without a password)"
for tool in tar sync mv flock; do command -v "$tool" >/dev/null || fail "$tool is missing"; done
while IFS= read -r base; do
    if [ -n "$base" ] && valid "$base"; then printf '%s\n' "$base"; fi
done
exit 0
