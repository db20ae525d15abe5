# nbkp runtime library (POSIX sh): the operations a run performs on a host.
# Generated scripts embed it; `nbkp run` sends the same text to `sh -s`, on
# this machine or over the run's shared SSH connection, so every operation
# exists exactly once. Each operation prints machine-readable lines:
#   <index> <token>       probe answers
#   snapshot <name>       the snapshot this sync writes or wrote
#   latest <name>         what `latest` pointed at ("-" for none)
#   unfinished <name>     an unfinished snapshot (.nbkp-partial-<name>), removed
#   pruned <name> <rule>  a snapshot removed by the retention rule named
#   clock <now> <newest>  the clock is behind the newest snapshot
#   warning <text>        a problem that does not fail the sync
# Exit codes: 0 done, 1 failed, 73 another run holds the destination's lock,
# 75 the snapshot name is taken (retry with another).
LC_ALL=C
export LC_ALL

# Sets nbkp_t to $1 with only characters that can never be shell syntax
# (without starting a program when there is nothing to remove).
nbkp_token() {
  case $1 in
    *[!A-Za-z0-9_.-]*) nbkp_t=$(printf '%s' "$1" | tr -cd 'A-Za-z0-9_.-') ;;
    *) nbkp_t=$1 ;;
  esac
  [ -n "$nbkp_t" ] || nbkp_t=unknown
}

