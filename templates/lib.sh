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
# Exit codes: 0 done, 1 failed, 75 the snapshot name is taken (retry).
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

# Valid snapshot names in <endpoint>/snapshots, oldest first, one per line.
nbkp_names() {
  for nbkp_p in "$1"/snapshots/*; do
    nbkp_n=${nbkp_p##*/}
    if nbkp_is_name "$nbkp_n" && [ -d "$nbkp_p" ]; then printf '%s\n' "$nbkp_n"; fi
  done
}

# snapshot | devnull | missing | invalid
nbkp_latest_state() {
  [ -L "$1/latest" ] || { echo missing; return 0; }
  nbkp_l=$(readlink "$1/latest") || { echo invalid; return 0; }
  [ "$nbkp_l" = /dev/null ] && { echo devnull; return 0; }
  case $nbkp_l in snapshots/*) nbkp_l=${nbkp_l#snapshots/} ;; *) echo invalid; return 0 ;; esac
  if nbkp_is_name "$nbkp_l" && [ -d "$1/snapshots/$nbkp_l" ]; then echo snapshot; else echo invalid; fi
}

# The snapshot `latest` points at, or nothing.
nbkp_latest_name() {
  [ "$(nbkp_latest_state "$1")" = snapshot ] || return 0
  nbkp_l=$(readlink "$1/latest")
  printf '%s\n' "${nbkp_l#snapshots/}"
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
  rm -f "$nbkp_tmp"
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

# nbkp_prune MODE ENDPOINT MAX: keeps the newest MAX (0: all), never `latest`.
nbkp_prune() {
  for nbkp_p in "$2"/snapshots/.nbkp-removing-*; do
    [ -d "$nbkp_p" ] && rm -rf "$nbkp_p"
  done
  [ "$3" -gt 0 ] 2>/dev/null || return 0
  nbkp_keep=$(nbkp_latest_name "$2")
  nbkp_count=$(nbkp_names "$2" | wc -l)
  nbkp_excess=$((nbkp_count - $3))
  for nbkp_n in $(nbkp_names "$2"); do
    [ "$nbkp_excess" -gt 0 ] || break
    [ "$nbkp_n" = "$nbkp_keep" ] && continue
    nbkp_remove_snapshot "$1" "$2" "$nbkp_n" || return 1
    echo "pruned $nbkp_n"
    nbkp_excess=$((nbkp_excess - 1))
  done
}

# Before a hard-link sync: remove orphans (snapshots newer than `latest`,
# left by an interrupted run), create the new snapshot directory, and report
# what --link-dest should use. A dry run changes nothing.
# nbkp_hl_prepare DRY ENDPOINT CANDIDATE
nbkp_hl_prepare() {
  nbkp_keep=$(nbkp_latest_name "$2")
  if [ "$1" != 1 ] && [ -n "$nbkp_keep" ]; then
    nbkp_after=
    for nbkp_n in $(nbkp_names "$2"); do
      if [ -n "$nbkp_after" ]; then
        if nbkp_remove_snapshot hard-link "$2" "$nbkp_n"; then
          echo "orphan $nbkp_n"
        else
          echo "warning could not remove orphaned snapshot $nbkp_n"
        fi
      fi
      [ "$nbkp_n" = "$nbkp_keep" ] && nbkp_after=1
    done
  fi
  [ -e "$2/snapshots/$3" ] && return 75
  if [ "$1" != 1 ]; then mkdir "$2/snapshots/$3" || return 1; fi
  echo "snapshot $3"
  echo "latest ${nbkp_keep:--}"
}

# After a failed hard-link rsync: the unfinished snapshot goes.
# nbkp_hl_abort DRY ENDPOINT SNAPSHOT
nbkp_hl_abort() {
  [ "$1" = 1 ] && return 0
  [ -d "$2/snapshots/$3" ] || return 0
  nbkp_remove_snapshot hard-link "$2" "$3" || echo "warning could not remove unfinished snapshot $3"
}

# After a successful hard-link rsync: `latest` moves, then pruning.
# nbkp_hl_commit DRY ENDPOINT SNAPSHOT MAX
nbkp_hl_commit() {
  [ "$1" = 1 ] && return 0
  nbkp_set_latest "$2" "$3" || return 1
  nbkp_prune hard-link "$2" "$4" || echo "warning pruning failed; snapshots kept"
}

# After a successful rsync into staging/: a read-only snapshot, `latest`
# moves, then pruning. nbkp_btrfs_commit DRY ENDPOINT CANDIDATE MAX
nbkp_btrfs_commit() {
  [ "$1" = 1 ] && return 0
  [ -e "$2/snapshots/$3" ] && return 75
  btrfs subvolume snapshot -r "$2/staging" "$2/snapshots/$3" >/dev/null || return 1
  echo "snapshot $3"
  nbkp_set_latest "$2" "$3" || return 1
  nbkp_prune btrfs "$2" "$4" || echo "warning pruning failed; snapshots kept"
}
