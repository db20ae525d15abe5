# nbkp runtime library (POSIX sh): the operations a run performs on a host.
# Generated scripts embed it; `nbkp run` sends the same text to `sh -s`, on
# this machine or over the run's shared SSH connection, so every operation
# exists exactly once. Each operation prints machine-readable lines:
#   <index> <token>       probe answers
#   snapshot <name>       the snapshot this sync writes or wrote
#   latest <name>         what `latest` pointed at ("-" for none)
#   orphan <name>         an unfinished snapshot newer than `latest`, removed
#   pruned <name>         a snapshot removed by the retention policy
#   warning <text>        a problem that does not fail the sync
# Exit codes: 0 done, 1 failed, 73 another run holds the destination's lock,
# 75 the snapshot name is taken (retry with another).
LC_ALL=C
export LC_ALL

# Keep only characters that can never be shell syntax.
nbkp_token() {
  nbkp_t=$(printf '%s' "$1" | tr -cd 'A-Za-z0-9_.-')
  [ -n "$nbkp_t" ] || nbkp_t=unknown
  printf '%s\n' "$nbkp_t"
}

# A snapshot name: 2026-03-06T14:30:00.123Z (or with '-' in the time on macOS).
nbkp_is_name() {
  case $1 in
    */* | *[!0-9TZ:.-]*) return 1 ;;
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9][:-][0-9][0-9][:-][0-9][0-9]*Z) return 0 ;;
  esac
  return 1
}

# snapshot | devnull | missing | invalid
nbkp_latest_state() {
  [ -L "$1/latest" ] || { echo missing; return 0; }
  nbkp_l=$(readlink "$1/latest") || { echo invalid; return 0; }
  [ "$nbkp_l" = /dev/null ] && { echo devnull; return 0; }
  case $nbkp_l in snapshots/*) nbkp_l=${nbkp_l#snapshots/} ;; *) echo invalid; return 0 ;; esac
  if nbkp_is_name "$nbkp_l" && [ -d "$1/snapshots/$nbkp_l" ]; then echo snapshot; else echo invalid; fi
}

# Sets nbkp_latest to the snapshot `latest` points at, or to nothing.
# (Operations avoid subshells: each fork costs about a millisecond.)
nbkp_find_latest() {
  nbkp_latest=
  [ -L "$1/latest" ] || return 0
  nbkp_l=$(readlink "$1/latest") || return 0
  case $nbkp_l in snapshots/*) nbkp_l=${nbkp_l#snapshots/} ;; *) return 0 ;; esac
  if nbkp_is_name "$nbkp_l" && [ -d "$1/snapshots/$nbkp_l" ]; then nbkp_latest=$nbkp_l; fi
}

nbkp_rsync_state() {
  command -v rsync >/dev/null 2>&1 || { echo missing; return 0; }
  nbkp_v=$(rsync --version 2>/dev/null | head -n 1)
  case $nbkp_v in
    *openrsync*) echo openrsync ;;
    *"version "[3-9].* | *"version "[1-9][0-9].*) echo ok ;;
    *"version "[0-2].*) echo old ;;
    *) echo unknown ;;
  esac
}

# nbkp_probe INDEX KIND [ARG...]: prints "INDEX TOKEN".
nbkp_probe() {
  nbkp_i=$1
  shift
  case $1 in
    reachable) nbkp_r=1 ;;
    file) if [ -f "$2" ]; then nbkp_r=1; else nbkp_r=0; fi ;;
    writable-dir) if [ -d "$2" ] && [ -w "$2" ]; then nbkp_r=1; else nbkp_r=0; fi ;;
    snapshots-dir)
      if [ ! -d "$2" ]; then nbkp_r=0; elif [ -w "$2" ]; then nbkp_r=1; else nbkp_r=ro; fi ;;
    command) if command -v "$2" >/dev/null 2>&1; then nbkp_r=1; else nbkp_r=0; fi ;;
    rsync-version) nbkp_r=$(nbkp_rsync_state) ;;
    fs-type) nbkp_r=$(nbkp_token "$(stat -f -c %T "$2" 2>/dev/null)") ;;
    mount-option)
      if findmnt -T "$2" -n -o OPTIONS 2>/dev/null | tr ',' '\n' | grep -qx "$3"; then nbkp_r=1; else nbkp_r=0; fi ;;
    subvolume)
      if [ ! -d "$2" ]; then nbkp_r=missing
      elif [ "$(stat -c %i "$2" 2>/dev/null)" = 256 ]; then nbkp_r=1
      else nbkp_r=0; fi ;;
    latest) nbkp_r=$(nbkp_latest_state "$2") ;;
    *) nbkp_r=unknown ;;
  esac
  printf '%s %s\n' "$nbkp_i" "$nbkp_r"
}

# Points <endpoint>/latest at snapshots/<name> in one rename, so a crash
# leaves either the old or the new link, never none.
nbkp_set_latest() {
  nbkp_tmp="$1/.latest.nbkp-tmp"
  if [ -L "$nbkp_tmp" ] || [ -e "$nbkp_tmp" ]; then rm -f "$nbkp_tmp"; fi
  ln -s "snapshots/$2" "$nbkp_tmp" || return 1
  # rename(2) over the old link: GNU/busybox mv -T, BSD mv -h; else unlink first.
  mv -T -f "$nbkp_tmp" "$1/latest" 2>/dev/null ||
    mv -h -f "$nbkp_tmp" "$1/latest" 2>/dev/null ||
    { rm -f "$1/latest" && mv -f "$nbkp_tmp" "$1/latest"; }
}

# Removes one snapshot. Hard-link snapshots are renamed out of the name
# space first, so an interrupted removal never leaves a half snapshot that
# looks complete; leftovers are finished by the next prune.
nbkp_remove_snapshot() {
  case $1 in
    btrfs)
      btrfs property set "$2/snapshots/$3" ro false >/dev/null 2>&1
      btrfs subvolume delete "$2/snapshots/$3" >/dev/null 2>&1 ;;
    *)
      mv "$2/snapshots/$3" "$2/snapshots/.nbkp-removing-$3" &&
        rm -rf "$2/snapshots/.nbkp-removing-$3" ;;
  esac
}

# nbkp_prune MODE ENDPOINT MAX [LATEST]: keeps the newest MAX (0: all),
# never `latest` (LATEST when the caller just set it).
nbkp_prune() {
  for nbkp_p in "$2"/snapshots/.nbkp-removing-*; do
    if [ -d "$nbkp_p" ]; then rm -rf "$nbkp_p"; fi
  done
  [ "$3" -gt 0 ] 2>/dev/null || return 0
  if [ -n "${4-}" ]; then nbkp_latest=$4; else nbkp_find_latest "$2"; fi
  nbkp_count=0
  for nbkp_p in "$2"/snapshots/*; do
    nbkp_n=${nbkp_p##*/}
    if nbkp_is_name "$nbkp_n" && [ -d "$nbkp_p" ]; then nbkp_count=$((nbkp_count + 1)); fi
  done
  nbkp_excess=$((nbkp_count - $3))
  for nbkp_p in "$2"/snapshots/*; do
    [ "$nbkp_excess" -gt 0 ] || break
    nbkp_n=${nbkp_p##*/}
    { nbkp_is_name "$nbkp_n" && [ -d "$nbkp_p" ]; } || continue
    [ "$nbkp_n" = "$nbkp_latest" ] && continue
    nbkp_remove_snapshot "$1" "$2" "$nbkp_n" || return 1
    echo "pruned $nbkp_n"
    nbkp_excess=$((nbkp_excess - 1))
  done
}

