
# Mount-managed volumes (udisks2): find the drive by UUID, unlock its LUKS
# container, mount it, and afterwards unmount and lock it. Nothing goes
# through sudo: udisks asks polkit (see `nbkp disks setup-auth`).

# Sets nbkp_dev to the block device with this UUID (the LUKS container's
# for encrypted drives); false when it is not plugged in. udev's by-uuid
# link first, else a fresh probe (blkid's cache goes stale without udev).
nbkp_device() {
  nbkp_dev=
  if [ -e "/dev/disk/by-uuid/$1" ]; then nbkp_dev=/dev/disk/by-uuid/$1; return 0; fi
  nbkp_dev=$(blkid -c /dev/null -o device -t "UUID=$1" 2>/dev/null | head -n 1)
  [ -n "$nbkp_dev" ]
}

# Sets nbkp_clear to the unlocked (crypt) child of container $1, or nothing.
nbkp_cleartext() {
  nbkp_clear=$(lsblk -rno NAME,TYPE "$1" 2>/dev/null | while read -r nbkp_n nbkp_t; do
    if [ "$nbkp_t" = crypt ]; then printf '/dev/mapper/%s\n' "$nbkp_n"; break; fi
  done)
}

# Sets nbkp_mp to where device $1 is mounted, or nothing.
nbkp_mounted_at() {
  nbkp_mp=$(findmnt -n -o TARGET --source "$1" 2>/dev/null | head -n 1)
}

# What a udisksctl failure means, as nbkp_mount's exit code ($2: the
# generic one); prints its message, made of plain characters.
nbkp_udisks_failure() {
  printf 'detail %s\n' "$(printf '%s' "$1" | tr '\n\t' '  ' | tr -cd '[:print:]' | cut -c 1-300)"
  nbkp_e=$(printf '%s' "$1" | tr 'A-Z' 'a-z')
  case $nbkp_e in
    *"incorrect passphrase"* | *"no key available"* | *"wrong passphrase"*) return 20 ;;
    *"not authorized"* | *notauthorized*) return 23 ;;
    *"error connecting to the system message bus"* | *serviceunknown* | *"command not found"* | *"not found"*) return 24 ;;
  esac
  return "$2"
}

# nbkp_mount UUID ENCRYPTED KEY MOUNT: with MOUNT=1 unlocks (KEY=stdin: the
# passphrase is the first line of standard input; '-': none was given) and
# mounts; with MOUNT=0 only looks. Already unlocked or mounted is fine.
# Prints "mountpoint PATH" when mounted. Exit: 0 mounted, 10 not plugged in,
# 11 locked (and no passphrase given), 12 not mounted (MOUNT=0), 20 wrong
# passphrase, 21 unlock failed, 22 mount failed, 23 not authorized, 24
# udisks2 not available.
nbkp_mount() {
  nbkp_device "$1" || return 10
  nbkp_blk=$nbkp_dev
  if [ "$2" = 1 ]; then
    nbkp_cleartext "$nbkp_dev"
    if [ -z "$nbkp_clear" ]; then
      { [ "$4" = 1 ] && [ "$3" = stdin ]; } || return 11
      command -v udisksctl >/dev/null 2>&1 || return 24
      # The passphrase lives only in this shell and the pipe to udisksctl
      # (printf is a built-in), without the line's newline.
      IFS= read -r nbkp_key || [ -n "$nbkp_key" ] || return 21
      nbkp_err=$(printf '%s' "$nbkp_key" | udisksctl unlock --no-user-interaction -b "$nbkp_dev" --key-file /dev/stdin 2>&1 >/dev/null)
      nbkp_rc=$?
      nbkp_key=
      if [ "$nbkp_rc" != 0 ]; then nbkp_udisks_failure "$nbkp_err" 21; return; fi
      nbkp_try=0
      while nbkp_cleartext "$nbkp_dev"; [ -z "$nbkp_clear" ] && [ "$nbkp_try" -lt 20 ]; do
        sleep 0.1 2>/dev/null || sleep 1
        nbkp_try=$((nbkp_try + 1))
      done
      [ -n "$nbkp_clear" ] || { echo "detail unlocked, but the cleartext device did not appear"; return 21; }
    fi
    nbkp_blk=$nbkp_clear
  fi
  nbkp_mounted_at "$nbkp_blk"
  if [ -z "$nbkp_mp" ]; then
    [ "$4" = 1 ] || return 12
    command -v udisksctl >/dev/null 2>&1 || return 24
    # udisks may not know the new cleartext device yet: retry briefly.
    nbkp_try=0
    while :; do
      nbkp_err=$(udisksctl mount --no-user-interaction -b "$nbkp_blk" 2>&1 >/dev/null) && break
      nbkp_e=$(printf '%s' "$nbkp_err" | tr 'A-Z' 'a-z')
      case $nbkp_e in
        *"is not a mountable filesystem"* | *"looking up object"* | *"no such interface"*)
          nbkp_try=$((nbkp_try + 1))
          if [ "$nbkp_try" -lt 8 ]; then sleep 0.5 2>/dev/null || sleep 1; continue; fi ;;
      esac
      nbkp_udisks_failure "$nbkp_err" 22
      return
    done
    nbkp_mounted_at "$nbkp_blk"
    [ -n "$nbkp_mp" ] || { echo "detail mounted, but findmnt does not show where"; return 22; }
  fi
  printf 'mountpoint %s\n' "$nbkp_mp"
}

