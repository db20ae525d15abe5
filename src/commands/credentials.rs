//! `nbkp credentials keyring-status`: is every passphrase available? (Never
//! shows one.)

use crate::cli::{CredentialsArgs, OutputFormat};
use crate::config::CredentialProvider;
use crate::credentials;
use crate::plan::mount::CredentialPlan;

pub fn keyring_status(args: &CredentialsArgs) -> i32 {
    let loaded = match super::load_config(args.file.config.as_deref(), args.output) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let plan = CredentialPlan::from_config(&loaded.config);
    let checked = plan.provider() != CredentialProvider::Prompt;
    let mut passphrases = serde_json::Map::new();
    let mut rows = Vec::new();
    for p in &plan.passphrases {
        let mut entry = serde_json::json!({"volumes": p.volumes});
        if checked {
            match credentials::fetch(&plan, p) {
                Ok(_) => {
                    entry["available"] = true.into();
                    rows.push((p.id.clone(), "available".to_string()));
                }
                Err(e) => {
                    entry["available"] = false.into();
                    entry["error"] = e.message.clone().into();
                    entry["reason"] = e.reason.into();
                    rows.push((p.id.clone(), format!("not available: {}", e.message)));
                }
            }
        } else {
            entry["available"] = serde_json::Value::Null;
            rows.push((p.id.clone(), "asked when needed (prompt)".into()));
        }
        passphrases.insert(p.id.clone(), entry);
    }
    match args.output {
        OutputFormat::Json => crate::output::print_json(&serde_json::json!({
            "provider": plan.provider,
            "checked": checked,
            "passphrases": passphrases,
        })),
        OutputFormat::Human if plan.passphrases.is_empty() => {
            eprintln!("No encrypted volumes found.")
        }
        OutputFormat::Human => {
            let mut t = crate::output::table::Table::new(
                &format!("Passphrases ({})", plan.provider),
                &["passphrase-id", "status"],
            );
            for (id, status) in rows {
                t.row(vec![id, status]);
            }
            print!("{}", t.render());
        }
    }
    0
}
