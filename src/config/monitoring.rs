//! The `monitoring:` section: a healthchecks-style ping URL and a
//! Prometheus textfile (what each back-end does with them is in
//! `plan/monitoring.rs`). Optional; the Python nbkp has no such section.

use super::diagnostic::Diagnostics;
use super::fields::{self, Fields, Loc};
use super::model::Monitoring;
use super::paths::{self, Home};
use super::yaml::Node;

pub const MONITORING_KEYS: &[&str] = &["ping-url", "metrics-file"];

pub fn decode_monitoring(
    node: &Node,
    loc: &Loc,
    home: &Home,
    d: &mut Diagnostics,
) -> Option<Monitoring> {
    let mut f = Fields::of(node, loc.clone(), d)?;
    let ping_url = f.read("ping-url", d, |n, l, d| {
        let url = fields::string(n, l, d)?;
        let url = url.trim().trim_end_matches('/').to_string();
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        let plain = url
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\'));
        if !scheme_ok || !plain || url.len() <= "https://".len() {
            d.error(
                "url",
                &l.parts(),
                Some(n.at()),
                format!(
                    "`ping-url` must be an http:// or https:// URL without spaces or quotes (got {url:?}), e.g. https://hc-ping.com/<uuid>"
                ),
            );
            return None;
        }
        Some(url)
    });
    let metrics_file = f.read("metrics-file", d, |n, l, d| {
        let path = fields::string(n, l, d)?;
        let path = paths::normalise_local(&home.expand(path.trim()));
        if !paths::is_absolute(&path) || path.ends_with("/.") || path == "/" {
            d.error(
                "path",
                &l.parts(),
                Some(n.at()),
                format!(
                    "`metrics-file` must be an absolute path (or start with ~), e.g. /var/lib/node_exporter/textfile/nbkp.prom (got {path:?})"
                ),
            );
            return None;
        }
        Some(path)
    });
    f.finish(MONITORING_KEYS, d);
    Some(Monitoring {
        ping_url,
        metrics_file,
    })
}
