//! Compare two directory trees: entry types, file content, permission bits,
//! symlink targets and hard-link structure (optionally mtime and owner).
//! The root directories' own metadata is ignored unless asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What kind of entry, with the type-specific payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File { len: u64 },
    Dir,
    Symlink(PathBuf),
    Fifo,
    Socket,
    Device,
}

/// One scanned entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits incl. setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    pub nlink: u64,
    dev_ino: (u64, u64),
}

/// A scanned tree: relative path → entry (the root is `""`).
pub type Scan = BTreeMap<PathBuf, Entry>;

/// Walk `root` (without following symlinks).
pub fn scan(root: &Path) -> Scan {
    let mut out = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let abs = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let md = fs::symlink_metadata(&abs).unwrap_or_else(|e| panic!("stat {abs:?}: {e}"));
        let ft = md.file_type();
        let kind = if ft.is_symlink() {
            Kind::Symlink(fs::read_link(&abs).unwrap())
        } else if ft.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&abs)
                .unwrap_or_else(|e| panic!("read_dir {abs:?}: {e}"))
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                todo.push(rel.join(n));
            }
            Kind::Dir
        } else if ft.is_file() {
            Kind::File { len: md.len() }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_socket() {
            Kind::Socket
        } else {
            Kind::Device
        };
        out.insert(
            rel,
            Entry {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: (md.mtime(), md.mtime_nsec()),
                nlink: md.nlink(),
                dev_ino: (md.dev(), md.ino()),
            },
        );
    }
    out
}

/// The differences found; `Display` lists them one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDiff {
    pub a: PathBuf,
    pub b: PathBuf,
    pub differences: Vec<String>,
}

impl fmt::Display for TreeDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trees differ: a = {}, b = {} ({} difference(s))",
            self.a.display(),
            self.b.display(),
            self.differences.len()
        )?;
        for d in self.differences.iter().take(60) {
            writeln!(f, "  {d}")?;
        }
        if self.differences.len() > 60 {
            writeln!(f, "  ... and {} more", self.differences.len() - 60)?;
        }
        Ok(())
    }
}

impl std::error::Error for TreeDiff {}

/// What to compare. Defaults: types, content, mode, symlink targets and
/// hard-link structure; not mtime, not owner, not the roots' metadata.
#[derive(Debug, Clone)]
pub struct Compare {
    mtime: bool,
    dir_mtime: bool,
    owner: bool,
    mode: bool,
    hard_links: bool,
    root_metadata: bool,
    exclude: BTreeSet<PathBuf>,
}

impl Default for Compare {
    fn default() -> Self {
        Compare {
            mtime: false,
            dir_mtime: false,
            owner: false,
            mode: true,
            hard_links: true,
            root_metadata: false,
            exclude: BTreeSet::new(),
        }
    }
}

impl Compare {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also compare mtimes (whole seconds) of files and symlinks.
    pub fn mtime(mut self, on: bool) -> Self {
        self.mtime = on;
        self
    }

    /// Also compare directories' mtimes (whole seconds).
    pub fn dir_mtime(mut self, on: bool) -> Self {
        self.dir_mtime = on;
        self
    }

    /// Also compare uid/gid.
    pub fn owner(mut self, on: bool) -> Self {
        self.owner = on;
        self
    }

    pub fn mode(mut self, on: bool) -> Self {
        self.mode = on;
        self
    }

    pub fn hard_links(mut self, on: bool) -> Self {
        self.hard_links = on;
        self
    }

    /// Also compare the two root directories' mode/owner/mtime.
    pub fn root_metadata(mut self, on: bool) -> Self {
        self.root_metadata = on;
        self
    }

    /// Ignore this relative path (and everything below it) in both trees.
    pub fn exclude(mut self, rel: impl Into<PathBuf>) -> Self {
        self.exclude.insert(rel.into());
        self
    }

    fn excluded(&self, rel: &Path) -> bool {
        self.exclude.iter().any(|e| rel.starts_with(e))
    }

