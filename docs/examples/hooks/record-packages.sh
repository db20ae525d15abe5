#!/bin/sh
# An nbkp `before` hook: records which packages this machine has installed,
# so the backup that follows also holds what is needed to rebuild it.
#
#   hooks:
#     before: [[~/.config/nbkp/hooks/record-packages.sh]]
#
# Writes into DIR (the first argument), by default `.packages` in the sync's
# source ($NBKP_SOURCE), one list per package manager that is present:
# dpkg selections and apt's manually installed packages (Debian, Ubuntu),
# Homebrew formulae and casks (macOS), Flatpak apps, snaps. Each list is
# replaced only once it was written completely. POSIX sh; no network.
set -eu

if [ $# -ge 1 ]; then
  dir=$1
else
  if [ -n "${NBKP_SOURCE_HOST:-}" ]; then
    echo "record-packages: the source is on $NBKP_SOURCE_HOST, not on this machine; give a directory" >&2
    exit 1
  fi
  dir=${NBKP_SOURCE:?"record-packages: not run by nbkp: give a directory"}/.packages
fi
mkdir -p "$dir"

# record FILE PROGRAM [ARG...]: PROGRAM's output into DIR/FILE, if PROGRAM exists.
record() {
  file=$1
  shift
  command -v "$1" >/dev/null 2>&1 || return 0
  if "$@" >"$dir/$file.tmp" 2>/dev/null; then
    mv "$dir/$file.tmp" "$dir/$file"
  else
    rm -f "$dir/$file.tmp"
    echo "record-packages: \`$*\` failed; $dir/$file left as it was" >&2
  fi
}

record dpkg-selections.txt dpkg --get-selections
record apt-manual.txt apt-mark showmanual
record brew-formulae.txt brew list --formula -1
record brew-casks.txt brew list --cask -1
record flatpak-apps.txt flatpak list --app --columns=application
record snaps.txt snap list
exit 0
