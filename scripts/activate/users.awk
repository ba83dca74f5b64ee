# Users and groups of a cairn generation, run by `activate` with the generation's own awk (mawk).
#
# Reads the spec the build generated (tab-separated, see src/build/users.ts), the system's
# current /etc/passwd, group, shadow, gshadow, and the allocation state in /var/lib/cairn;
# writes the new files into the folder `out` (the caller renames them into place).
#
# Ids are stable: an account keeps the id it has; a name once allocated an id gets it back;
# an id once allocated is never given to another name. System accounts get ids from 999
# downward (to 400), normal users from 1000 upward. A declared id that differs from the one an
# existing account has is not applied (changing it would orphan the account's files).
#
# Variables (-v): spec_users spec_groups old_passwd old_group old_shadow old_gshadow uid_map
# gid_map prev_users prev_groups root (the system's root, for password files) mutable out

function warn(msg) { print "warning: " msg > "/dev/stderr" }
function fail(msg) { print "error: " msg > "/dev/stderr"; failed = 1; exit 1 }

function read_map(file, ids, used,   line, n, id) {
  while ((getline line < file) > 0) {
    n = index(line, ":"); if (n == 0) continue
    id = substr(line, n + 1) + 0
    ids[substr(line, 1, n - 1)] = id; used[id] = 1
  }
  close(file)
}

function read_set(file, set,   line) {
  while ((getline line < file) > 0) if (line != "") set[line] = 1
  close(file)
}

# The state files are kept sorted (bytewise, as `LC_ALL=C sort`), so they never change for nothing;
# sorted here, not by sort(1): under emulation every process started costs tens of milliseconds.
function write_sorted(a, n, file,   gap, i, j, t) {
  for (gap = int(n / 2); gap > 0; gap = int(gap / 2))
    for (i = gap + 1; i <= n; i++) {
      t = a[i] ""
      for (j = i; j > gap && (a[j - gap] "") > t; j -= gap) a[j] = a[j - gap]
      a[j] = t
    }
  for (i = 1; i <= n; i++) print a[i] > file
  printf "" > file
  close(file)
}

function alloc_system(used, what,   id) {
  for (id = 999; id >= 400; id--) if (!(id in used)) { used[id] = 1; return id }
  fail("no free system id left for " what)
}

function alloc_normal(used, what,   id) {
  for (id = 1000; id < 60000; id++) if (!(id in used)) { used[id] = 1; return id }
  fail("no free user id left for " what)
}

