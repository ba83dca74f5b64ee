# Shell functions of a cairn generation's `activate` script (bash). The build prepends the
# generation's variables:
#   systemConfig  the toplevel (logical store path)    sw, etcStore, usersStore  its parts
#   R             root of the system being activated ("" normally; a folder in tests: CAIRN_ROOT)
#   S             where the store is readable from here (/cairn/store normally; CAIRN_STORE_DIR)
# Links written into the system always name logical paths (/cairn/store/..., /etc/static/...);
# files are read through `phys`. Every real file is replaced atomically (temp file + rename).

# phys PATH: where a logical store path can be read from this process.
phys() { printf '%s' "$S${1#/cairn/store}"; }

# cairn_link TARGET LINK: points LINK at TARGET, replacing what is there in one rename.
# (Paths are split with parameter expansion, not dirname/basename: under emulation every process
# started costs tens of milliseconds, and a boot activates hundreds of links.)
cairn_link() {
  # Where nothing is yet (a first boot), symlink(2) alone is atomic: one process, not two.
  # (-T: never a link inside a folder of that name.)
  if [ ! -e "$2" ] && [ ! -L "$2" ] && ln -sT "$1" "$2" 2>/dev/null; then return 0; fi
  local tmp="${2%/*}/.cairn-tmp.$$.${2##*/}"
  ln -sfn "$1" "$tmp"
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

# The root's shape: merged /usr pointing into this generation's sw, the folders every system has.
cairn_setup_layout() {
  mkdir -p "$R/etc" "$R/var" "$R/run" "$R/tmp" "$R/root" "$R/home" "$R/cairn/var/profiles" "$R/cairn/var/gcroots"
  chmod 1777 "$R/tmp"
  chmod 0700 "$R/root"
  # /usr is one link; on a switch it moves to the new sw in one rename.
  if [ ! -e "$R/usr" ] && [ ! -L "$R/usr" ]; then
    cairn_link "$sw/usr" "$R/usr"
  elif [ -L "$R/usr" ]; then
    [ "$(readlink "$R/usr" 2>/dev/null)" = "$sw/usr" ] || cairn_link "$sw/usr" "$R/usr"
  else
    echo "warning: $R/usr is not a symlink; leaving it alone" >&2
  fi
  # bin -> usr/bin, …: those missing with one `ln` (a link is named as its target's last part).
  local d
  local -a merged=()
  for d in bin sbin lib lib64; do
    [ -e "$R/$d" ] || [ -L "$R/$d" ] || merged+=("usr/$d")
  done
  [ "${#merged[@]}" -eq 0 ] || ln -s -t "$R/" "${merged[@]}"
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
    printf '%s\n' "$id" > "$tmp"
    chmod 0444 "$tmp"
    mv -Tf "$tmp" "$R/etc/machine-id"
  fi
}

# Users and groups from the generation's spec, ids kept in $R/var/lib/cairn.
cairn_setup_users() {
  local state="$R/var/lib/cairn" spec work f
  spec="$(phys "$usersStore")"
  mkdir -p "$state"
  work="$(mktemp -d "$R/etc/.cairn-users.XXXXXX")"
  chmod 0700 "$work"
  for f in passwd group shadow gshadow; do [ -e "$R/etc/$f" ] || : > "$work/old-$f"; done
  # Hashes from hashedPasswordFile: read now, kept in a private temp folder, never in the store.
  : > "$work/hashes"
  local name file hash
  while IFS=$'\t' read -r name file; do
    if [ -r "$R$file" ]; then
      IFS= read -r hash < "$R$file" || true
      printf '%s\t%s\n' "$name" "$hash" >> "$work/hashes"
    else
      echo "warning: password file $file of user $name is missing; its password is not changed" >&2
    fi
  done < <(awk -F'\t' '$10 != "-" { print $1 "\t" $10 }' "$spec/users")
  mkdir "$work/out"
  local old
  old() { if [ -e "$R/etc/$1" ]; then printf '%s' "$R/etc/$1"; else printf '%s' "$work/old-$1"; fi; }
  if ! awk -f "$spec/users.awk" \
      -v spec_users="$spec/users" -v spec_groups="$spec/groups" \
      -v old_passwd="$(old passwd)" -v old_group="$(old group)" -v old_shadow="$(old shadow)" -v old_gshadow="$(old gshadow)" \
      -v uid_map="$state/uid-map" -v gid_map="$state/gid-map" \
      -v prev_users="$state/declared-users" -v prev_groups="$state/declared-groups" \
      -v hashes="$work/hashes" -v mutable="$mutableUsers" -v out="$work/out" </dev/null; then
    rm -rf "$work"
    return 1
  fi
  local shadowGid
  shadowGid="$(awk -F: '$1 == "shadow" { print $3 }' "$work/out/group")"
  chmod 0644 "$work/out/passwd" "$work/out/group"
  chmod 0640 "$work/out/shadow" "$work/out/gshadow"
  chown "0:${shadowGid:-0}" "$work/out/shadow" "$work/out/gshadow"
  # State first: if we stop between the two, the next run finds the same ids on record.
  # (Renames over files, several with one mv: each is still its own atomic rename.)
  mkdir "$work/state"
  for f in uid-map gid-map declared-users declared-groups; do sort "$work/out/$f" > "$work/state/$f"; done
  mv -f -t "$state" "$work/state/uid-map" "$work/state/gid-map" "$work/state/declared-users" "$work/state/declared-groups"
  mv -f -t "$R/etc" "$work/out/group" "$work/out/gshadow" "$work/out/passwd" "$work/out/shadow"
  local uid gid home
  while IFS=$'\t' read -r name uid gid home; do
    if [ ! -e "$R$home" ]; then
      mkdir -p "$R$home"
      chown "$uid:$gid" "$R$home"
      chmod 0700 "$R$home"
    fi
  done < "$work/out/homes"
  rm -rf "$work"
}

# /etc: /etc/static is this generation's etc (one rename), each file a link through it; links
# into /etc/static that the generation no longer has are removed; mode files are real copies.
cairn_setup_etc() {
  local etcPhys="$(phys "$etcStore")" rel
  cairn_link "$etcStore/etc" "$R/etc/static"
  # Links as they are now versus as they must be: only the differences are touched.
  local want="$R/etc/.cairn-want.$$" have="$R/etc/.cairn-have.$$"
  sed 's|^|/etc/static/|' "$etcPhys/links" | paste -d '\t' "$etcPhys/links" - > "$want"
  find "$R/etc" -xdev -path "$R/etc/static" -prune -o -type l -lname '/etc/static/*' -printf '%P\t%l\n' > "$have"
  # Stale: a link into /etc/static whose path the new generation no longer has.
  awk -F'\t' 'FILENAME == ARGV[1] { w[$1] = 1; next } !($1 in w) { print "'"$R"'/etc/" $1 }' "$want" "$have" | xargs -r -d '\n' rm -f
  # Missing links: when there are many (a first boot), one copy of the generation's link-tree
  # (cp -n: only where nothing is) makes them; those still missing then (or all, with the etc of
  # an older build) are made with one `ln -s` per folder (the names are the targets' names). A
  # path that holds something else is replaced by one rename, so it is never missing.
  local -A fresh=()
  local dst dir
  local -a replace=() targets=() missing=()
  while IFS= read -r rel; do
    dst="$R/etc/$rel"
    if [ -e "$dst" ] || [ -L "$dst" ]; then
      replace+=("$rel")
    else
      missing+=("$rel")
    fi
  done < <(awk -F'\t' 'FILENAME == ARGV[1] { h[$1] = $2; next } h[$1] != $2 { print $1 }' "$have" "$want")
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
      ln -s -t "$dir" "${targets[@]}"
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
  rm -f "$want" "$have"
  # Copies: files that must be real (modes, owners). Those of the previous generation that are
  # gone are removed, as recorded in /etc/.cairn-copies.
  local mode user group uid gid dir
  if [ -e "$R/etc/.cairn-copies" ]; then
    awk -F'\t' 'FILENAME == ARGV[1] { w[$4] = 1; next } !($0 in w) { print }' "$etcPhys/copies" "$R/etc/.cairn-copies" | while IFS= read -r rel; do
      rm -f "$R/etc/$rel"
    done
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
    local tmp="$R/etc/$rel"; tmp="${tmp%/*}/.cairn-tmp.$$.${rel##*/}"
    # One process for content, owner and mode (then the rename): not cp, chown and chmod.
    install -m "$mode" -o "$uid" -g "$gid" "$etcPhys/etc/$rel" "$tmp"
    mv -Tf "$tmp" "$R/etc/$rel"
  done < "$etcPhys/copies"
  cut -f4 "$etcPhys/copies" > "$R/etc/.cairn-copies.tmp.$$"
  mv -Tf "$R/etc/.cairn-copies.tmp.$$" "$R/etc/.cairn-copies"
  # The live mount table, never a copy (systemd-tmpfiles would make it later; programs need it now).
  [ -e "$R/etc/mtab" ] || [ -L "$R/etc/mtab" ] || ln -s ../proc/self/mounts "$R/etc/mtab"
  # A hwdb.bin systemd-hwdb-update compiled into /etc at a boot of an older generation shadows the
  # one sw carries (and makes the unit run again on every new /usr): gone, unless /etc/udev/hwdb.d
  # holds files to compile.
  if [ -f "$R/etc/udev/hwdb.bin" ] && [ -e "$(phys "$sw")/usr/lib/udev/hwdb.bin" ] && [ -z "$(ls -A "$R/etc/udev/hwdb.d" 2>/dev/null)" ]; then
    rm -f "$R/etc/udev/hwdb.bin"
  fi
  # /etc/ld.so.cache lists the libraries of the sw ldconfig ran over; the store's /usr keeps one
  # mtime, so ldconfig.service would never see a new generation's. Another sw's cache is remade now
  # on a running system, or removed at boot for ldconfig.service to remake (it runs when missing).
  # (The stamp is written by bash alone: a torn one only means one more ldconfig.)
  local stamp="$R/var/lib/cairn/ld.so.cache.sw" was=""
  [ -f "$stamp" ] && read -r was < "$stamp"
  if [ "$was" != "$sw" ]; then
    if [ -e "$R/etc/ld.so.cache" ]; then
      if [ -z "$R" ] && [ -d /run/systemd/system ]; then ldconfig || echo "warning: ldconfig failed" >&2; else rm -f "$R/etc/ld.so.cache"; fi
    fi
    [ -d "$R/var/lib/cairn" ] || mkdir -p "$R/var/lib/cairn"
    printf '%s\n' "$sw" > "$stamp"
  fi
  cairn_mark_updated "$R/etc"
}

# cairn_mark_updated DIR: what systemd-update-done writes once the units with ConditionNeedsUpdate=
# (hwdb, journal catalog, sysusers, ldconfig) have run after /usr changed. The build made their
# files (src/build/triggers.ts), so a first boot need not run them. systemd compares the file's
# mtime with /usr's first (the store's are all 1970), so a file written now marks DIR updated.
cairn_mark_updated() {
  [ -e "$1/.updated" ] || [ ! -e "$(phys "$sw")/usr/lib/systemd/catalog/database" ] && return 0
  printf '%s\n' "# Written by cairn's activation, as systemd-update-done would: what the units that run" \
    '# after /usr changed would make was made when the generation was built.' > "$1/.updated"
}

# /var: what services and logins expect to find.
cairn_setup_var() {
  mkdir -p "$R/var/lib/systemd/catalog" "$R/var/log" "$R/var/cache" "$R/var/tmp" "$R/var/empty" "$R/var/spool"
  chmod 1777 "$R/var/tmp"
  chmod 0555 "$R/var/empty"
  [ -e "$R/var/run" ] || [ -L "$R/var/run" ] || ln -s ../run "$R/var/run"
  [ -e "$R/var/lock" ] || [ -L "$R/var/lock" ] || ln -s ../run/lock "$R/var/lock"
  # The journal's message catalog, compiled at build into sw, where journalctl reads it.
  if [ ! -L "$R/var/lib/systemd/catalog/database" ] && [ -e "$(phys "$sw")/usr/lib/systemd/catalog/database" ]; then
    cairn_link /usr/lib/systemd/catalog/database "$R/var/lib/systemd/catalog/database"
  fi
  cairn_mark_updated "$R/var"
}

# cairn_run_snippet NAME FUNCTION: runs one activation snippet in a subshell; a failure is
# reported by name and remembered, and the others still run (a half-activated system boots
# better than none).
cairn_failed=()
cairn_run_snippet() {
  local rc=0
  ( set -eo pipefail; "$2" ) || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "error: activation script snippet '$1' failed (exit $rc)" >&2
    cairn_failed+=("$1")
  fi
}
