//! What a valid config means once loaded: the same meaning as in the Python
//! nbkp (normalisation, `extends`, filters, coercions), checked in-process.

use std::path::Path;

use indoc::indoc;
use nbkp::config::paths::Home;
use nbkp::config::{load_str, Config, CredentialProvider, Loaded, SnapshotMode, VolumeLocation};
use nbkp::retention::{Count, Policy};

fn home() -> Home {
    Home {
        current: Some("/home/me".into()),
        passwd: Some("bob:x:1000:1000::/home/bob:/bin/sh\n".into()),
    }
}

fn load(text: &str) -> Loaded {
    match load_str(text, Path::new("test.yaml"), &home()) {
        Ok(l) => l,
        Err(e) => panic!("config did not load:\n{}", e.render()),
    }
}

fn config(text: &str) -> Config {
    load(text).config
}

fn error_types(text: &str) -> Vec<String> {
    match load_str(text, Path::new("test.yaml"), &home()) {
        Ok(_) => panic!("config loaded but should not have"),
        Err(e) => e.errors().map(|d| d.kind.to_string()).collect(),
    }
}

const TWO_VOLUMES: &str = indoc! {"
    volumes:
      a: {type: local, path: /a}
      b: {type: local, path: /b}
    sync-endpoints:
      ea: {volume: a}
      eb: {volume: b}
"};

#[test]
fn empty_mapping_is_a_valid_empty_config() {
    let c = config("{}\n");
    assert!(c.syncs.is_empty() && c.volumes.is_empty());
    assert_eq!(c.credential_provider, CredentialProvider::Keyring);
}

#[test]
fn local_paths_are_expanded_and_normalised_remote_paths_only_trimmed() {
    let c = config(indoc! {"
        ssh-endpoints:
          h: {host: h}
        volumes:
          home: {type: local, path: '~'}
          sub: {type: local, path: ~/x/}
          bob: {type: local, path: ~bob/data}
          messy: {type: local, path: //a//b/./c/../d/}
          root: {type: local, path: /}
          r1: {type: remote, ssh-endpoint: h, path: ~/backups/}
          r2: {type: remote, ssh-endpoint: h, path: ///}
          r3: {type: remote, ssh-endpoint: h, path: /a//b/./}
    "});
    let path = |v: &str| c.volumes[v].path.clone().unwrap();
    assert_eq!(path("home"), "/home/me");
    assert_eq!(path("sub"), "/home/me/x");
    assert_eq!(path("bob"), "/home/bob/data");
    assert_eq!(path("messy"), "//a/b/c/../d");
    assert_eq!(path("root"), "/");
    assert_eq!(path("r1"), "~/backups");
    assert_eq!(path("r2"), "/");
    assert_eq!(path("r3"), "/a//b/.");
}

#[test]
fn subdir_normalisation() {
    let c = config(indoc! {"
        volumes:
          a: {type: local, path: /a}
          b: {type: local, path: /b}
        sync-endpoints:
          x: {volume: a, subdir: //x/y//}
          r: {volume: b, subdir: /}
    "});
    assert_eq!(c.sync_endpoints["x"].subdir.as_deref(), Some("x/y"));
    assert_eq!(c.sync_endpoints["r"].subdir, None);
    assert_eq!(c.endpoint_path(&c.sync_endpoints["x"]).unwrap(), "/a/x/y");
    assert_eq!(c.endpoint_path(&c.sync_endpoints["r"]).unwrap(), "/b");
}

#[test]
fn filters_normalise_to_rsync_rules() {
    let c = config(&format!(
        "{TWO_VOLUMES}{}",
        indoc! {r#"
        syncs:
          s:
            source: ea
            destination: eb
            filters:
              - include: "*.jpg"
              - exclude: "*.tmp"
              - merge: ~/rules.txt
              - dir-merge: .rsync-filter
              - dir-merge: {path: .nbkp-filter, exclude-self: true}
              - "H .git"
              - {include: "*.c", exclude: "*"}
            filter-file: ~/f.txt
    "#}
    ));
    let s = &c.syncs["s"];
    assert_eq!(
        s.filters,
        [
            "+ *.jpg",
            "- *.tmp",
            "merge /home/me/rules.txt",
            "dir-merge .rsync-filter",
            "dir-merge .nbkp-filter",
            "- .nbkp-filter",
            "H .git",
            "+ *.c"
        ]
    );
    assert_eq!(s.filter_file.as_deref(), Some("/home/me/f.txt"));
}

#[test]
fn extends_is_a_shallow_merge_and_drops_the_exclusive_partner() {
    let loaded = load(indoc! {"
        ssh-endpoints:
          base:
            host: nas
            user: alice
            key: ~/.ssh/id
            location: home
            proxy-jump: hop
            connection-options: {compress: true, connect-timeout: 3}
          hop: {host: hop}
          child:
            extends: base
            host: nas.example.org
            locations: [travel, office]
            proxy-jumps: [hop]
            connection-options: {forward-agent: true}
        volumes:
          r: {type: remote, ssh-endpoint: child, ssh-endpoints: [child, base], path: /srv}
    "});
    let c = &loaded.config;
    let child = &c.ssh_endpoints["child"];
    assert_eq!(child.host, "nas.example.org");
    assert_eq!(child.user.as_deref(), Some("alice"));
    assert_eq!(child.key.as_deref(), Some("/home/me/.ssh/id"));
    assert_eq!(child.locations, ["travel", "office"]);
    assert_eq!(child.proxy_jumps.len(), 1);
    assert!(child.connection_options.forward_agent);
    assert!(
        !child.connection_options.compress,
        "shallow merge: the parent's options are replaced"
    );
    assert_eq!(child.connection_options.connect_timeout, 10);
    assert_eq!(child.extends.as_deref(), Some("base"));
    // ...and the replacement is pointed out.
    assert!(loaded.warnings.iter().any(|w| w.kind == "shallow-extends"
        && w.loc == ["ssh-endpoints", "child", "connection-options"]));
}

#[test]
fn extends_works_across_several_levels() {
    let c = config(indoc! {"
        ssh-endpoints:
          a: {host: a, port: 2200, user: u}
          b: {extends: a, host: b}
          c: {extends: b, user: v}
        volumes:
          r: {type: remote, ssh-endpoint: c, ssh-endpoints: [a, b, c], path: /srv}
    "});
    let ep = &c.ssh_endpoints["c"];
    assert_eq!(
        (ep.host.as_str(), ep.port, ep.user.as_deref()),
        ("b", 2200, Some("v"))
    );
    assert!(ep.port_explicit, "an inherited port counts as set");
}

#[test]
fn lax_coercions_match_the_python_nbkp() {
    let c = config(indoc! {r#"
        ssh-endpoints:
          h:
            host: h
            port: "2200"
            connection-options: {compress: yes, forward-agent: "on", connect-timeout: "7"}
        volumes:
          a: {type: local, path: /a}
          b: {type: local, path: /b}
          r: {type: remote, ssh-endpoint: h, path: /r}
        sync-endpoints:
          ea: {volume: a}
          eb: {volume: b}
          er: {volume: r, hard-link-snapshots: {enabled: 1, max-snapshots: "3"}}
        syncs:
          s1: {source: ea, destination: eb, enabled: off}
          s2: {source: eb, destination: er, enabled: 1}
    "#});
    let h = &c.ssh_endpoints["h"];
    assert_eq!(h.port, 2200);
    assert!(h.connection_options.compress && h.connection_options.forward_agent);
    assert_eq!(h.connection_options.connect_timeout, 7);
    assert_eq!(
        c.sync_endpoints["er"].snapshots,
        SnapshotMode::HardLink {
            retention: Policy {
                max_snapshots: Some(3),
                ..Policy::default()
            }
        }
    );
    assert!(!c.syncs["s1"].enabled);
    assert!(c.syncs["s2"].enabled);
}

#[test]
fn snake_case_keys_are_accepted() {
    let c = config(indoc! {"
        volumes:
          a: {type: local, path: /a}
          b: {type: local, path: /b}
        sync_endpoints:
          ea: {volume: a}
          eb: {volume: b, btrfs_snapshots: {enabled: true, max_snapshots: 5}}
        syncs:
          s: {source: ea, destination: eb, rsync_options: {extra_options: [-H]}}
    "});
    assert_eq!(
        c.sync_endpoints["eb"].snapshots,
        SnapshotMode::Btrfs {
            retention: Policy {
                max_snapshots: Some(5),
                ..Policy::default()
            }
        }
    );
    assert_eq!(c.syncs["s"].rsync_options.extra_options, ["-H"]);
}

#[test]
fn retention_blocks_are_read() {
    let c = config(indoc! {"
        volumes:
          a: {type: local, path: /a}
          b: {type: local, path: /b}
        sync-endpoints:
          ea: {volume: a}
          eb:
            volume: b
            hard-link-snapshots:
              enabled: true
              max-snapshots: 40
              retention:
                keep-last: 3
                keep-within: 2d
                keep-daily: 7
                keep-weekly: 4
                keep-monthly: 12
                keep-yearly: all
                max-age: 5y
        syncs:
          s: {source: ea, destination: eb}
    "});
    let p = c.sync_endpoints["eb"].snapshots.retention();
    assert_eq!(
        p,
        Policy {
            max_snapshots: Some(40),
            keep_last: Some(3),
            keep_within: Some(2 * 86_400),
            keep_hourly: None,
            keep_daily: Some(Count::N(7)),
            keep_weekly: Some(Count::N(4)),
            keep_monthly: Some(Count::N(12)),
            keep_yearly: Some(Count::All),
            max_age: Some(5 * 365 * 86_400),
        }
    );
    assert_eq!(
        p.describe(),
        "keep last 3, within 2d, daily 7, weekly 4, monthly 12, yearly all; at most 40; none older than 5y"
    );
}

#[test]
fn yaml_anchors_and_merge_keys_work() {
    let c = config(indoc! {"
        ssh-endpoints:
          base: &base {host: nas, user: backup, port: 2222}
          other:
            <<: *base
            host: other
        volumes:
          r: {type: remote, ssh-endpoint: other, ssh-endpoints: [other, base], path: /srv}
    "});
    let o = &c.ssh_endpoints["other"];
    assert_eq!(
        (o.host.as_str(), o.port, o.user.as_deref()),
        ("other", 2222, Some("backup"))
    );
}

#[test]
fn remote_volume_candidates_and_mounts() {
    let c = config(indoc! {"
        ssh-endpoints:
          lan: {host: 10.0.0.2}
          wan: {host: example.org}
        volumes:
          r:
            type: remote
            ssh-endpoint: lan
            ssh-endpoints: [wan, lan]
            mount:
              device-uuid: 0f3c6a52-3d41-4b2e-9d0c-5a6b7c8d9e0f
              encryption: {passphrase-id: disk}
    "});
    let v = &c.volumes["r"];
    assert_eq!(
        v.path, None,
        "a mount-managed volume may leave its path to udisks"
    );
    let VolumeLocation::Remote {
        ssh_endpoint,
        ssh_endpoints,
    } = &v.location
    else {
        panic!("not remote")
    };
    assert_eq!(ssh_endpoint.slug, "lan");
    let candidates: Vec<&str> = v.candidates().iter().map(|r| r.slug.as_str()).collect();
    assert_eq!(candidates, ["wan", "lan"]);
    assert_eq!(ssh_endpoints.len(), 2);
    let enc = v.mount.as_ref().unwrap().encryption.as_ref().unwrap();
    assert_eq!((enc.kind, enc.passphrase_id.as_str()), ("luks", "disk"));
}

#[test]
fn unknown_keys_are_warnings_with_line_and_suggestion() {
    let loaded = load(&format!(
        "{TWO_VOLUMES}syncs:\n  s: {{source: ea, destination: eb, enable: false}}\n"
    ));
    let w: Vec<_> = loaded
        .warnings
        .iter()
        .filter(|w| w.kind == "unknown-key")
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].line, Some(8));
    assert!(
        w[0].message.contains("did you mean `enabled`"),
        "{}",
        w[0].message
    );
    assert!(
        loaded.config.syncs["s"].enabled,
        "the misspelt key is ignored, not guessed"
    );
}

#[test]
fn orphans_are_warnings_only() {
    let loaded = load(indoc! {"
        ssh-endpoints:
          lonely: {host: h}
        volumes:
          unused: {type: local, path: /u}
          a: {type: local, path: /a}
        sync-endpoints:
          spare: {volume: a}
    "});
    let messages: Vec<&str> = loaded.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "SSH endpoint 'lonely' is not referenced by any volume",
            "Volume 'unused' is not referenced by any sync endpoint",
            "Sync endpoint 'spare' is not referenced by any sync",
        ]
    );
}

#[test]
fn nested_paths_on_different_volumes_and_sibling_prefixes_are_fine() {
    config(indoc! {"
        volumes:
          a: {type: local, path: /data}
          b: {type: local, path: /data/inner}
        sync-endpoints:
          x: {volume: a, subdir: ab}
          y: {volume: a, subdir: a}
          z: {volume: b}
        syncs:
          s1: {source: x, destination: y}
          s2: {source: y, destination: z}
    "});
}

#[test]
fn same_server_remote_to_remote_is_allowed() {
    config(indoc! {"
        ssh-endpoints:
          h: {host: h}
        volumes:
          r1: {type: remote, ssh-endpoint: h, path: /a}
          r2: {type: remote, ssh-endpoint: h, path: /b}
        sync-endpoints:
          e1: {volume: r1}
          e2: {volume: r2}
        syncs:
          s: {source: e1, destination: e2}
    "});
}

#[test]
fn problems_in_different_sections_are_all_reported() {
    let types = error_types(indoc! {"
        ssh-endpoints:
          x: {host: h, port: 0}
        volumes:
          a: {type: local}
          r: {type: remote, ssh-endpoint: nope, path: /r}
        sync-endpoints:
          e: {volume: missing}
        syncs:
          s: {source: e, destination: nowhere}
    "});
    assert_eq!(
        types,
        [
            "greater_than_equal",
            "path-required",
            "unknown-reference",
            "unknown-reference",
            "unknown-reference"
        ]
    );
}

#[test]
fn references_to_entries_that_failed_to_decode_are_not_reported_twice() {
    let types = error_types(indoc! {"
        volumes:
          a: {type: nfs, path: /a}
        sync-endpoints:
          e: {volume: a}
    "});
    assert_eq!(types, ["union_tag_invalid"]);
}

#[test]
fn cycles_name_every_sync_on_them() {
    let err = load_str(
        indoc! {"
            volumes:
              a: {type: local, path: /a}
            sync-endpoints:
              ea: {volume: a, subdir: a}
              eb: {volume: a, subdir: b}
              ec: {volume: a, subdir: c}
            syncs:
              ab: {source: ea, destination: eb}
              bc: {source: eb, destination: ec}
              ca: {source: ec, destination: ea}
        "},
        Path::new("t.yaml"),
        &home(),
    )
    .unwrap_err();
    assert_eq!(err.reason, "cyclic-dependency");
    let msg = &err.errors().next().unwrap().message;
    for s in ["ab", "bc", "ca"] {
        assert!(msg.contains(s), "{msg}");
    }
}

#[test]
fn hooks_are_argv_lists_with_the_program_expanded() {
    let mut text = String::from(indoc! {"
        hooks:
          before: [[~/bin/start, '~/not-expanded']]
          on_failure: [[logger, -t, nbkp, '$NBKP_SYNC stays text']]
    "});
    text.push_str(TWO_VOLUMES);
    text.push_str(indoc! {"
        syncs:
          s:
            source: ea
            destination: eb
            hooks:
              after: [[~bob/notify, done], ['true']]
    "});
    let c = config(&text);
    assert_eq!(
        c.hooks.before,
        vec![vec![
            "/home/me/bin/start".to_string(),
            "~/not-expanded".into()
        ]]
    );
    assert!(c.hooks.after.is_empty());
    assert_eq!(c.hooks.on_failure[0][3], "$NBKP_SYNC stays text");
    let s = &c.syncs["s"];
    assert_eq!(
        s.hooks.after,
        vec![
            vec!["/home/bob/notify".to_string(), "done".into()],
            vec!["true".to_string()]
        ]
    );
    assert!(s.hooks.before.is_empty());
}

#[test]
fn a_hook_written_as_one_string_is_refused() {
    let mut text = String::from("hooks: {before: ['notify-send start']}\n");
    text.push_str(TWO_VOLUMES);
    assert_eq!(error_types(&text), ["hook-not-argv"]);
    let mut text = String::from("hooks: {after: [[]]}\n");
    text.push_str(TWO_VOLUMES);
    assert_eq!(error_types(&text), ["hook-empty"]);
}

#[test]
fn rsync_daemon_volumes_decode_with_their_defaults() {
    let c = config(indoc! {"
        ssh-endpoints:
          nas: {host: nas.lan, user: backup}
        volumes:
          direct: {type: rsync-daemon, host: nas.lan, module: m, user: me, password-command: [~/bin/pw, nas]}
          tunnel: {type: rsync-daemon, ssh-endpoint: nas, module: archive}
          home: {type: local, path: /home/me}
        sync-endpoints:
          d: {volume: direct, subdir: x}
          t: {volume: tunnel}
          h: {volume: home, subdir: a}
          h2: {volume: home, subdir: b}
        syncs:
          push: {source: h, destination: d}
          pull: {source: t, destination: h2}
    "});
    let d = c.volumes["direct"].daemon().unwrap();
    assert_eq!(d.port, 873);
    assert_eq!(d.host.as_deref(), Some("nas.lan"));
    assert_eq!(
        d.password_command.as_deref(),
        Some(&["/home/me/bin/pw".to_string(), "nas".into()][..])
    );
    assert_eq!(d.shown(), "rsync://me@nas.lan/m");
    let t = c.volumes["tunnel"].daemon().unwrap();
    assert_eq!(t.ssh_endpoint.as_ref().unwrap().slug, "nas");
    assert_eq!(t.shown(), "nas::archive");
    assert!(c.volumes["direct"].path.is_none());
}

#[test]
fn max_parallel_syncs_defaults_to_one_and_is_inherited() {
    let c = config(indoc! {"
        ssh-endpoints:
          nas: {host: nas, max-parallel-syncs: 3}
          wan: {extends: nas, host: nas.example.org}
          other: {host: other}
        volumes:
          r: {type: remote, ssh-endpoint: nas, ssh-endpoints: [nas, wan], path: /srv}
          s: {type: remote, ssh-endpoint: other, path: /srv}
    "});
    assert_eq!(c.ssh_endpoints["nas"].max_parallel_syncs, 3);
    assert_eq!(c.ssh_endpoints["wan"].max_parallel_syncs, 3);
    assert_eq!(c.ssh_endpoints["other"].max_parallel_syncs, 1);
}
