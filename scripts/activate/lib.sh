# Shell functions of a cairn generation's `activate` script (bash). The build prepends the
# generation's variables:
#   systemConfig  the toplevel (logical store path)    sw, etcStore, usersStore  its parts
#   R             root of the system being activated ("" normally; a folder in tests: CAIRN_ROOT)
#   S             where the store is readable from here (/cairn/store normally; CAIRN_STORE_DIR)
# Links written into the system always name logical paths (/cairn/store/..., /etc/static/...);
# files are read through `phys`. Every real file is replaced atomically (temp file + rename).

# phys PATH: where a logical store path can be read from this process.
phys() { printf '%s' "$S${1#/cairn/store}"; }
# This generation's sw, readable here. (The build's own helpers expand such paths in place:
# `$(phys …)` forks a subshell per use.)
swPhys="${sw:+$S${sw#/cairn/store}}"

# Bash's loadable builtins (Debian's bash-builtins, in every system's sw): mkdir, ln, rm and stat
# run in this shell, not as a process each. Under emulation a process costs ~50 ms, and a first
# boot's activation started ~30 of them before systemd could start. Only cairn's own helpers and
# snippets use them: they take fewer options than coreutils (no -T or -t; `mkdir -m` applies the
# umask and drops the sticky bit), so other snippets get the programs (cairn_run_snippet).
cairn_builtins=0
cairn_load_builtins() {
  local b
  # Only into the bash they were built for (the generation's own; tests run this with the host's).
  [ "$BASH" -ef "$swPhys/usr/bin/bash" ] || return 0
  for b in mkdir ln rm stat; do
    enable -f "$swPhys/usr/lib/bash/$b" "$b" 2>/dev/null || { cairn_plain_tools; return 0; }
  done
  cairn_builtins=1
}
cairn_plain_tools() {
  local b
  for b in mkdir ln rm stat; do enable -n "$b" 2>/dev/null; done
  cairn_builtins=0
}

# cairn_readlink LINK: sets cairn_link_target to LINK's target ("" when it is not a link).
cairn_readlink() {
  cairn_link_target=""
  [ -L "$1" ] || return 0
  if [ "$cairn_builtins" = 1 ]; then
    local -A st=()
    stat -L -A st "$1" 2>/dev/null && cairn_link_target="${st[link]:-}"
  else
    cairn_link_target="$(readlink "$1" 2>/dev/null)" || cairn_link_target=""
  fi
}

# cairn_place SRC DEST: renames the file SRC to DEST where DEST does not exist yet (a first boot)
# and the builtins are loaded: link(2) then unlink(2) in this shell, so DEST appears whole or not
# at all, as with rename(2). Fails (nothing done) otherwise.
cairn_place() {
  [ "$cairn_builtins" = 1 ] && [ ! -e "$2" ] && [ ! -L "$2" ] && ln "$1" "$2" 2>/dev/null && rm -f "$1"
}

# cairn_rename SRC DEST: renames the file SRC to DEST (cairn_place, else `mv`).
cairn_rename() { cairn_place "$1" "$2" || mv -Tf "$1" "$2"; }

# cairn_rename_into DIR FILE...: cairn_rename of each FILE to DIR/<its name>; those that replace
# something go through one `mv`.
cairn_rename_into() {
  local dir="$1" f
  local -a rest=()
  shift
  for f in "$@"; do cairn_place "$f" "$dir/${f##*/}" || rest+=("$f"); done
  [ "${#rest[@]}" -eq 0 ] || mv -f -t "$dir" "${rest[@]}"
}