# The destination lock: <endpoint>/.nbkp-lock, a symlink whose target is
# its owner "host_boot_pid". `ln -s` creates it with its owner in one step,
# so a crash can never leave a lock that does not say whose it is. The
# sentinel filters keep rsync from copying or deleting it. Prints "locked
# OWNER" and returns 73 when another run holds it; a lock whose owner the
# caller proved gone (STALE) is removed first, only if it still names it.
# nbkp_lock ENDPOINT OWNER STALE
nbkp_lock() {
  nbkp_l="$1/.nbkp-lock"
  if [ "$3" != - ] && [ "$(readlink "$nbkp_l" 2>/dev/null)" = "$3" ]; then
    rm -f "$nbkp_l"
    echo "warning removed the lock of a run that is gone ($3)"
  fi
  # ln -s into an existing directory would succeed inside it: look first.
  if ! [ -e "$nbkp_l" ] && ! [ -L "$nbkp_l" ] && ln -s "$2" "$nbkp_l" 2>/dev/null; then
    return 0
  fi
  nbkp_holder=$(readlink "$nbkp_l" 2>/dev/null)
  [ "$nbkp_holder" = "$2" ] && return 0
  [ -L "$nbkp_l" ] || [ -e "$nbkp_l" ] || return 1
  echo "locked $(nbkp_token "$nbkp_holder")"
  return 73
}