# nbkp_mount_state UUID ENCRYPTED PATH: absent, locked, unmounted, mounted,
# or elsewhere (mounted, but not at PATH when PATH is given).
nbkp_mount_state() {
  nbkp_device "$1" || { echo absent; return 0; }
  nbkp_blk=$nbkp_dev
  if [ "$2" = 1 ]; then
    nbkp_cleartext "$nbkp_dev"
    [ -n "$nbkp_clear" ] || { echo locked; return 0; }
    nbkp_blk=$nbkp_clear
  fi
  nbkp_mounted_at "$nbkp_blk"
  if [ -z "$nbkp_mp" ]; then echo unmounted
  elif [ -n "$3" ] && [ "$nbkp_mp" != "$3" ]; then echo elsewhere
  else echo mounted; fi
}

# nbkp_umount UUID ENCRYPTED: unmounts and locks, whoever mounted it. An
# absent or locked drive is fine. Exit 1 when unmounting failed; a failed
# lock is a warning.
nbkp_umount() {
  nbkp_device "$1" || { echo "state absent"; return 0; }
  nbkp_blk=$nbkp_dev
  nbkp_clear=
  if [ "$2" = 1 ]; then
    nbkp_cleartext "$nbkp_dev"
    [ -n "$nbkp_clear" ] || { echo "state locked"; return 0; }
    nbkp_blk=$nbkp_clear
  fi
  nbkp_mounted_at "$nbkp_blk"
  if [ -n "$nbkp_mp" ]; then
    sync
    nbkp_try=0
    until nbkp_err=$(udisksctl unmount --no-user-interaction -b "$nbkp_blk" 2>&1 >/dev/null); do
      nbkp_try=$((nbkp_try + 1))
      if [ "$nbkp_try" -ge 5 ]; then
        nbkp_udisks_failure "$nbkp_err" 1 >/dev/null
        printf 'warning device may still be mounted: %s\n' "$(printf '%s' "$nbkp_err" | tr '\n\t' '  ' | tr -cd '[:print:]' | cut -c 1-300)"
        return 1
      fi
      sleep 0.5 2>/dev/null || sleep 1
    done
    echo "unmounted"
  fi
  if [ -n "$nbkp_clear" ]; then
    if nbkp_err=$(udisksctl lock --no-user-interaction -b "$nbkp_dev" 2>&1 >/dev/null); then
      echo "locked"
    else
      printf 'warning unmounted but lock-luks failed: %s\n' "$(printf '%s' "$nbkp_err" | tr '\n\t' '  ' | tr -cd '[:print:]' | cut -c 1-300)"
    fi
  fi
  return 0
}