    /// Compare `a` with `b`.
    pub fn run(&self, a: &Path, b: &Path) -> Result<(), TreeDiff> {
        let sa = scan(a);
        let sb = scan(b);
        let mut diffs = Vec::new();
        let show = |p: &Path| -> String {
            if p.as_os_str().is_empty() {
                "<root>".to_string()
            } else {
                format!("{:?}", p)
            }
        };
        for (rel, ea) in &sa {
            if self.excluded(rel) && !rel.as_os_str().is_empty() {
                continue;
            }
            let Some(eb) = sb.get(rel) else {
                diffs.push(format!(
                    "only in a: {} ({})",
                    show(rel),
                    kind_name(&ea.kind)
                ));
                continue;
            };
            let is_root = rel.as_os_str().is_empty();
            match (&ea.kind, &eb.kind) {
                (Kind::File { len: la }, Kind::File { len: lb }) => {
                    if la != lb {
                        diffs.push(format!("size differs: {}: {la} vs {lb}", show(rel)));
                    } else if let Some(off) = first_difference(&a.join(rel), &b.join(rel)) {
                        diffs.push(format!(
                            "content differs: {} (first at byte {off})",
                            show(rel)
                        ));
                    }
                }
                (Kind::Symlink(ta), Kind::Symlink(tb)) => {
                    if ta != tb {
                        diffs.push(format!(
                            "symlink target differs: {}: {:?} vs {:?}",
                            show(rel),
                            ta,
                            tb
                        ));
                    }
                }
                (ka, kb) if ka == kb => {}
                (ka, kb) => {
                    diffs.push(format!(
                        "type differs: {}: {} vs {}",
                        show(rel),
                        kind_name(ka),
                        kind_name(kb)
                    ));
                    continue;
                }
            }
            if is_root && !self.root_metadata {
                continue;
            }
            let symlink = matches!(ea.kind, Kind::Symlink(_));
            if self.mode && !symlink && ea.mode != eb.mode {
                diffs.push(format!(
                    "mode differs: {}: {:o} vs {:o}",
                    show(rel),
                    ea.mode,
                    eb.mode
                ));
            }
            if self.owner && (ea.uid, ea.gid) != (eb.uid, eb.gid) {
                diffs.push(format!(
                    "owner differs: {}: {}:{} vs {}:{}",
                    show(rel),
                    ea.uid,
                    ea.gid,
                    eb.uid,
                    eb.gid
                ));
            }
            let dir = ea.kind == Kind::Dir;
            if ((dir && self.dir_mtime) || (!dir && self.mtime)) && ea.mtime.0 != eb.mtime.0 {
                diffs.push(format!(
                    "mtime differs: {}: {} vs {}",
                    show(rel),
                    ea.mtime.0,
                    eb.mtime.0
                ));
            }
        }
        for (rel, eb) in &sb {
            if self.excluded(rel) && !rel.as_os_str().is_empty() {
                continue;
            }
            if !sa.contains_key(rel) {
                diffs.push(format!(
                    "only in b: {} ({})",
                    show(rel),
                    kind_name(&eb.kind)
                ));
            }
        }
        if self.hard_links {
            let ga = link_groups(&sa, self);
            let gb = link_groups(&sb, self);
            for (rel, links_a) in &ga {
                if let Some(links_b) = gb.get(rel) {
                    if links_a != links_b {
                        diffs.push(format!(
                            "hard links differ: {}: in a linked with {:?}, in b with {:?}",
                            show(rel),
                            links_a,
                            links_b
                        ));
                    }
                }
            }
        }
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(TreeDiff {
                a: a.to_path_buf(),
                b: b.to_path_buf(),
                differences: diffs,
            })
        }
    }
}

/// For each non-directory path: the other paths in the same tree that are
/// the same inode.
fn link_groups(scan: &Scan, c: &Compare) -> HashMap<PathBuf, BTreeSet<PathBuf>> {
    let mut by_inode: HashMap<(u64, u64), BTreeSet<PathBuf>> = HashMap::new();
    for (rel, e) in scan {
        if e.kind != Kind::Dir && !c.excluded(rel) {
            by_inode.entry(e.dev_ino).or_default().insert(rel.clone());
        }
    }
    let mut out = HashMap::new();
    for group in by_inode.values() {
        for p in group {
            let mut others = group.clone();
            others.remove(p);
            out.insert(p.clone(), others);
        }
    }
    out
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::File { .. } => "file",
        Kind::Dir => "directory",
        Kind::Symlink(_) => "symlink",
        Kind::Fifo => "fifo",
        Kind::Socket => "socket",
        Kind::Device => "device",
    }
}

/// Offset of the first differing byte of two equally long files.
fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    let mut fa = fs::File::open(a).unwrap_or_else(|e| panic!("open {a:?}: {e}"));
    let mut fb = fs::File::open(b).unwrap_or_else(|e| panic!("open {b:?}: {e}"));
    let mut ba = vec![0u8; 1 << 16];
    let mut bb = vec![0u8; 1 << 16];
    let mut off = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            let i = ba[..na]
                .iter()
                .zip(&bb[..nb])
                .position(|(x, y)| x != y)
                .unwrap_or(na.min(nb));
            return Some(off + i as u64);
        }
        if na == 0 {
            return None;
        }
        off += na as u64;
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    n
}

/// Compare with the defaults.
pub fn compare(a: &Path, b: &Path) -> Result<(), TreeDiff> {
    Compare::default().run(a, b)
}

/// Panic with a readable diff unless the trees match (defaults).
#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path) {
    if let Err(d) = compare(a, b) {
        panic!("{d}");
    }
}
