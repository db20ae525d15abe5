//! Source trees that break naive backup tools: awkward names, hard links,
//! symlinks, empty directories, unusual modes, large and sparse files.

use std::ffi::OsString;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File names that need care in shells, rsync and path handling.
pub fn awkward_names() -> Vec<OsString> {
    let mut v: Vec<OsString> = [
        "with space",
        "  leading and trailing  ",
        "single'quote",
        "double\"quote",
        "$(touch INJECTED)",
        "`touch INJECTED`",
        "$HOME and ${PATH}",
        "semi;colon&amp|pipe",
        "back\\slash",
        "new\nline",
        "tab\there",
        "-leading-dash",
        "--rsync-looking-option",
        "*glob?[ab]",
        "~tilde",
        "#hash",
        "!bang",
        "<redirect>",
        "colon:name",
        "brace{a,b}",
        "percent%s%n",
        ".hidden",
        "unicode-ünïcödé-日本語-🎉",
        "e\u{301}-combining",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    // Longest allowed component: 255 bytes, ASCII and multi-byte.
    v.push(OsString::from("L".repeat(255)));
    v.push(OsString::from(format!("{}x", "é".repeat(127))));
    // Not valid UTF-8 (Latin-1 é).
    v.push(OsString::from_vec(b"latin1-caf\xe9".to_vec()));
    v
}

/// What [`awkward_tree`] created (relative to its root).
#[derive(Debug, Clone)]
pub struct AwkwardTree {
    pub root: PathBuf,
    /// Every awkward name, present as a file at the top and as a directory
    /// (with a file inside) under `dirs/`.
    pub names: Vec<OsString>,
    /// Paths that are all one inode (nlink = len).
    pub hard_links: Vec<PathBuf>,
    /// (link, target) pairs, some dangling, one absolute, one to a directory.
    pub symlinks: Vec<(PathBuf, PathBuf)>,
    pub empty_dirs: Vec<PathBuf>,
    pub large_file: PathBuf,
    pub sparse_file: PathBuf,
}

/// Sizes for [`awkward_tree_with`].
#[derive(Debug, Clone, Copy)]
pub struct TreeOptions {
    /// Size of the pseudo-random `large.bin`.
    pub large_bytes: u64,
    /// Apparent size of `sparse.img` (only a few MiB are data).
    pub sparse_bytes: u64,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            large_bytes: 8 * 1024 * 1024,
            sparse_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Build the awkward tree in `root` (created if missing) with default sizes.
pub fn awkward_tree(root: &Path) -> AwkwardTree {
    awkward_tree_with(root, TreeOptions::default())
}

/// Build the awkward tree in `root`.
pub fn awkward_tree_with(root: &Path, opts: TreeOptions) -> AwkwardTree {
    fs::create_dir_all(root).unwrap();
    let names = awkward_names();
    for n in &names {
        write_file(&root.join(n), n.as_bytes());
        let d = root.join("dirs").join(n);
        fs::create_dir_all(&d).unwrap();
        write_file(&d.join("inside"), b"inside an awkward directory\n");
    }
    write_file(&root.join("plain.txt"), b"plain\n");
    write_file(&root.join("empty-file"), b"");

    // A deep path (> 255 bytes in total).
    let mut deep = root.join("deep");
    for i in 0..40 {
        deep.push(format!("level-{i:02}"));
    }
    fs::create_dir_all(&deep).unwrap();
    write_file(&deep.join("bottom.txt"), b"bottom\n");

    let empty_dirs = vec![
        PathBuf::from("empty-dir"),
        PathBuf::from("empty dir with space"),
        PathBuf::from("nested/empty/dirs"),
    ];
    for d in &empty_dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }

    // Hard links: one inode, four names in three directories.
    let hard_links = vec![
        PathBuf::from("hardlinks/original"),
        PathBuf::from("hardlinks/link one"),
        PathBuf::from("hardlinks/-link-two"),
        PathBuf::from("elsewhere/link three"),
    ];
    write_file(&root.join(&hard_links[0]), b"one inode, many names\n");
    for l in &hard_links[1..] {
        fs::create_dir_all(root.join(l).parent().unwrap()).unwrap();
        fs::hard_link(root.join(&hard_links[0]), root.join(l)).unwrap();
    }
    // A second, separate hard-link pair.
    write_file(&root.join("hardlinks/pair-a"), b"pair\n");
    fs::hard_link(root.join("hardlinks/pair-a"), root.join("hardlinks/pair b")).unwrap();

    let symlinks: Vec<(PathBuf, PathBuf)> = vec![
        ("symlinks/relative", "../plain.txt"),
        ("symlinks/to dir", "../empty-dir"),
        ("symlinks/dangling", "does/not/exist"),
        ("symlinks/absolute", "/nonexistent/nbkp/absolute target"),
        ("symlinks/with space", "../dirs/with space/inside"),
        ("symlinks/-dash", "../-leading-dash"),
        ("symlinks/self-loop", "self-loop"),
        ("symlinks/unicode-日本", "../unicode-ünïcödé-日本語-🎉"),
    ]
    .into_iter()
    .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
    .collect();
    fs::create_dir_all(root.join("symlinks")).unwrap();
    for (l, t) in &symlinks {
        symlink(t, root.join(l)).unwrap();
    }

    // Modes.
    fs::create_dir_all(root.join("modes")).unwrap();
    for (name, mode) in [
        ("executable", 0o755),
        ("read-only", 0o444),
        ("private", 0o600),
        ("group-write", 0o664),
        ("setuid-like", 0o4755),
    ] {
        let p = root.join("modes").join(name);
        write_file(&p, name.as_bytes());
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
    let pd = root.join("modes/private-dir");
    fs::create_dir_all(&pd).unwrap();
    write_file(&pd.join("secret"), b"secret\n");
    fs::set_permissions(&pd, fs::Permissions::from_mode(0o700)).unwrap();

    let large_file = PathBuf::from("large.bin");
    large_file_at(&root.join(&large_file), opts.large_bytes);
    let sparse_file = PathBuf::from("sparse.img");
    sparse_file_at(&root.join(&sparse_file), opts.sparse_bytes);

    AwkwardTree {
        root: root.to_path_buf(),
        names,
        hard_links,
        symlinks,
        empty_dirs,
        large_file,
        sparse_file,
    }
}

/// Write a file, creating parent directories.
pub fn write_file(path: &Path, contents: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

/// A file of `bytes` deterministic pseudo-random (incompressible) bytes.
pub fn large_file_at(path: &Path, bytes: u64) {
    let mut f = fs::File::create(path).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ bytes;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = bytes;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
}

/// A sparse file of apparent size `bytes` with 64 KiB of data at the start,
/// the middle and the end.
pub fn sparse_file_at(path: &Path, bytes: u64) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    for off in [0, bytes / 2, bytes.saturating_sub(chunk.len() as u64)] {
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(&chunk[..chunk.len().min((bytes - off) as usize)])
            .unwrap();
    }
    f.set_len(bytes).unwrap();
}

/// Bytes actually allocated on disk (`st_blocks * 512`).
pub fn allocated_bytes(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().blocks() * 512
}
