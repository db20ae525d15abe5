//! Loop-image filesystems: btrfs volumes and removable "drives".
//!
//! Each image lives in its own temporary directory (sparse file, so a 512 MiB
//! btrfs costs a few MiB). Mounting uses `mount -o loop`, so the loop device
//! is detached automatically on umount. On the host, mountpoints are in the
//! temporary directory; for a remote ([`super::remote::RemoteHost`]) the
//! mount happens inside the remote's mount namespace and the mountpoint is
//! under the remote's private [`root`](super::remote::RemoteHost::root).
//!
//! No udev here: find devices by label/UUID with `blkid -L` / `blkid -U`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::remote::Inner;
use super::{check, run_timeout, temp_dir, try_check, unique_tag, Component, COMMAND_TIMEOUT};

pub const MIB: u64 = 1024 * 1024;
/// Default size of a btrfs volume (sparse).
pub const DEFAULT_BTRFS_SIZE: u64 = 512 * MIB;
/// Default size of a drive (sparse).
pub const DEFAULT_DRIVE_SIZE: u64 = 64 * MIB;
/// Size of [`Drive::tiny`]: fills up after about 1.5 MiB of data.
pub const TINY_DRIVE_SIZE: u64 = 2 * MIB;

/// Which mount namespace a volume is mounted in.
#[derive(Clone)]
pub enum Ns {
    Host,
    Remote(Arc<Inner>),
}

impl Ns {
    fn command(&self, program: &str) -> Command {
        match self {
            Ns::Host => Command::new(program),
            Ns::Remote(r) => r.command(program),
        }
    }

    fn is_remote(&self) -> bool {
        matches!(self, Ns::Remote(_))
    }
}

/// Filesystem of a loop image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fs {
    Ext4,
    Btrfs,
}

impl Fs {
    pub fn name(self) -> &'static str {
        match self {
            Fs::Ext4 => "ext4",
            Fs::Btrfs => "btrfs",
        }
    }

    fn mount_options(self) -> &'static str {
        match self {
            Fs::Ext4 => "loop",
            Fs::Btrfs => "loop,user_subvol_rm_allowed",
        }
    }

    pub fn component(self) -> Component {
        match self {
            Fs::Ext4 => Component::Ext4,
            Fs::Btrfs => Component::Btrfs,
        }
    }
}

/// Components every volume needs (plus [`Fs::component`]).
pub const VOLUME_COMPONENTS: &[Component] = &[Component::Root, Component::Loop];

/// A loop image file with a filesystem, plus where it is mounted.
struct Image {
    tmp: Option<tempfile::TempDir>,
    image: PathBuf,
    fs: Fs,
    label: String,
    mountpoint: PathBuf,
    ns: Ns,
}

impl Image {
    fn create(fs: Fs, bytes: u64, label: &str, mountpoint: Option<PathBuf>, ns: Ns) -> Image {
        let tmp = temp_dir(fs.name());
        let image = tmp.path().join(format!("{label}.img"));
        let f = std::fs::File::create(&image).expect("create image");
        f.set_len(bytes).expect("size image");
        drop(f);
        let mut mkfs = match fs {
            Fs::Ext4 => {
                let mut c = Command::new("mkfs.ext4");
                c.args(["-q", "-F", "-m", "0", "-L", label]);
                if bytes < 16 * MIB {
                    // Small images: no journal, few inodes, 1 KiB blocks.
                    c.args(["-O", "^has_journal", "-b", "1024", "-N", "64"]);
                }
                c
            }
            Fs::Btrfs => {
                let mut c = Command::new("mkfs.btrfs");
                c.args(["-q", "-f", "-L", label]);
                if bytes < 256 * MIB {
                    c.arg("--mixed");
                }
                c
            }
        };
        let image_for_mkfs = image.clone();
        let mut me = Image {
            tmp: Some(tmp),
            image,
            fs,
            label: label.to_string(),
            mountpoint: PathBuf::new(),
            ns,
        };
        check(mkfs.arg(&image_for_mkfs));
        me.mountpoint = match mountpoint {
            Some(p) => p,
            None => match &me.ns {
                Ns::Host => me.tmp.as_ref().unwrap().path().join("mnt"),
                Ns::Remote(r) => r.root().join(format!("{}-{label}", fs.name())),
            },
        };
        check(me.ns.command("mkdir").arg("-p").arg(&me.mountpoint));
        me
    }

