//! `nbkp ordering graph`: the dependency graph in its three forms.

use std::process::Command;

use indoc::indoc;

const CONFIG: &str = indoc! {"
    volumes:
      laptop: {type: local, path: /home/me}
      usb: {type: local, path: /mnt/usb}
      nas: {type: local, path: /srv/nas}
      cold: {type: local, path: /mnt/cold}
    sync-endpoints:
      docs: {volume: laptop, subdir: docs}
      photos: {volume: laptop, subdir: photos}
      usb-docs: {volume: usb, subdir: docs, hard-link-snapshots: {enabled: true}}
      nas-docs: {volume: nas, subdir: docs}
      cold-docs: {volume: cold, subdir: docs}
      usb-photos: {volume: usb, subdir: photos}
      nas-photos: {volume: nas, subdir: photos}
    syncs:
      usb-to-nas: {source: usb-docs, destination: nas-docs}
      docs-to-usb: {source: docs, destination: usb-docs}
      usb-to-cold: {source: usb-docs, destination: cold-docs}
      photos-to-usb: {source: photos, destination: usb-photos}
      photos-to-nas: {source: usb-photos, destination: nas-photos, enabled: false}
"};

fn graph(args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["ordering", "graph", "-c"])
        .arg(&cfg)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn tree() {
    let (code, out) = graph(&[]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        indoc! {"
            docs-to-usb  (docs → usb-docs)
            ├─ usb-to-nas  (usb-docs → nas-docs)
            └─ usb-to-cold  (usb-docs → cold-docs)
            photos-to-usb  (photos → usb-photos)

            Disabled (not run): photos-to-nas

            Run order: docs-to-usb, photos-to-usb, usb-to-nas, usb-to-cold
        "}
    );
}

#[test]
fn mermaid() {
    let (code, out) = graph(&["-f", "mermaid"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        indoc! {r#"
            flowchart LR
              s0["docs-to-usb<br/>docs → usb-docs"]
              s1["photos-to-usb<br/>photos → usb-photos"]
              s2["usb-to-nas<br/>usb-docs → nas-docs"]
              s3["usb-to-cold<br/>usb-docs → cold-docs"]
              s0 --> s2
              s0 --> s3
              d0["photos-to-nas (disabled)<br/>usb-photos → nas-photos"]:::disabled
              classDef disabled stroke-dasharray: 5 5
        "#}
    );
}

#[test]
fn json() {
    let (code, out) = graph(&["-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["order"],
        serde_json::json!(["docs-to-usb", "photos-to-usb", "usb-to-nas", "usb-to-cold"])
    );
    assert_eq!(v["syncs"][2]["after"], "docs-to-usb");
    assert_eq!(v["syncs"][2]["generation"], 1);
    assert_eq!(v["syncs"][0]["after"], serde_json::Value::Null);
    assert_eq!(v["disabled"], serde_json::json!(["photos-to-nas"]));
}