# cairn_copy_stamp SRC DEST MODE UID GID: sets cairn_stamp to what identifies the copy DEST of
# SRC: SRC's inode (the store's files never change; another content is another file) and DEST's
# change time (to the second) and size: a write, chmod or chown since changes them. Fails when
# DEST is not a file with that mode and owner, or without the builtins (stat without a process).
cairn_copy_stamp() {
  cairn_stamp=""
  [ "$cairn_builtins" = 1 ] && [ -f "$2" ] && [ ! -L "$2" ] || return 1
  local -A src=() dst=()
  stat -A src "$1" 2>/dev/null && stat -L -A dst "$2" 2>/dev/null || return 1
  [ "${dst[uid]}" = "$4" ] && [ "${dst[gid]}" = "$5" ] && (( 8#${dst[perms]} == 8#$3 )) || return 1
  cairn_stamp="${src[device]}:${src[inode]}:${dst[ctime]}:${dst[size]}"
}

# cairn_mkdir MODE DIR: makes DIR with exactly MODE. The builtin applies the umask (022 here) and
# cannot set the sticky bit: other modes go to `install -d`.
cairn_mkdir() {
  if [ "$cairn_builtins" = 1 ] && (( (8#$1 & 8#7022) == 0 )); then mkdir -m "$1" "$2"; else install -d -m "$1" "$2"; fi
}

# cairn_link TARGET LINK: points LINK at TARGET, replacing what is there in one rename.
# (Paths are split with parameter expansion, not dirname/basename: under emulation every process
# started costs tens of milliseconds, and a boot activates hundreds of links.)
cairn_link() {
  # Where nothing is yet (a first boot), symlink(2) alone is atomic, and with the builtins no
  # process at all. (Nothing there, so never a link inside a folder of that name.)
  if [ ! -e "$2" ] && [ ! -L "$2" ] && ln -s "$1" "$2" 2>/dev/null; then return 0; fi
  # A link that is already right stays (read without a process only with the builtins).
  if [ "$cairn_builtins" = 1 ] && [ -L "$2" ]; then
    cairn_readlink "$2"
    [ "$cairn_link_target" != "$1" ] || return 0
  fi
  local tmp="${2%/*}/.cairn-tmp.$$.${2##*/}"
  # (The builtin ln has no -n: a left-over temporary link goes first.)
  if [ "$cairn_builtins" = 1 ]; then rm -f "$tmp"; ln -s "$1" "$tmp"; else ln -sfn "$1" "$tmp"; fi
  mv -Tf "$tmp" "$2"
}

# cairn_install MODE SRC DEST: copies SRC to DEST with MODE, atomically.
cairn_install() {
  local tmp="${3%/*}/.cairn-tmp.$$.${3##*/}"
  cp "$2" "$tmp"
  chmod "$1" "$tmp"
  mv -Tf "$tmp" "$3"
}

# cairn_id DB NAME: sets cairn_id_result to the numeric id of NAME in $R/etc/passwd or group
# (`+N` is N already); fails when there is none. Bash alone, in this shell: under emulation a
# process (or subshell) per owner costs tens of milliseconds.
cairn_id() {
  local name x id rest
  case "$2" in
    +*) cairn_id_result="${2#+}" ;;
    *[!0-9]*)
      while IFS=: read -r name x id rest || [ -n "$name" ]; do
        if [ "$name" = "$2" ]; then cairn_id_result="$id"; return 0; fi
      done < "$R/etc/$1"
      return 1 ;;
    *) cairn_id_result="$2" ;;
  esac
}

# cairn_mkdirs DIR...: makes those of the folders that are missing, with one process at most.
cairn_mkdirs() {
  local d
  local -a missing=()
  for d in "$@"; do [ -d "$d" ] || missing+=("$d"); done
  [ "${#missing[@]}" -eq 0 ] || mkdir -p "${missing[@]}"
}

# The root's shape: merged /usr pointing into this generation's sw, the folders every system has.
cairn_setup_layout() {
  # Made when missing (with their modes), else left as they are: no process on most boots.
  cairn_mkdirs "$R/etc" "$R/var" "$R/run" "$R/home" "$R/cairn/var/profiles" "$R/cairn/var/gcroots"
  [ -d "$R/tmp" ] || cairn_mkdir 1777 "$R/tmp"
  [ -d "$R/root" ] || cairn_mkdir 0700 "$R/root"
  # /usr is one link; on a switch it moves to the new sw in one rename.
  if [ ! -e "$R/usr" ] && [ ! -L "$R/usr" ]; then
    cairn_link "$sw/usr" "$R/usr"
  elif [ -L "$R/usr" ]; then
    # The exact target, not just the same folder: older stage 1s linked it through the toplevel
    # ($toplevel/sw/usr), which a later switch keeping this sw must not leave in place.
    cairn_readlink "$R/usr"
    [ "$cairn_link_target" = "$sw/usr" ] || cairn_link "$sw/usr" "$R/usr"
  else
    echo "warning: $R/usr is not a symlink; leaving it alone" >&2
  fi
  # bin -> usr/bin, …: those missing with one `ln` (a link is named as its target's last part).
  local d
  local -a merged=()
  for d in bin sbin lib lib64; do
    [ -e "$R/$d" ] || [ -L "$R/$d" ] || merged+=("usr/$d")
  done
  [ "${#merged[@]}" -eq 0 ] || ln -s "${merged[@]}" "$R/"
  # Without a machine id systemd takes the boot for a first boot and systemd-firstboot waits for
  # a key press; it is per machine, so it is made here, never in the store.
  if [ ! -s "$R/etc/machine-id" ]; then
    local id tmp="$R/etc/.cairn-tmp.$$.machine-id"
    # 128 random bits: the kernel's random UUID read by bash (no process), else od on /dev/urandom.
    if IFS= read -r id < /proc/sys/kernel/random/uuid 2>/dev/null && [ "${#id}" -eq 36 ]; then
      id="${id//-/}"
    else
      id="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    fi
    umask 0222
    printf '%s\n' "$id" > "$tmp"
    umask 022
    cairn_rename "$tmp" "$R/etc/machine-id"
  fi
}

# Users and groups from the generation's spec, ids kept in $R/var/lib/cairn. (Every boot runs this:
# it starts as few processes as it can, each costing tens of milliseconds under emulation.)
cairn_setup_users() {
  local state="$R/var/lib/cairn" spec work f
  spec="$S${usersStore#/cairn/store}"
  [ -d "$state" ] || mkdir -p "$state"
  # Private (0700): the password hashes pass through it. It stays between activations (made once,
  # not made and removed each time: two processes less); awk rewrites each file it holds.
  work="$R/etc/.cairn-users"
  [ -d "$work" ] && [ ! -L "$work" ] || { rm -rf "$work" && cairn_mkdir 0700 "$work"; } || return 1
  # shadow and gshadow are made 0640 before awk writes them (it truncates, keeping the mode): no
  # chmod. Left-overs of an activation that stopped half-way go first: they may have another mode.
  [ ! -e "$work/shadow" ] && [ ! -e "$work/gshadow" ] || rm -f "$work/shadow" "$work/gshadow"
  umask 027
  : > "$work/shadow"
  : > "$work/gshadow"
  umask 022
  local -a old=()
  for f in passwd group shadow gshadow; do
    if [ -e "$R/etc/$f" ]; then old+=(-v "old_$f=$R/etc/$f"); else old+=(-v "old_$f=/dev/null"); fi
  done
  if ! awk -f "$spec/users.awk" \
      -v spec_users="$spec/users" -v spec_groups="$spec/groups" "${old[@]}" \
      -v uid_map="$state/uid-map" -v gid_map="$state/gid-map" \
      -v prev_users="$state/declared-users" -v prev_groups="$state/declared-groups" \
      -v root="$R" -v mutable="$mutableUsers" -v out="$work" </dev/null; then
    return 1
  fi
  # passwd and group are 0644 by the umask; shadow and gshadow root:shadow 0640.
  local name x gid shadowGid=0 rest
  while IFS=: read -r name x gid rest; do [ "$name" = shadow ] && { shadowGid="$gid"; break; }; done < "$work/group"
  chown "0:$shadowGid" "$work/shadow" "$work/gshadow"
  # State first: if we stop between the two, the next run finds the same ids on record.
  # (Renames over files, several with one mv: each is still its own atomic rename.)
  cairn_rename_into "$state" "$work/uid-map" "$work/gid-map" "$work/declared-users" "$work/declared-groups"
  cairn_rename_into "$R/etc" "$work/group" "$work/gshadow" "$work/passwd" "$work/shadow"
  local uid gid home
  while IFS=$'\t' read -r name uid gid home; do
    [ -e "$R$home" ] || install -d -m 0700 -o "$uid" -g "$gid" "$R$home"
  done < "$work/homes"
}

# /etc: /etc/static is this generation's etc (one rename), each file a link through it; links
# into /etc/static that the generation no longer has are removed; mode files are real copies.
cairn_setup_etc() {
  local etcPhys="$S${etcStore#/cairn/store}" rel
  [ "$R/etc/static" -ef "$etcPhys/etc" ] || cairn_link "$etcStore/etc" "$R/etc/static"
  # ld.so.cache comes with the generation (src/build/triggers.ts); one that ldconfig wrote (an older
  # first boot, or by hand) is only a cache: replaced without keeping it aside.
  if [ -f "$R/etc/ld.so.cache" ] && [ ! -L "$R/etc/ld.so.cache" ] && [ -e "$etcPhys/etc/ld.so.cache" ]; then rm -f "$R/etc/ld.so.cache"; fi
  # Links as they are now (find) versus as they must be (the generation's list), compared by one
  # awk: links into /etc/static the generation no longer has are stale; paths whose link is
  # missing or points elsewhere are to make. Only the differences are touched.
  local -A fresh=()
  local kind dst dir
  local -a stale=() replace=() targets=() missing=()
  while IFS=$'\t' read -r kind rel; do
    dst="$R/etc/$rel"
    if [ "$kind" = stale ]; then
      stale+=("$dst")
    elif [ -e "$dst" ] || [ -L "$dst" ]; then
      replace+=("$rel")
    else
      missing+=("$rel")
    fi
  done < <(find "$R/etc" -xdev -path "$R/etc/static" -prune -o -type l -lname '/etc/static/*' -printf '%P\t%l\n' |
    awk -F'\t' 'FILENAME == ARGV[1] { w[$0] = "/etc/static/" $0; next } { h[$1] = $2 }
      END { for (p in h) if (!(p in w)) print "stale\t" p; for (p in w) if (h[p] != w[p]) print "make\t" p }' "$etcPhys/links" -)
  [ "${#stale[@]}" -eq 0 ] || rm -f "${stale[@]}"
  # Missing links: when there are many (a first boot), one copy of the generation's link-tree
  # (cp -n: only where nothing is) makes them; those still missing then (or all, with the etc of
  # an older build) are made with one `ln -s` per folder (the names are the targets' names). A
  # path that holds something else is replaced by one rename, so it is never missing.
  if [ "${#missing[@]}" -gt 8 ] && [ -d "$etcPhys/link-tree" ]; then
    cp -Rn --no-preserve=mode,ownership,timestamps "$etcPhys/link-tree/." "$R/etc/" 2>/dev/null || true
  fi
  for rel in "${missing[@]}"; do
    dst="$R/etc/$rel"
    [ -L "$dst" ] || fresh["${dst%/*}"]+="/etc/static/$rel"$'\n'
  done
  if [ "${#fresh[@]}" -gt 0 ]; then
    mkdir -p "${!fresh[@]}"
    for dir in "${!fresh[@]}"; do
      mapfile -t targets < <(printf '%s' "${fresh[$dir]}")
      ln -s "${targets[@]}" "$dir"
    done
  fi
  for rel in "${replace[@]}"; do
    dst="$R/etc/$rel"
    if [ ! -L "$dst" ]; then
      if [ -d "$dst" ]; then echo "warning: /etc/$rel is a folder; not replacing it with a link" >&2; continue; fi
      # A file someone made by hand: kept aside once, never lost silently.
      echo "warning: moving /etc/$rel aside to /etc/$rel.cairn-orig" >&2
      mv -f "$dst" "$dst.cairn-orig"
    fi
    cairn_link "/etc/static/$rel" "$dst"
  done
  # Copies: files that must be real (modes, owners). Those of the previous generation that are
  # gone are removed, as recorded in /etc/.cairn-copies (compared in bash: no process). A copy
  # whose stamp (cairn_copy_stamp) is the one /etc/.cairn-copy-stamps recorded is left as it is.
  local mode user group uid gid rel stamp changed=0
  local -A copied=() prior=() stamps=()
  local -a gone=()
  local recorded=-1
  while IFS=$'\t' read -r mode user group rel; do copied["$rel"]=1; done < "$etcPhys/copies"
  if [ -e "$R/etc/.cairn-copies" ]; then
    recorded=0
    while IFS= read -r rel; do
      [ -n "$rel" ] || continue
      recorded=$((recorded + 1))
      [ -n "${copied["$rel"]+x}" ] || gone+=("$R/etc/$rel")
    done < "$R/etc/.cairn-copies"
    [ "${#gone[@]}" -eq 0 ] || rm -f "${gone[@]}"
  fi
  if [ "$cairn_builtins" = 1 ] && [ -e "$R/etc/.cairn-copy-stamps" ]; then
    while IFS=$'\t' read -r rel stamp; do [ -z "$rel" ] || prior["$rel"]="$stamp"; done < "$R/etc/.cairn-copy-stamps"
  fi
  while IFS=$'\t' read -r mode user group rel; do
    dir="$R/etc/$rel"; dir="${dir%/*}"
    [ -d "$dir" ] || mkdir -p "$dir"
    if [ "$mode" = direct-symlink ]; then
      cairn_link "$etcStore/etc/$rel" "$R/etc/$rel"
      continue
    fi
    if cairn_id passwd "$user"; then uid="$cairn_id_result"; else echo "warning: /etc/$rel: no user $user; owned by root" >&2; uid=0; fi
    if cairn_id group "$group"; then gid="$cairn_id_result"; else echo "warning: /etc/$rel: no group $group; owned by root" >&2; gid=0; fi
    if cairn_copy_stamp "$etcPhys/etc/$rel" "$R/etc/$rel" "$mode" "$uid" "$gid" && [ "$cairn_stamp" = "${prior["$rel"]:-}" ]; then
      stamps["$rel"]="$cairn_stamp"
      continue
    fi
    local tmp="$R/etc/$rel"; tmp="${tmp%/*}/.cairn-tmp.$$.${rel##*/}"
    # One process for content, owner and mode (then the rename): not cp, chown and chmod.
    install -m "$mode" -o "$uid" -g "$gid" "$etcPhys/etc/$rel" "$tmp"
    cairn_rename "$tmp" "$R/etc/$rel"
    cairn_copy_stamp "$etcPhys/etc/$rel" "$R/etc/$rel" "$mode" "$uid" "$gid" || cairn_stamp=""
    stamps["$rel"]="$cairn_stamp"
    changed=1
  done < "$etcPhys/copies"
  # Each record is written again only when it changed (none gone and as many: the same set).
  if [ "${#gone[@]}" -ne 0 ] || [ "$recorded" -ne "${#copied[@]}" ]; then
    { [ "${#copied[@]}" -eq 0 ] || printf '%s\n' "${!copied[@]}"; } > "$R/etc/.cairn-copies.tmp.$$"
    cairn_rename "$R/etc/.cairn-copies.tmp.$$" "$R/etc/.cairn-copies"
  fi
  if [ "$cairn_builtins" = 1 ] && [ "$changed" = 1 ]; then
    { for rel in "${!stamps[@]}"; do printf '%s\t%s\n' "$rel" "${stamps["$rel"]}"; done; } > "$R/etc/.cairn-copy-stamps.tmp.$$"
    cairn_rename "$R/etc/.cairn-copy-stamps.tmp.$$" "$R/etc/.cairn-copy-stamps"
  fi
  # The live mount table, never a copy (systemd-tmpfiles would make it later; programs need it now).
  [ -e "$R/etc/mtab" ] || [ -L "$R/etc/mtab" ] || ln -s ../proc/self/mounts "$R/etc/mtab"
  # A hwdb.bin systemd-hwdb-update compiled into /etc at a boot of an older generation shadows the
  # one sw carries (and makes the unit run again on every new /usr): gone, unless /etc/udev/hwdb.d
  # holds files to compile.
  local etcHwdb=0
  compgen -G "$R/etc/udev/hwdb.d/*" >/dev/null && etcHwdb=1
  if [ -f "$R/etc/udev/hwdb.bin" ] && [ -e "$swPhys/usr/lib/udev/hwdb.bin" ] && [ "$etcHwdb" = 0 ]; then
    rm -f "$R/etc/udev/hwdb.bin"
  fi
  # Files in /etc/udev/hwdb.d (environment.etc) are compiled by systemd-hwdb-update at boot, which
  # needs /etc left unmarked.
  [ "$etcHwdb" = 1 ] || cairn_mark_updated "$R/etc"
}

# cairn_mark_updated DIR: what systemd-update-done writes once the units with ConditionNeedsUpdate=
# (hwdb, journal catalog, sysusers, ldconfig) have run after /usr changed. The build made their
# files (src/build/triggers.ts), so no boot need run them. systemd compares the file's
# mtime with /usr's first (the store's are all 1970), so a file written now marks DIR updated.
cairn_mark_updated() {
  [ -e "$1/.updated" ] || [ ! -e "$swPhys/usr/lib/systemd/catalog/database" ] && return 0
  printf '%s\n' "# Written by cairn's activation, as systemd-update-done would: what the units that run" \
    '# after /usr changed would make was made when the generation was built.' > "$1/.updated"
}

# /var: what services and logins expect to find.
cairn_setup_var() {
  cairn_mkdirs "$R/var/lib/systemd/catalog" "$R/var/log" "$R/var/cache" "$R/var/spool"
  [ -d "$R/var/tmp" ] || cairn_mkdir 1777 "$R/var/tmp"
  [ -d "$R/var/empty" ] || cairn_mkdir 0555 "$R/var/empty"
  # var/run -> ../run, var/lock -> ../run/lock: those missing with one `ln` (named as their targets).
  local -a links=()
  [ -e "$R/var/run" ] || [ -L "$R/var/run" ] || links+=(../run)
  [ -e "$R/var/lock" ] || [ -L "$R/var/lock" ] || links+=(../run/lock)
  [ "${#links[@]}" -eq 0 ] || ln -s "${links[@]}" "$R/var/"
  # The journal's message catalog, compiled at build into sw, where journalctl reads it.
  if [ ! -L "$R/var/lib/systemd/catalog/database" ] && [ -e "$swPhys/usr/lib/systemd/catalog/database" ]; then
    cairn_link /usr/lib/systemd/catalog/database "$R/var/lib/systemd/catalog/database"
  fi
  cairn_mark_updated "$R/var"
}

# cairn_run_snippet NAME FUNCTION [plain]: runs one activation snippet in a subshell; a failure is
# reported by name and remembered, and the others still run (a half-activated system boots
# better than none). `plain`: the snippet is not cairn's own, and gets coreutils, not the builtins.
cairn_failed=()
cairn_run_snippet() {
  local rc=0
  ( set -eo pipefail; [ -z "${3:-}" ] || cairn_plain_tools; "$2" ) || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "error: activation script snippet '$1' failed (exit $rc)" >&2
    cairn_failed+=("$1")
  fi
}