BEGIN {
  FS = "\t"
  read_map(uid_map, mapUid, usedUid)
  read_map(gid_map, mapGid, usedGid)
  read_set(prev_users, prevU)
  read_set(prev_groups, prevG)

  while ((getline line < old_group) > 0) {
    split(line, a, ":"); if (a[1] == "") continue
    oldGrN++; oldGrOrder[oldGrN] = a[1]; oldGr[a[1]] = line; oldGid[a[1]] = a[3] + 0; usedGid[a[3] + 0] = 1
  }
  close(old_group)
  while ((getline line < old_passwd) > 0) {
    split(line, a, ":"); if (a[1] == "") continue
    oldPwN++; oldPwOrder[oldPwN] = a[1]; oldPw[a[1]] = line; oldUid[a[1]] = a[3] + 0; usedUid[a[3] + 0] = 1
  }
  close(old_passwd)
  while ((getline line < old_shadow) > 0) { split(line, a, ":"); if (a[1] != "") oldSh[a[1]] = line }
  close(old_shadow)
  while ((getline line < old_gshadow) > 0) { split(line, a, ":"); if (a[1] != "") oldGsh[a[1]] = line }
  close(old_gshadow)

  while ((getline line < spec_groups) > 0) {
    split(line, f, "\t"); if (f[1] == "") continue
    ng++; gOrder[ng] = f[1]; gSpec[f[1]] = f[2]; gMembers[f[1]] = f[3]; declG[f[1]] = 1
    if (f[2] != "-") usedGid[f[2] + 0] = 1
  }
  close(spec_groups)
  while ((getline line < spec_users) > 0) {
    split(line, f, "\t"); if (f[1] == "") continue
    nu++; uOrder[nu] = f[1]; uSpec[f[1]] = f[2]; uGroup[f[1]] = f[3]; uGecos[f[1]] = f[4]; uHome[f[1]] = f[5]
    uShell[f[1]] = f[6]; uKind[f[1]] = f[7]; uCreate[f[1]] = f[8]; uHash[f[1]] = f[9]; uInit[f[1]] = f[11]; declU[f[1]] = 1
    if (f[2] != "-") usedUid[f[2] + 0] = 1
    # hashedPasswordFile: read now, from the system (never the store); its first line is the hash.
    if (f[10] != "-") {
      if ((getline h < (root f[10])) > 0 && h != "") fileHash[f[1]] = h
      else warn("password file " f[10] " of user " f[1] " is missing or empty; its password is not changed")
      close(root f[10])
    }
  }
  close(spec_users)

  for (i = 1; i <= ng; i++) {
    n = gOrder[i]
    if (gSpec[n] != "-") {
      gid[n] = gSpec[n] + 0
      if ((n in oldGid) && oldGid[n] != gid[n]) { warn("not applying GID change of group " n " (" oldGid[n] " -> " gid[n] ")"); gid[n] = oldGid[n] }
    } else if (n in oldGid) gid[n] = oldGid[n]
    else if (n in mapGid) gid[n] = mapGid[n]
    else gid[n] = alloc_system(usedGid, "group " n)
    usedGid[gid[n]] = 1
  }
  for (i = 1; i <= nu; i++) {
    n = uOrder[i]
    if (uSpec[n] != "-") {
      uid[n] = uSpec[n] + 0
      if ((n in oldUid) && oldUid[n] != uid[n]) { warn("not applying UID change of user " n " (" oldUid[n] " -> " uid[n] ")"); uid[n] = oldUid[n] }
    } else if (n in oldUid) uid[n] = oldUid[n]
    else if (n in mapUid) uid[n] = mapUid[n]
    else if (uKind[n] == "normal") uid[n] = alloc_normal(usedUid, "user " n)
    else uid[n] = alloc_system(usedUid, "user " n)
    usedUid[uid[n]] = 1
    if (!(uGroup[n] in gid)) fail("user " n ": primary group " uGroup[n] " is not declared")
  }

  # group and gshadow: declared groups in spec order, then (mutable) the others the system has.
  for (i = 1; i <= ng; i++) {
    n = gOrder[i]
    print n ":x:" gid[n] ":" gMembers[n] > (out "/group")
    gpw = "!"
    if (n in oldGsh) { split(oldGsh[n], a, ":"); if (a[2] != "") gpw = a[2] }
    print n ":" gpw "::" gMembers[n] > (out "/gshadow")
  }
  for (i = 1; i <= oldGrN; i++) {
    n = oldGrOrder[i]
    if ((n in declG) || mutable != 1 || (n in prevG)) continue
    print oldGr[n] > (out "/group")
    if (n in oldGsh) print oldGsh[n] > (out "/gshadow"); else print n ":!::" > (out "/gshadow")
  }

  # passwd and shadow.
  for (i = 1; i <= nu; i++) {
    n = uOrder[i]
    print n ":x:" uid[n] ":" gid[uGroup[n]] ":" uGecos[n] ":" uHome[n] ":" uShell[n] > (out "/passwd")
    if (n in fileHash) h = fileHash[n]
    else if (uHash[n] != "-") h = uHash[n]
    else if (mutable == 1 && (n in oldSh)) { print oldSh[n] > (out "/shadow"); h = "" }
    # initialHashedPassword: for an account made now, or (immutable users) one with no other password.
    else if (uInit[n] != "" && uInit[n] != "-") h = uInit[n]
    else h = "!"
    if (h != "") {
      rest = ":::::::"
      if (n in oldSh) { split(oldSh[n], a, ":"); rest = ":" a[3] ":" a[4] ":" a[5] ":" a[6] ":" a[7] ":" a[8] ":" a[9] }
      print n ":" h rest > (out "/shadow")
    }
    if (uCreate[n] == 1) print n "\t" uid[n] "\t" gid[uGroup[n]] "\t" uHome[n] > (out "/homes")
  }
  for (i = 1; i <= oldPwN; i++) {
    n = oldPwOrder[i]
    if ((n in declU) || mutable != 1 || (n in prevU)) continue
    print oldPw[n] > (out "/passwd")
    if (n in oldSh) print oldSh[n] > (out "/shadow")
  }

  # Allocation state: every name that ever had an id keeps it on record.
  for (n in mapUid) if (!(n in uid)) uid[n] = mapUid[n]
  for (n in mapGid) if (!(n in gid)) gid[n] = mapGid[n]
  k = 0; for (n in uid) lines[++k] = n ":" uid[n]; write_sorted(lines, k, out "/uid-map")
  k = 0; for (n in gid) lines[++k] = n ":" gid[n]; write_sorted(lines, k, out "/gid-map")
  k = 0; for (i = 1; i <= nu; i++) lines[++k] = uOrder[i]; write_sorted(lines, k, out "/declared-users")
  k = 0; for (i = 1; i <= ng; i++) lines[++k] = gOrder[i]; write_sorted(lines, k, out "/declared-groups")
  printf "" > (out "/homes")
}