    fn mount(&self, read_only: bool) -> Result<(), String> {
        // `mount -o loop` reuses a loop device still attached to the same
        // image (e.g. a read-only one whose autoclear has not happened yet,
        // or one pinned briefly by a remote's fresh copy of our mounts), and
        // then the mount silently comes out read-only. Wait for it to go.
        self.wait_detached();
        let mut opts = self.fs.mount_options().to_string();
        if read_only {
            opts.push_str(",ro");
        }
        try_check(
            self.ns
                .command("mount")
                .args(["-t", self.fs.name(), "-o", &opts])
                .arg(&self.image)
                .arg(&self.mountpoint),
        )
        .map(drop)
    }

    fn umount(&self) -> Result<(), String> {
        try_check(self.ns.command("umount").arg(&self.mountpoint))?;
        self.wait_detached();
        Ok(())
    }

    /// Wait (bounded, 5 s) until no loop device is backed by the image.
    fn wait_detached(&self) {
        let _ = super::wait_until("loop device to detach", Duration::from_secs(5), || {
            loop_devices_for(&self.image).is_empty()
        });
    }

    /// Unmount, retrying for a while if busy, then lazily.
    fn umount_hard(&self) {
        for _ in 0..20 {
            if !self.is_mounted() || self.umount().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = run_timeout(
            self.ns.command("umount").arg("-l").arg(&self.mountpoint),
            COMMAND_TIMEOUT,
        );
    }

    fn is_mounted(&self) -> bool {
        run_timeout(
            self.ns
                .command("mountpoint")
                .arg("-q")
                .arg(&self.mountpoint),
            COMMAND_TIMEOUT,
        )
        .map(|o| o.status.success())
        .unwrap_or(false)
    }

    fn device(&self) -> Option<PathBuf> {
        let out = try_check(
            self.ns
                .command("findmnt")
                .args(["-n", "-o", "SOURCE", "-M"])
                .arg(&self.mountpoint),
        )
        .ok()?;
        let s = out.trim();
        (!s.is_empty()).then(|| PathBuf::from(s))
    }

    fn uuid(&self) -> String {
        check(
            Command::new("blkid")
                .args(["-p", "-s", "UUID", "-o", "value"])
                .arg(&self.image),
        )
        .trim()
        .to_string()
    }

    fn chown(&self, owner: &str) {
        check(
            self.ns
                .command("chown")
                .arg(format!("{owner}:"))
                .arg(&self.mountpoint),
        );
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        self.umount_hard();
        if self.ns.is_remote() {
            let _ = run_timeout(
                self.ns.command("rmdir").arg(&self.mountpoint),
                COMMAND_TIMEOUT,
            );
        }
        if let Some(t) = self.tmp.take() {
            let _ = t.close();
        }
    }
}

/// A btrfs filesystem on a loop image, mounted with `user_subvol_rm_allowed`
/// for its whole life; unmounted and deleted on drop.
pub struct BtrfsVolume {
    img: Image,
}

impl BtrfsVolume {
    /// Components needed.
    pub const COMPONENTS: &'static [Component] =
        &[Component::Root, Component::Loop, Component::Btrfs];

    /// A 512 MiB (sparse) volume on the host.
    pub fn new() -> BtrfsVolume {
        BtrfsVolume::create(DEFAULT_BTRFS_SIZE, Ns::Host)
    }

    /// A volume of `bytes` on the host (below 256 MiB: `--mixed`).
    pub fn with_size(bytes: u64) -> BtrfsVolume {
        BtrfsVolume::create(bytes, Ns::Host)
    }

    pub(crate) fn create(bytes: u64, ns: Ns) -> BtrfsVolume {
        let label = format!("nbkpbt-{}", unique_tag());
        let img = Image::create(Fs::Btrfs, bytes, &label, None, ns);
        if let Err(e) = img.mount(false) {
            panic!("mount btrfs volume: {e}");
        }
        BtrfsVolume { img }
    }

    /// Mountpoint (on the remote, if created by a remote host).
    pub fn path(&self) -> &Path {
        &self.img.mountpoint
    }

    pub fn image(&self) -> &Path {
        &self.img.image
    }

    pub fn label(&self) -> &str {
        &self.img.label
    }

    pub fn uuid(&self) -> String {
        self.img.uuid()
    }

    pub fn is_remote(&self) -> bool {
        self.img.ns.is_remote()
    }

    /// Give the volume's top directory to `user` (e.g. [`super::remote::TEST_USER`])
    /// so a non-root user can create and delete subvolumes in it.
    pub fn chown(&self, user: &str) {
        self.img.chown(user);
    }