# A snapshot name: 2026-03-06T14:30:00.123Z (or with '-' in the time on macOS).
nbkp_is_name() {
  case $1 in
    */* | *[!0-9TZ:.-]*) return 1 ;;
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9][:-][0-9][0-9][:-][0-9][0-9]*Z) return 0 ;;
  esac
  return 1
}

# Sets nbkp_r to snapshot | devnull | missing | invalid.
nbkp_latest_state() {
  [ -L "$1/latest" ] || { nbkp_r=missing; return 0; }
  nbkp_l=$(readlink "$1/latest") || { nbkp_r=invalid; return 0; }
  [ "$nbkp_l" = /dev/null ] && { nbkp_r=devnull; return 0; }
  case $nbkp_l in snapshots/*) nbkp_l=${nbkp_l#snapshots/} ;; *) nbkp_r=invalid; return 0 ;; esac
  if nbkp_is_name "$nbkp_l" && [ -d "$1/snapshots/$nbkp_l" ]; then nbkp_r=snapshot; else nbkp_r=invalid; fi
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

# The probes: nbkp_probe_KIND INDEX [ARG...] prints "INDEX TOKEN" (what
# src/exec/local_probes.rs answers without a shell). 1 yes, 0 no.
nbkp_probe_reachable() {
  echo "$1 1"
}
nbkp_probe_file() {
  if [ -f "$2" ]; then echo "$1 1"; else echo "$1 0"; fi
}
nbkp_probe_writable_dir() {
  if [ -d "$2" ] && [ -w "$2" ]; then echo "$1 1"; else echo "$1 0"; fi
}
nbkp_probe_snapshots_dir() {
  if [ ! -d "$2" ]; then echo "$1 0"; elif [ -w "$2" ]; then echo "$1 1"; else echo "$1 ro"; fi
}
nbkp_probe_command() {
  if command -v "$2" >/dev/null 2>&1; then echo "$1 1"; else echo "$1 0"; fi
}
nbkp_probe_rsync_version() {
  echo "$1 $(nbkp_rsync_state)"
}
nbkp_probe_fs_type() {
  nbkp_token "$(stat -f -c %T "$2" 2>/dev/null)"
  echo "$1 $nbkp_t"
}
nbkp_probe_mount_option() {
  if findmnt -T "$2" -n -o OPTIONS 2>/dev/null | tr ',' '\n' | grep -qx "$3"; then echo "$1 1"; else echo "$1 0"; fi
}
# A btrfs subvolume's root directory has inode 256; missing: no directory.
nbkp_probe_subvolume() {
  if [ ! -d "$2" ]; then echo "$1 missing"
  elif [ "$(stat -c %i "$2" 2>/dev/null)" = 256 ]; then echo "$1 1"
  else echo "$1 0"; fi
}
# snapshot | devnull | missing | invalid
nbkp_probe_latest() {
  nbkp_latest_state "$2"
  echo "$1 $nbkp_r"
}
# The newest snapshot's name, or -.
nbkp_probe_newest() {
  nbkp_list_names "$2"
  nbkp_r=-
  for nbkp_n in $nbkp_names; do nbkp_r=$nbkp_n; done
  echo "$1 $nbkp_r"
}
nbkp_probe_daemon_file() {
  nbkp_i=$1
  shift
  echo "$nbkp_i $(nbkp_daemon_file "$@")"
}
nbkp_probe_mount() {
  echo "$1 $(nbkp_mount_state "$2" "$3" "$4")"
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
# nbkp_remove_snapshot MODE ENDPOINT NAME [PRIORITY]
nbkp_remove_snapshot() {
  case $1 in
    btrfs)
      btrfs property set "$2/snapshots/$3" ro false >/dev/null 2>&1
      nbkp_prio run "${4:--:-:-}" btrfs subvolume delete "$2/snapshots/$3" >/dev/null 2>&1 ;;
    *)
      mv "$2/snapshots/$3" "$2/snapshots/.nbkp-removing-$3" &&
        nbkp_prio run "${4:--:-:-}" rm -rf "$2/snapshots/.nbkp-removing-$3" ;;
  esac
}

# nbkp_prio run|exec PRIORITY COMMAND...: COMMAND under PRIORITY,
# "NICE:IOCLASS:IOLEVEL" with `-` for unset (the sync's `priority`). ionice
# is used only where it exists (not on macOS), with -t so a kernel refusing
# IO priorities does not stop the command. Also rsync's wrapper (exec).
nbkp_prio() {
  nbkp_qm=$1 nbkp_qn=${2%%:*} nbkp_qc=${2#*:}
  nbkp_ql=${nbkp_qc#*:} nbkp_qc=${nbkp_qc%%:*}
  shift 2
  if [ "$nbkp_qc" != - ] && command -v ionice >/dev/null 2>&1; then
    if [ "$nbkp_ql" != - ]; then
      set -- ionice -t -c "$nbkp_qc" -n "$nbkp_ql" "$@"
    else
      set -- ionice -t -c "$nbkp_qc" "$@"
    fi
  fi
  if [ "$nbkp_qn" != - ] && command -v nice >/dev/null 2>&1; then set -- nice -n "$nbkp_qn" "$@"; fi
  if [ "$nbkp_qm" = exec ]; then exec "$@"; fi
  "$@"
}

# nbkp_epoch NAME: for a snapshot name (UTC), sets nbkp_e (seconds since
# the epoch) and the keys of its hour, day, week (from Monday), month and
# year: nbkp_k_hourly ... nbkp_k_yearly. The arithmetic of
# src/retention/calendar.rs, in the shell's integers (no date(1) needed).
nbkp_epoch() {
  nbkp_r=${1#*-}
  nbkp_y=${1%%-*} nbkp_mo=${nbkp_r%%-*}
  nbkp_r=${nbkp_r#*-}
  nbkp_dd=${nbkp_r%%T*}
  nbkp_r=${nbkp_r#*T}
  nbkp_hh=${nbkp_r%%[:-]*}
  nbkp_r=${nbkp_r#*[:-]}
  nbkp_mi=${nbkp_r%%[:-]*}
  nbkp_r=${nbkp_r#*[:-]}
  nbkp_ss=${nbkp_r%%[.Z]*}
  # A leading zero would read as octal.
  nbkp_mo=${nbkp_mo#0} nbkp_dd=${nbkp_dd#0} nbkp_hh=${nbkp_hh#0} nbkp_mi=${nbkp_mi#0} nbkp_ss=${nbkp_ss#0}
  nbkp_yy=$((nbkp_y - (nbkp_mo <= 2)))
  nbkp_era=$((nbkp_yy / 400))
  nbkp_yoe=$((nbkp_yy - nbkp_era * 400))
  nbkp_doy=$(((153 * ((nbkp_mo + 9) % 12) + 2) / 5 + nbkp_dd - 1))
  nbkp_days=$((nbkp_era * 146097 + nbkp_yoe * 365 + nbkp_yoe / 4 - nbkp_yoe / 100 + nbkp_doy - 719468))
  nbkp_e=$((((nbkp_days * 24 + nbkp_hh) * 60 + nbkp_mi) * 60 + nbkp_ss))
  nbkp_k_hourly=$((nbkp_days * 24 + nbkp_hh)) nbkp_k_daily=$nbkp_days
  nbkp_k_weekly=$(((nbkp_days + 3) / 7)) nbkp_k_monthly=$((nbkp_y * 12 + nbkp_mo)) nbkp_k_yearly=$nbkp_y
}

# A calendar rule for the current snapshot: the newest of each period is
# kept, until the rule's count of periods is used up.
nbkp_period() {
  eval "nbkp_pc=\$nbkp_c_$1 nbkp_pk=\$nbkp_k_$1 nbkp_pl=\$nbkp_l_$1 nbkp_pu=\$nbkp_u_$1"
  [ -n "$nbkp_pc" ] && [ "$nbkp_pl" != "$nbkp_pk" ] || return 0
  eval "nbkp_l_$1=\$nbkp_pk"
  if [ "$nbkp_pc" = all ] || [ "$nbkp_pu" -lt "$nbkp_pc" ]; then
    nbkp_k=1
    eval "nbkp_u_$1=$((nbkp_pu + 1))"
  fi
}

# nbkp_retain NOW LATEST [RULE=VALUE...]: decides the snapshots named in
# $nbkp_names (oldest first) as src/retention/mod.rs `decide` does, and
# sets nbkp_drops to those to remove, oldest first, each as NAME/RULE with
# RULE the one that removes it: max-snapshots, max-age, or keep-rules (no
# keep rule keeps it). Rules: last=N
# within=SECONDS hourly|daily|weekly|monthly|yearly=N|all maxage=SECONDS
# max=N. Never dropped: LATEST, anything newer, everything when LATEST is
# not among them.
nbkp_retain() {
  nbkp_now=$1 nbkp_lt=$2
  shift 2
  nbkp_last= nbkp_within= nbkp_maxage= nbkp_max= nbkp_rules=
  for nbkp_p in hourly daily weekly monthly yearly; do
    eval "nbkp_c_$nbkp_p= nbkp_l_$nbkp_p=- nbkp_u_$nbkp_p=0"
  done
  for nbkp_t in "$@"; do
    nbkp_v=${nbkp_t#*=}
    case $nbkp_t in
      last=*) nbkp_last=$nbkp_v nbkp_rules=1 ;;
      within=*) nbkp_within=$nbkp_v nbkp_rules=1 ;;
      hourly=* | daily=* | weekly=* | monthly=* | yearly=*)
        eval "nbkp_c_${nbkp_t%%=*}=\$nbkp_v"
        nbkp_rules=1 ;;
      maxage=*) nbkp_maxage=$nbkp_v ;;
      max=*) nbkp_max=$nbkp_v ;;
    esac
  done
  nbkp_epoch "$nbkp_now"
  nbkp_nows=$nbkp_e
  nbkp_rev= nbkp_found=
  for nbkp_n in $nbkp_names; do
    nbkp_rev="$nbkp_n $nbkp_rev"
    [ "$nbkp_n" = "$nbkp_lt" ] && nbkp_found=1
  done
  nbkp_i=0 nbkp_seen= nbkp_kept=0
  for nbkp_n in $nbkp_rev; do
    nbkp_prot= nbkp_k=
    if [ -z "$nbkp_found" ] || [ -z "$nbkp_seen" ]; then nbkp_prot=1; fi
    [ "$nbkp_n" = "$nbkp_lt" ] && nbkp_seen=1
    nbkp_epoch "$nbkp_n"
    nbkp_age=$((nbkp_nows - nbkp_e))
    [ -n "$nbkp_rules" ] || nbkp_k=1
    if [ -n "$nbkp_last" ] && [ "$nbkp_i" -lt "$nbkp_last" ]; then nbkp_k=1; fi
    if [ -n "$nbkp_within" ] && [ "$nbkp_age" -le "$nbkp_within" ]; then nbkp_k=1; fi
    for nbkp_p in hourly daily weekly monthly yearly; do nbkp_period "$nbkp_p"; done
    nbkp_why=keep-rules
    if [ -n "$nbkp_maxage" ] && [ "$nbkp_age" -gt "$nbkp_maxage" ]; then nbkp_k= nbkp_why=max-age; fi
    [ -n "$nbkp_prot" ] && nbkp_k=1
    [ -n "$nbkp_k" ] && nbkp_kept=$((nbkp_kept + 1))
    eval "nbkp_n_$nbkp_i=\$nbkp_n nbkp_k_$nbkp_i=\$nbkp_k nbkp_p_$nbkp_i=\$nbkp_prot nbkp_w_$nbkp_i=\$nbkp_why"
    nbkp_i=$((nbkp_i + 1))
  done
  # max-snapshots: the oldest kept go first; protected ones count but stay.
  nbkp_drops=
  while [ "$nbkp_i" -gt 0 ]; do
    nbkp_i=$((nbkp_i - 1))
    eval "nbkp_n=\$nbkp_n_$nbkp_i nbkp_k=\$nbkp_k_$nbkp_i nbkp_prot=\$nbkp_p_$nbkp_i nbkp_why=\$nbkp_w_$nbkp_i"
    if [ -n "$nbkp_k" ] && [ -z "$nbkp_prot" ] && [ -n "$nbkp_max" ] && [ "$nbkp_kept" -gt "$nbkp_max" ]; then
      nbkp_k= nbkp_kept=$((nbkp_kept - 1)) nbkp_why=max-snapshots
    fi
    [ -n "$nbkp_k" ] || nbkp_drops="$nbkp_drops $nbkp_n/$nbkp_why"
  done
}

# The snapshots of an endpoint, oldest first, into nbkp_names (names are
# plain tokens: nbkp_is_name allows no blanks or glob characters).
nbkp_list_names() {
  nbkp_names=
  for nbkp_p in "$1"/snapshots/*; do
    nbkp_n=${nbkp_p##*/}
    if nbkp_is_name "$nbkp_n" && [ -d "$nbkp_p" ]; then nbkp_names="$nbkp_names $nbkp_n"; fi
  done
}

