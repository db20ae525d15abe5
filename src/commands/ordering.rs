//! `nbkp ordering graph`: which sync feeds which, in run order.

use crate::cli::{GraphFormat, OrderingArgs, OutputFormat};
use crate::config::Config;
use crate::ordering;
use crate::output::print_json;

pub fn graph(args: &OrderingArgs) -> i32 {
    let loaded = match super::load_config(args.file.config.as_deref(), args.output) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let config = &loaded.config;
    let enabled: Vec<&str> = config
        .syncs
        .values()
        .filter(|s| s.enabled)
        .map(|s| s.slug.as_str())
        .collect();
    let order = match ordering::topological(config, &enabled) {
        Ok(o) => o,
        Err(cycle) => {
            eprintln!(
                "Error: cyclic sync dependency detected: {}",
                cycle.join(" -> ")
            );
            return super::EXIT_USAGE;
        }
    };
    let pred = ordering::predecessors(config, &enabled);
    let disabled: Vec<&str> = config
        .syncs
        .values()
        .filter(|s| !s.enabled)
        .map(|s| s.slug.as_str())
        .collect();
    match (args.output, args.format) {
        (OutputFormat::Json, _) => print_json(&json(config, &order, &pred, &disabled)),
        (OutputFormat::Human, GraphFormat::Tree) => {
            print!("{}", tree(config, &order, &pred, &disabled))
        }
        (OutputFormat::Human, GraphFormat::Mermaid) => {
            print!("{}", mermaid(config, &order, &pred, &disabled))
        }
    }
    0
}

type Preds<'c> = indexmap::IndexMap<&'c str, Option<&'c str>>;

fn label(config: &Config, slug: &str) -> String {
    let s = &config.syncs[slug];
    format!("{} → {}", s.source.slug, s.destination.slug)
}

fn json(config: &Config, order: &[&str], pred: &Preds, disabled: &[&str]) -> serde_json::Value {
    let mut generation: std::collections::HashMap<&str, usize> = Default::default();
    let syncs: Vec<serde_json::Value> = order
        .iter()
        .map(|slug| {
            let after = pred[slug];
            let g = after.map_or(0, |p| generation[p] + 1);
            generation.insert(slug, g);
            let s = &config.syncs[*slug];
            serde_json::json!({
                "name": slug,
                "source": s.source.slug,
                "destination": s.destination.slug,
                "after": after,
                "generation": g,
            })
        })
        .collect();
    serde_json::json!({ "order": order, "syncs": syncs, "disabled": disabled })
}

fn tree(config: &Config, order: &[&str], pred: &Preds, disabled: &[&str]) -> String {
    fn walk(
        config: &Config,
        order: &[&str],
        pred: &Preds,
        node: &str,
        prefix: &str,
        out: &mut String,
    ) {
        let children: Vec<&str> = order
            .iter()
            .copied()
            .filter(|s| pred[s] == Some(node))
            .collect();
        for (i, c) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            out.push_str(&format!(
                "{prefix}{}{c}  ({})\n",
                if last { "└─ " } else { "├─ " },
                label(config, c)
            ));
            let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
            walk(config, order, pred, c, &deeper, out);
        }
    }
    let mut out = String::new();
    if order.is_empty() {
        out.push_str("No enabled syncs.\n");
    }
    for root in order.iter().filter(|s| pred[*s].is_none()) {
        out.push_str(&format!("{root}  ({})\n", label(config, root)));
        walk(config, order, pred, root, "", &mut out);
    }
    if !disabled.is_empty() {
        out.push_str(&format!("\nDisabled (not run): {}\n", disabled.join(", ")));
    }
    out.push_str(&format!("\nRun order: {}\n", order.join(", ")));
    out
}

fn mermaid(config: &Config, order: &[&str], pred: &Preds, disabled: &[&str]) -> String {
    // Node ids are positions; labels are quoted, with `"` as Mermaid's entity.
    let text = |s: &str| s.replace('"', "#quot;");
    let id = |slug: &str| {
        let i = order.iter().position(|s| *s == slug).unwrap_or(0);
        format!("s{i}")
    };
    let mut out = String::from("flowchart LR\n");
    for slug in order {
        out.push_str(&format!(
            "  {}[\"{}<br/>{}\"]\n",
            id(slug),
            text(slug),
            text(&label(config, slug))
        ));
    }
    for slug in order {
        if let Some(p) = pred[slug] {
            out.push_str(&format!("  {} --> {}\n", id(p), id(slug)));
        }
    }
    for (i, slug) in disabled.iter().enumerate() {
        out.push_str(&format!(
            "  d{i}[\"{} (disabled)<br/>{}\"]:::disabled\n",
            text(slug),
            text(&label(config, slug))
        ));
    }
    if !disabled.is_empty() {
        out.push_str("  classDef disabled stroke-dasharray: 5 5\n");
    }
    out
}