    /// A command run in the volume's mount namespace (host or remote).
    pub fn command(&self, program: &str) -> Command {
        self.img.ns.command(program)
    }
}

impl Default for BtrfsVolume {
    fn default() -> Self {
        BtrfsVolume::new()
    }
}

/// A removable drive: a labelled loop image that tests plug (mount) and
/// unplug (umount). The mountpoint directory stays when unplugged — empty,
/// on the parent filesystem, exactly the trap a backup tool must detect.
pub struct Drive {
    img: Image,
    read_only: AtomicBool,
    plugged: AtomicBool,
}

/// Fills a drive before its first plug.
type Populate = Box<dyn FnOnce(&Path)>;

/// Builder for [`Drive`]; start with [`Drive::builder`].
pub struct DriveBuilder {
    label: String,
    bytes: u64,
    fs: Fs,
    read_only: bool,
    plugged: bool,
    mountpoint: Option<PathBuf>,
    populate: Option<Populate>,
    ns: Ns,
}

impl DriveBuilder {
    /// Use exactly this label (default: the prefix plus a unique tag, so
    /// `blkid -L` is unambiguous across parallel tests). ext4: ≤ 16 bytes.
    pub fn exact_label(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }

    pub fn size(mut self, bytes: u64) -> Self {
        self.bytes = bytes;
        self
    }

    /// btrfs instead of ext4 (mounted with `user_subvol_rm_allowed`).
    pub fn btrfs(mut self) -> Self {
        self.fs = Fs::Btrfs;
        if self.bytes < 128 * MIB {
            self.bytes = 128 * MIB;
        }
        self
    }

    /// Mount read-only (writes fail with EROFS).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Do not plug it in at creation.
    pub fn unplugged(mut self) -> Self {
        self.plugged = false;
        self
    }

    /// Mount here instead of a fresh temporary directory (created if missing;
    /// host drives only, or a path on the remote for remote drives).
    pub fn mountpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.mountpoint = Some(path.into());
        self
    }

    /// Fill the drive before it is first plugged (mounted read-write for
    /// this, whatever `read_only` says). The closure gets the mountpoint; for
    /// remote drives it runs on the host against a host-side mount.
    pub fn populate(mut self, f: impl FnOnce(&Path) + 'static) -> Self {
        self.populate = Some(Box::new(f));
        self
    }

    pub(crate) fn remote_ns(mut self, ns: Ns) -> Self {
        self.ns = ns;
        self
    }

    pub fn build(self) -> Drive {
        let img = Image::create(self.fs, self.bytes, &self.label, self.mountpoint, self.ns);
        if let Some(f) = self.populate {
            // Fill it through a temporary host-side mount, then release it.
            let tmp = temp_dir("populate");
            let mnt = tmp.path().join("mnt");
            std::fs::create_dir(&mnt).unwrap();
            check(
                Command::new("mount")
                    .args(["-t", self.fs.name(), "-o", self.fs.mount_options()])
                    .arg(&img.image)
                    .arg(&mnt),
            );
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mnt)));
            let _ = run_timeout(Command::new("umount").arg(&mnt), COMMAND_TIMEOUT);
            if let Err(p) = result {
                std::panic::resume_unwind(p);
            }
        }
        Drive::finish(img, self.read_only, self.plugged)
    }
}

impl Drive {
    /// Components needed for an ext4 drive (add [`Component::Btrfs`] for btrfs).
    pub const COMPONENTS: &'static [Component] =
        &[Component::Root, Component::Loop, Component::Ext4];

    /// A builder: 64 MiB ext4, plugged, label `<prefix≤8>-<unique>`.
    pub fn builder(label_prefix: &str) -> DriveBuilder {
        let prefix: String = label_prefix.chars().take(8).collect();
        DriveBuilder {
            label: format!("{prefix}-{}", unique_tag()),
            bytes: DEFAULT_DRIVE_SIZE,
            fs: Fs::Ext4,
            read_only: false,
            plugged: true,
            mountpoint: None,
            populate: None,
            ns: Ns::Host,
        }
    }

    /// A plugged 64 MiB ext4 drive.
    pub fn new(label_prefix: &str) -> Drive {
        Drive::builder(label_prefix).build()
    }

    /// A plugged 2 MiB ext4 drive that runs out of space (ENOSPC) quickly.
    pub fn tiny(label_prefix: &str) -> Drive {
        Drive::builder(label_prefix).size(TINY_DRIVE_SIZE).build()
    }