# Releases the lock if this run holds it.
nbkp_unlock() {
  if [ "$(readlink "$1/.nbkp-lock" 2>/dev/null)" = "$2" ]; then rm -f "$1/.nbkp-lock"; fi
}

# Before a sync writes: the lock, then for hard-link snapshots the orphan
# cleanup (snapshots newer than `latest`, left by an interrupted run), the
# new snapshot directory, and what --link-dest should use. A dry run
# changes nothing and takes no lock.
# nbkp_begin MODE DRY ENDPOINT CANDIDATE OWNER STALE
nbkp_begin() {
  if [ "$2" != 1 ]; then nbkp_lock "$3" "$5" "$6" || return; fi
  [ "$1" = hard-link ] || return 0
  nbkp_find_latest "$3"
  if [ "$2" != 1 ] && [ -n "$nbkp_latest" ]; then
    nbkp_after=
    for nbkp_p in "$3"/snapshots/*; do
      nbkp_n=${nbkp_p##*/}
      { nbkp_is_name "$nbkp_n" && [ -d "$nbkp_p" ]; } || continue
      if [ -n "$nbkp_after" ]; then
        if nbkp_remove_snapshot hard-link "$3" "$nbkp_n"; then
          echo "orphan $nbkp_n"
        else
          echo "warning could not remove orphaned snapshot $nbkp_n"
        fi
      fi
      [ "$nbkp_n" = "$nbkp_latest" ] && nbkp_after=1
    done
  fi
  if [ -e "$3/snapshots/$4" ] || { [ "$2" != 1 ] && ! mkdir "$3/snapshots/$4" 2>/dev/null; }; then
    [ -e "$3/snapshots/$4" ] && return 75
    return 1
  fi
  echo "snapshot $4"
  echo "latest ${nbkp_latest:--}"
}

# After a successful rsync: for btrfs a read-only snapshot of staging/,
# then `latest` moves (in one rename) and old snapshots are pruned; the
# lock is released. 75: the snapshot name is taken (the lock is kept).
# nbkp_commit MODE DRY ENDPOINT SNAPSHOT MAX OWNER
nbkp_commit() {
  [ "$2" = 1 ] && return 0
  case $1 in
    btrfs)
      [ -e "$3/snapshots/$4" ] && return 75
      btrfs subvolume snapshot -r "$3/staging" "$3/snapshots/$4" >/dev/null || return 1
      echo "snapshot $4" ;;
  esac
  if [ "$1" != none ]; then
    nbkp_set_latest "$3" "$4" || return 1
    nbkp_prune "$1" "$3" "$5" "$4" || echo "warning pruning failed; snapshots kept"
  fi
  nbkp_unlock "$3" "$6"
}

# After a failed rsync: the unfinished hard-link snapshot goes; the lock is
# released. nbkp_abort MODE DRY ENDPOINT SNAPSHOT OWNER
nbkp_abort() {
  [ "$2" = 1 ] && return 0
  if [ "$1" = hard-link ] && [ -d "$3/snapshots/$4" ]; then
    nbkp_remove_snapshot hard-link "$3" "$4" || echo "warning could not remove unfinished snapshot $4"
  fi
  nbkp_unlock "$3" "$5"
}