# Finishes removals an interrupted run left (.nbkp-removing-*).
# nbkp_finish_removals ENDPOINT [PRIORITY]
nbkp_finish_removals() {
  for nbkp_p in "$1"/snapshots/.nbkp-removing-*; do
    if [ -d "$nbkp_p" ]; then nbkp_prio run "${2:--:-:-}" rm -rf "$nbkp_p"; fi
  done
}

# nbkp_prune MODE ENDPOINT NOW LATEST KEEP [RULE=VALUE...]: applies the
# retention policy (no rules: keep everything), never to KEEP (the snapshot
# `latest` named when the run started, or -), and not at all when NOW is
# not after the newest snapshot (the clock is behind). A `prio=PRIORITY`
# among the rules removes at the sync's priority (see nbkp_prio). Prints
# "pruned NAME RULE" for each removal, RULE the one that removed it.
nbkp_prune() {
  nbkp_pm=$1 nbkp_pe=$2 nbkp_pn=$3 nbkp_pt=$4 nbkp_pair=$5
  shift 5
  nbkp_qp=-:-:-
  for nbkp_t in "$@"; do
    case $nbkp_t in prio=*) nbkp_qp=${nbkp_t#prio=} ;; esac
  done
  nbkp_finish_removals "$nbkp_pe" "$nbkp_qp"
  [ $# -gt 0 ] || return 0
  nbkp_list_names "$nbkp_pe"
  nbkp_newest=
  for nbkp_n in $nbkp_names; do nbkp_newest=$nbkp_n; done
  if [ "$nbkp_newest" != "$nbkp_pn" ]; then
    echo "warning nothing is pruned: the clock ($nbkp_pn) is behind the newest snapshot $nbkp_newest"
    return 0
  fi
  nbkp_retain "$nbkp_pn" "$nbkp_pt" "$@"
  for nbkp_d in $nbkp_drops; do
    nbkp_n=${nbkp_d%%/*}
    [ "$nbkp_n" = "$nbkp_pair" ] && continue
    nbkp_remove_snapshot "$nbkp_pm" "$nbkp_pe" "$nbkp_n" "$nbkp_qp" || return 1
    echo "pruned $nbkp_n ${nbkp_d#*/}"
  done
}

# What `nbkp snapshots` shows: "absent" when the volume or the endpoint's
# snapshots/ is not there, else "latest NAME|-", then "snapshot NAME" for
# each snapshot, oldest first. nbkp_list ROOT ENDPOINT
nbkp_list() {
  { [ -f "$1/.nbkp-vol" ] && [ -d "$2/snapshots" ]; } || { echo "absent"; return 0; }
  nbkp_find_latest "$2"
  echo "latest ${nbkp_latest:--}"
  nbkp_list_names "$2"
  for nbkp_n in $nbkp_names; do echo "snapshot $nbkp_n"; done
}

# Removes the snapshots `nbkp snapshots prune` decided on, under the
# destination's lock, and only if the volume is still there and `latest`
# is still what it decided with.
# nbkp_prune_named MODE ROOT ENDPOINT OWNER STALE LATEST NAME...
nbkp_prune_named() {
  [ -f "$2/.nbkp-vol" ] || { echo "warning the volume is gone; nothing removed"; return 1; }
  nbkp_pm=$1 nbkp_pe=$3 nbkp_po=$4
  nbkp_lock "$3" "$4" "$5" || return
  nbkp_find_latest "$nbkp_pe"
  if [ "${nbkp_latest:--}" != "$6" ]; then
    echo "warning latest changed since the snapshots were listed; nothing removed"
    nbkp_unlock "$nbkp_pe" "$nbkp_po"
    return 1
  fi
  shift 6
  nbkp_finish_removals "$nbkp_pe"
  for nbkp_n in "$@"; do
    { nbkp_is_name "$nbkp_n" && [ -d "$nbkp_pe/snapshots/$nbkp_n" ] && [ "$nbkp_n" != "$nbkp_latest" ]; } || continue
    nbkp_remove_snapshot "$nbkp_pm" "$nbkp_pe" "$nbkp_n" || { nbkp_unlock "$nbkp_pe" "$nbkp_po"; return 1; }
    echo "pruned $nbkp_n"
  done
  nbkp_unlock "$nbkp_pe" "$nbkp_po"
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
  nbkp_token "$nbkp_holder"
  echo "locked $nbkp_t"
  return 73
}

# Releases the lock if this run holds it.
nbkp_unlock() {
  if [ "$(readlink "$1/.nbkp-lock" 2>/dev/null)" = "$2" ]; then rm -f "$1/.nbkp-lock"; fi
}

# A mirror's prepare and end (no snapshots): only the lock, and nothing in
# a dry run. nbkp_lock_for DRY ENDPOINT OWNER STALE; nbkp_unlock_for DRY
# ENDPOINT OWNER
nbkp_lock_for() {
  [ "$1" = 1 ] || nbkp_lock "$2" "$3" "$4"
}
nbkp_unlock_for() {
  [ "$1" = 1 ] || nbkp_unlock "$2" "$3"
}

# Before a sync writes: the lock, then for hard-link snapshots the cleanup
# of unfinished snapshots (.nbkp-partial-<name>, left by an interrupted run:
# only what is marked unfinished, never a complete snapshot), the new
# snapshot's directory, again marked unfinished until nbkp_commit renames it,
# and what --link-dest should use. A clock behind the newest snapshot is
# reported ("clock NOW NEWEST"); the backup still runs, and its snapshot is
# named 1 ms after the newest (so `latest` stays the newest name: tools
# that take names after `latest` for leftovers, as the Python nbkp does,
# find none). A dry run changes nothing and takes no lock.
# nbkp_begin MODE DRY ENDPOINT CANDIDATE OWNER STALE
nbkp_begin() {
  if [ "$2" != 1 ]; then nbkp_lock "$3" "$5" "$6" || return; fi
  [ "$1" = none ] && return 0
  nbkp_list_names "$3"
  nbkp_newest "$4"
  [ "$1" = hard-link ] || return 0
  nbkp_find_latest "$3"
  if [ "$2" != 1 ]; then
    for nbkp_p in "$3"/snapshots/.nbkp-partial-*; do
      nbkp_n=${nbkp_p##*/.nbkp-partial-}
      nbkp_is_name "$nbkp_n" && [ "$nbkp_n" != "$4" ] && [ -d "$nbkp_p" ] || continue
      if rm -rf "$nbkp_p"; then
        echo "unfinished $nbkp_n"
      else
        echo "warning could not remove unfinished snapshot $nbkp_n"
      fi
    done
  fi
  nbkp_s=$nbkp_name
  if [ -e "$3/snapshots/$nbkp_s" ] || [ -e "$3/snapshots/.nbkp-partial-$nbkp_s" ]; then return 75; fi
  if [ "$2" != 1 ] && ! mkdir "$3/snapshots/.nbkp-partial-$nbkp_s" 2>/dev/null; then
    [ -e "$3/snapshots/.nbkp-partial-$nbkp_s" ] && return 75
    return 1
  fi
  echo "snapshot $nbkp_s"
  echo "latest ${nbkp_latest:--}"
}

# Sets nbkp_newest to the last of $nbkp_names (the glob sorts them, and
# names sort in time order), or to nothing, and nbkp_name to the new
# snapshot's name: NOW (the clock's time), or 1 ms after the newest when
# NOW is not after it, which "clock NOW NEWEST" reports.
# nbkp_newest NOW
nbkp_newest() {
  nbkp_newest= nbkp_name=$1
  for nbkp_n in $nbkp_names; do nbkp_newest=$nbkp_n; done
  [ -n "$nbkp_newest" ] || return 0
  nbkp_msec "$nbkp_newest"
  nbkp_cn=$nbkp_m
  nbkp_msec "$1"
  [ "$nbkp_m" -gt "$nbkp_cn" ] && return 0
  echo "clock $1 $nbkp_newest"
  nbkp_after "$nbkp_newest"
  nbkp_name=$nbkp_after
}

# nbkp_after NAME: sets nbkp_after to the name of the millisecond after
# NAME, with its separator (src/exec/clock.rs `name_after`; days to a date
# by Howard Hinnant's algorithm, as nbkp_epoch's inverse).
nbkp_after() {
  nbkp_msec "$1"
  nbkp_m=$((nbkp_m + 1))
  nbkp_z=$((nbkp_m / 86400000 + 719468)) nbkp_sd=$((nbkp_m % 86400000))
  nbkp_era=$((nbkp_z / 146097))
  nbkp_doe=$((nbkp_z - nbkp_era * 146097))
  nbkp_yoe=$(((nbkp_doe - nbkp_doe / 1460 + nbkp_doe / 36524 - nbkp_doe / 146096) / 365))
  nbkp_doy=$((nbkp_doe - (365 * nbkp_yoe + nbkp_yoe / 4 - nbkp_yoe / 100)))
  nbkp_mp=$(((5 * nbkp_doy + 2) / 153))
  nbkp_dd=$((nbkp_doy - (153 * nbkp_mp + 2) / 5 + 1))
  nbkp_mo=$((nbkp_mp < 10 ? nbkp_mp + 3 : nbkp_mp - 9))
  nbkp_y=$((nbkp_yoe + nbkp_era * 400 + (nbkp_mo <= 2)))
  nbkp_r=${1#????-??-??T??}
  nbkp_r=${nbkp_r%"${nbkp_r#?}"}
  nbkp_after=$(printf '%04d-%02d-%02dT%02d%s%02d%s%02d.%03dZ' "$nbkp_y" "$nbkp_mo" "$nbkp_dd" \
    $((nbkp_sd / 3600000)) "$nbkp_r" $((nbkp_sd / 60000 % 60)) "$nbkp_r" $((nbkp_sd / 1000 % 60)) $((nbkp_sd % 1000)))
}

# nbkp_msec NAME: sets nbkp_m to the name's time in milliseconds since the
# epoch (its first three digits after the seconds; none: 0).
nbkp_msec() {
  nbkp_epoch "$1"
  nbkp_f=
  case $1 in *.*Z) nbkp_f=${1##*.} nbkp_f=${nbkp_f%Z} ;; esac
  nbkp_f=${nbkp_f}000
  nbkp_g=${nbkp_f#???}
  nbkp_f=${nbkp_f%"$nbkp_g"}
  nbkp_f=${nbkp_f#0}
  nbkp_f=${nbkp_f#0}
  nbkp_m=$((nbkp_e * 1000 + nbkp_f))
}

# After a successful rsync: the new snapshot becomes complete (btrfs: a
# read-only snapshot of staging/; hard-link: its unfinished directory gets
# its final name, one rename), then `latest` moves (in one rename) and the
# retention policy runs, with the new snapshot's time as now. Never pruned
# here: the snapshot `latest` named before (so two good snapshots remain
# whatever the clock says), and nothing at all when the clock is behind the
# newest snapshot (NOW, the clock's time, is not the snapshot's name: see
# nbkp_begin). btrfs names its snapshot here, from NOW, as nbkp_begin would.
# The lock is released. 75: the snapshot name is taken (the lock is kept).
# nbkp_commit MODE DRY ENDPOINT SNAPSHOT NOW OWNER [RULE=VALUE...]
nbkp_commit() {
  [ "$2" = 1 ] && return 0
  nbkp_cm=$1 nbkp_ce=$3 nbkp_cs=$4 nbkp_cw=$5 nbkp_co=$6
  shift 6
  case $nbkp_cm in
    btrfs)
      nbkp_list_names "$nbkp_ce"
      nbkp_newest "$nbkp_cw" >/dev/null
      nbkp_cs=$nbkp_name
      [ -e "$nbkp_ce/snapshots/$nbkp_cs" ] && return 75
      btrfs subvolume snapshot -r "$nbkp_ce/staging" "$nbkp_ce/snapshots/$nbkp_cs" >/dev/null || return 1
      echo "snapshot $nbkp_cs" ;;
    hard-link)
      if [ -d "$nbkp_ce/snapshots/.nbkp-partial-$nbkp_cs" ]; then
        if [ -e "$nbkp_ce/snapshots/$nbkp_cs" ]; then
          echo "warning snapshot $nbkp_cs exists already; the new one stays unfinished"
          return 1
        fi
        mv "$nbkp_ce/snapshots/.nbkp-partial-$nbkp_cs" "$nbkp_ce/snapshots/$nbkp_cs" || return 1
      fi
      [ -d "$nbkp_ce/snapshots/$nbkp_cs" ] || return 1 ;;
  esac
  if [ "$nbkp_cm" != none ]; then
    nbkp_find_latest "$nbkp_ce"
    nbkp_cp=${nbkp_latest:--}
    nbkp_set_latest "$nbkp_ce" "$nbkp_cs" || return 1
    nbkp_prune "$nbkp_cm" "$nbkp_ce" "$nbkp_cw" "$nbkp_cs" "$nbkp_cp" "$@" || echo "warning pruning failed; snapshots kept"
  fi
  nbkp_unlock "$nbkp_ce" "$nbkp_co"
}

# Runs OP only where every FILE is (a destination's sentinels: its drive is
# there), else exits 76: nbkp_if_there FILE... -- OP ARG...
nbkp_if_there() {
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    [ -f "$1" ] || return 76
    shift
  done
  [ "$#" -gt 1 ] || return 76
  shift
  "$@"
}

# After a failed rsync: the unfinished hard-link snapshot goes (only the
# one marked unfinished); the lock is released.
# nbkp_abort MODE DRY ENDPOINT SNAPSHOT OWNER
nbkp_abort() {
  [ "$2" = 1 ] && return 0
  if [ "$1" = hard-link ] && nbkp_is_name "$4" && [ -d "$3/snapshots/.nbkp-partial-$4" ]; then
    rm -rf "$3/snapshots/.nbkp-partial-$4" || echo "warning could not remove unfinished snapshot $4"
  fi
  nbkp_unlock "$3" "$5"
}

# nbkp init: prepares what syncs need. Never creates a volume's root: a
# missing root is an unplugged drive, and creating it would put backups on
# the system disk. Prints "done WHAT", "would WHAT" (dry run), "exists
# WHAT", "failed WHAT", "missing-root", "not-mounted" or "skipped" (an
# endpoint on a volume init does not write to); WHAT is one of
# vol-sentinel endpoint src-sentinel dst-sentinel snapshots latest staging.
nbkp_is_mountpoint() {
  if command -v mountpoint >/dev/null 2>&1; then
    mountpoint -q "$1"
    return
  fi
  [ "$(df -P "$1" 2>/dev/null | awk 'NR == 2 { print $NF }')" = "$1" ]
}

# Whether init may write into volume ROOT (RULE: 0 no drive expected, 1 a
# drive must be mounted there, 2 warn only).
nbkp_init_root_ok() {
  [ -d "$1" ] || { echo "missing-root"; return 1; }
  [ "$2" = 0 ] && return 0
  nbkp_is_mountpoint "$1" && return 0
  echo "not-mounted"
  [ "$2" = 2 ]
}

nbkp_init_file() {
  if [ -f "$3" ]; then echo "exists $2"
  elif [ "$1" = 1 ]; then echo "would $2"
  elif : >"$3"; then echo "done $2"
  else echo "failed $2"; return 1; fi
}

nbkp_init_dir() {
  if [ -d "$3" ]; then echo "exists $2"
  elif [ "$1" = 1 ]; then echo "would $2"
  elif mkdir -p "$3"; then echo "done $2"
  else echo "failed $2"; return 1; fi
}

# nbkp_init_volume DRY ROOT RULE
nbkp_init_volume() {
  nbkp_init_root_ok "$2" "$3" || return 0
  nbkp_init_file "$1" vol-sentinel "$2/.nbkp-vol"
}

# nbkp_init_endpoint DRY ROOT ENDPOINT RULE SOURCE DESTINATION MODE
nbkp_init_endpoint() {
  nbkp_init_root_ok "$2" "$4" >/dev/null || { echo skipped; return 0; }
  if [ "$3" != "$2" ]; then nbkp_init_dir "$1" endpoint "$3" || return 1; fi
  if [ "$5" = 1 ]; then nbkp_init_file "$1" src-sentinel "$3/.nbkp-src" || return 1; fi
  if [ "$6" = 1 ]; then nbkp_init_file "$1" dst-sentinel "$3/.nbkp-dst" || return 1; fi
  [ "$7" = none ] && return 0
  nbkp_init_dir "$1" snapshots "$3/snapshots" || return 1
  if [ -L "$3/latest" ] || [ -e "$3/latest" ]; then echo "exists latest"
  elif [ "$1" = 1 ]; then echo "would latest"
  elif ln -s /dev/null "$3/latest"; then echo "done latest"
  else echo "failed latest"; return 1; fi
  [ "$7" = btrfs ] && [ "$6" = 1 ] || return 0
  if [ -d "$3/staging" ]; then echo "exists staging"
  elif [ "$1" = 1 ]; then echo "would staging"
  elif btrfs subvolume create "$3/staging" >/dev/null 2>&1; then echo "done staging"
  else echo "failed staging"; return 1; fi
}

# rsync daemon volumes (no shell there): is TARGET (rsync://… or host::…)
# a regular file? Args: TARGET RSH ('' or the -e command) [PASSWORD-COMMAND…].
# 1, 0 (absent), unreachable, denied (unknown module, refused login),
# nopassword (the command failed) or unknown. The password reaches rsync
# only through its environment; RSYNC_PASSWORD is at least empty, so rsync
# never waits for one at a prompt.
nbkp_daemon_file() {
  nbkp_dt=$1 nbkp_drsh=$2
  shift 2
  if [ $# -gt 0 ]; then
    RSYNC_PASSWORD=$("$@" </dev/null) || { echo nopassword; return 0; }
  else
    RSYNC_PASSWORD=${RSYNC_PASSWORD-}
  fi
  export RSYNC_PASSWORD
  if [ -n "$nbkp_drsh" ]; then set -- -e "$nbkp_drsh"; else set --; fi
  nbkp_dl=$(rsync --list-only --no-motd ${1+"$@"} "$nbkp_dt" </dev/null 2>&1)
  nbkp_drc=$?
  nbkp_nl='
'
  case $nbkp_drc in
    # The listing's line of a regular file starts with its mode, `-rw…`.
    0) case "$nbkp_nl$nbkp_dl" in *"$nbkp_nl-"*) echo 1 ;; *) echo 0 ;; esac ;;
    23) echo 0 ;;
    # The daemon itself refused (`@ERROR: …`), or it was never reached
    # (through SSH, a failed login ends the same way).
    5) case $nbkp_dl in *@ERROR*) echo denied ;; *) echo unreachable ;; esac ;;
    10 | 12 | 35 | 255) echo unreachable ;;
    *) echo unknown ;;
  esac
}