    /// A plugged read-only drive, filled by `populate` first.
    pub fn read_only(label_prefix: &str, populate: impl FnOnce(&Path) + 'static) -> Drive {
        Drive::builder(label_prefix)
            .read_only()
            .populate(populate)
            .build()
    }

    fn finish(img: Image, read_only: bool, plugged: bool) -> Drive {
        let d = Drive {
            img,
            read_only: AtomicBool::new(read_only),
            plugged: AtomicBool::new(false),
        };
        if plugged {
            d.plug();
        }
        d
    }

    /// Mount it (panics if that fails or it is already plugged).
    pub fn plug(&self) {
        if let Err(e) = self.try_plug() {
            panic!("plug drive {}: {e}", self.img.label);
        }
    }

    pub fn try_plug(&self) -> Result<(), String> {
        if self.plugged.load(Ordering::SeqCst) {
            return Err("already plugged".into());
        }
        self.img.mount(self.read_only.load(Ordering::SeqCst))?;
        self.plugged.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Unmount it (panics if that fails, e.g. busy).
    pub fn unplug(&self) {
        if let Err(e) = self.try_unplug() {
            panic!("unplug drive {}: {e}", self.img.label);
        }
    }

    /// Unmount; `Err` (e.g. "target is busy", exit 32) leaves it plugged.
    pub fn try_unplug(&self) -> Result<(), String> {
        self.img.umount()?;
        self.plugged.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Switch between read-only and read-write; if plugged, it is unplugged
    /// and plugged again (a loop device set up read-only cannot be
    /// remounted read-write).
    pub fn set_read_only(&self, ro: bool) {
        let plugged = self.plugged.load(Ordering::SeqCst);
        if plugged {
            self.unplug();
        }
        self.read_only.store(ro, Ordering::SeqCst);
        if plugged {
            self.plug();
        }
    }

    /// Whether the test bed has it plugged.
    pub fn is_plugged(&self) -> bool {
        self.plugged.load(Ordering::SeqCst)
    }

    /// Whether its mountpoint really is a mountpoint now (asks the kernel).
    pub fn is_mounted(&self) -> bool {
        self.img.is_mounted()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.img.mountpoint
    }

    pub fn label(&self) -> &str {
        &self.img.label
    }

    pub fn uuid(&self) -> String {
        self.img.uuid()
    }

    pub fn fs(&self) -> Fs {
        self.img.fs
    }

    pub fn image(&self) -> &Path {
        &self.img.image
    }

    /// The loop device while plugged.
    pub fn device(&self) -> Option<PathBuf> {
        self.img.device()
    }

    pub fn is_remote(&self) -> bool {
        self.img.ns.is_remote()
    }

    /// Give the drive's top directory to `user` (drive must be plugged).
    pub fn chown(&self, user: &str) {
        self.img.chown(user);
    }

    /// A command run in the drive's mount namespace (host or remote).
    pub fn command(&self, program: &str) -> Command {
        self.img.ns.command(program)
    }
}

/// Loop devices currently backed by `image` (`losetup -j`).
pub fn loop_devices_for(image: &Path) -> Vec<String> {
    check(Command::new("losetup").arg("-j").arg(image))
        .lines()
        .filter_map(|l| l.split(':').next().map(str::to_string))
        .collect()
}

/// The block device with this filesystem label, probed afresh:
/// `blkid -c /dev/null -o device -t LABEL=...`. Plain `blkid -L` and
/// `findfs` trust `/run/blkid/blkid.tab`, which goes stale when loop devices
/// are reused (a cached entry is not re-verified for a few seconds), so they
/// miss a drive just plugged and still "find" one just unplugged. There is
/// no udev, so no `/dev/disk/by-label` either.
pub fn device_by_label(label: &str) -> Option<PathBuf> {
    blkid_lookup("LABEL", label)
}

/// The block device with this filesystem UUID (see [`device_by_label`]).
pub fn device_by_uuid(uuid: &str) -> Option<PathBuf> {
    blkid_lookup("UUID", uuid)
}

fn blkid_lookup(tag: &str, value: &str) -> Option<PathBuf> {
    let out = run_timeout(
        Command::new("blkid")
            .args(["-c", "/dev/null", "-o", "device", "-t"])
            .arg(format!("{tag}={value}")),
        COMMAND_TIMEOUT,
    )
    .ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let first = s.lines().next().unwrap_or("").trim();
    (out.status.success() && !first.is_empty()).then(|| PathBuf::from(first))
}
