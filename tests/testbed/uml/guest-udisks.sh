#!/bin/sh
# Inside the User-Mode Linux guest (as root): the services udisks2 needs
# (system D-Bus, udevd so /dev/disk/by-uuid exists, udisksd), then "$@".
# /etc/udisks2 is a tmpfs here (the guest's / is the host's /): the mount
# options file lets udisks mount btrfs with user_subvol_rm_allowed.
set -e
mkdir -p /run/dbus /run/udev
dbus-daemon --system --fork
/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add --subsystem-match=block
udevadm settle
if [ -d /etc/udisks2 ]; then mount -t tmpfs udisks-etc /etc/udisks2; fi
mkdir -p /etc/udisks2
cat >/etc/udisks2/mount_options.conf <<'CONF'
[defaults]
btrfs_defaults=user_subvol_rm_allowed
btrfs_allow=user_subvol_rm_allowed,compress,compress-force,subvol,subvolid,space_cache
CONF
/usr/libexec/udisks2/udisksd --no-debug >/run/udisksd.log 2>&1 &
i=0
until udisksctl status >/dev/null 2>&1; do
  i=$((i + 1))
  [ "$i" -lt 200 ] || { echo "udisksd did not start" >&2; cat /run/udisksd.log >&2; exit 125; }
  sleep 0.1
done
echo "guest: udisks ready after $(cut -d' ' -f1 /proc/uptime)s of uptime"
exec "$@"
