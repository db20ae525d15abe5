use super::super::{parse_slowly, Value};
use super::read as quick;

/// Both readers agree on `text`, or the quick one gives up; returns
/// whether it read it.
fn agree(text: &str) -> bool {
    let Some(node) = quick(text) else {
        return false;
    };
    let slow = parse_slowly(text).expect("yaml-rust2 reads what the quick reader reads");
    assert_eq!(Some(&node), slow.as_ref(), "{text}");
    true
}

#[test]
fn the_quick_reader_reads_the_usual_shape_as_yaml_rust2_does() {
    let read = [
        "a: b\n",
        "a: b",
        "a: 1\nb: true\nc: ~\nd: 1.5\ne: yes\nf: 0x1f\n",
        "# top\na:   b   # c\n\n  # indented comment\nd: e f  g\n",
        "top:\n  inner:\n    deep: x\n  next: y\nlast: z\n",
        "  indented: root\n  second: 2\n",
        "a: {b: c, d: {e: f}, g: [h, 'i j', \"k l\"]}\n",
        "a: {b: c d , e: 'f'}\nb: [1, 2 ,3]\n",
        "a: [[x], [y, {z: w}]]\n",
        "a: \"x # not a comment\"\nb: 'y: z'\n",
        "k-e_y.1: /path/to/x@host+1=2%3~\n",
        "a: b\na: c\n",
        "x:\n    y: 1\n    z:\n      w: 1\n",
        "a: x\n\n\n",
        "a:\n  b: c\n# end\n",
        "a: b   \nc: 'x'   # y\nd:   [x, 'y']  # z\n",
        "a: {b: [\"c d\", e], f: 'g'}\n    # x\nh: {i: j}\n",
    ];
    let given_up = [
        "",
        "# only a comment\n",
        "a:\n",
        "a:\nb: c\n",
        "a: b\n  c: d\n",
        "a:b\n",
        "a: {}\n",
        "a: []\n",
        "a: {b: c,}\n",
        "a: {b:c}\n",
        "a: [b, c\n  , d]\n",
        "- a\n- b\n",
        "a:\n  - b\n",
        "x:\n    y: 1\n    z:\n      - 1\n",
        "a: &x b\nc: *x\n",
        "a: !!str 1\n",
        "a: \"b\\n\"\n",
        "a: 'it''s'\n",
        "a: b: c\n",
        "a: b#c\n",
        "a: http://x\n",
        "a: -1\n",
        "a: é\n",
        "a:\tb\n",
        "a: b\r\n",
        "---\na: b\n",
        "a: b\n...\n",
        "a: |\n  x\n",
        "a: >\n  x\n",
        "a: b\n  c\n",
        "? a\n: b\n",
        "a: [b] c\n",
        "a: 'b' c\n",
        "  a: b\nc: d\n",
        "a: x, y\n",
        "a: {b: c}}\n",
        "a: @x\n",
        "a: %x\n",
        "a: `x`\n",
        "a:\n    b: 1\n  c: 2\n",
        "a: {b: c}, d\n",
        "a: [b]]\n",
    ];
    for text in read {
        assert!(agree(text), "the quick reader gave up on {text:?}");
    }
    for text in given_up {
        assert!(quick(text).is_none(), "the quick reader read {text:?}");
    }
}

#[test]
fn the_quick_reader_agrees_on_every_config_of_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    dirs.push(path);
                }
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 20, "{files:?}");
    let mut read = 0;
    for path in &files {
        // Some test configs are deliberately not UTF-8.
        if let Ok(text) = std::fs::read_to_string(path) {
            read += usize::from(agree(&text));
        }
    }
    // The generated configs of the benchmarks are of the usual shape too.
    let mut big = String::from(
        "ssh-endpoints:\n  nas: {host: nas.lan, user: backup}\nvolumes:\n  laptop: {type: local, path: /home/me}\n  nas: {type: remote, ssh-endpoint: nas, path: /srv/backups}\nsync-endpoints:\n",
    );
    for i in 0..50 {
        big.push_str(&format!(
            "  src-{i}: {{volume: laptop, subdir: data/{i}}}\n  dst-{i}: {{volume: nas, subdir: backup/{i}, btrfs-snapshots: {{enabled: true, max-snapshots: 30}}}}\n"
        ));
    }
    big.push_str("syncs:\n");
    for i in 0..50 {
        big.push_str(&format!(
            "  sync-{i}: {{source: src-{i}, destination: dst-{i}, filters: [\"- *.tmp\"]}}\n"
        ));
    }
    assert!(agree(&big));
    assert!(read > 0, "no config of the repository was read quickly");
    eprintln!("read quickly: {read} of {} configs", files.len());
}

#[test]
fn nodes_keep_their_positions() {
    let node = quick("a:\n  b: {c: 'd'}\n").expect("read");
    let Value::Map(entries) = &node.value else {
        panic!("a mapping")
    };
    let (key, value) = &entries[0];
    assert_eq!((key.pos.line, key.pos.column), (1, 1));
    assert_eq!((value.pos.line, value.pos.column), (2, 3));
}
