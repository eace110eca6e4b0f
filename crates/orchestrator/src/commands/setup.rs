//! `--setup`: write example configuration files, never overwriting one that exists.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use super::Context;
use crate::output;

/// The load balancer's configuration template, also used when `templates/` has none.
pub const TEMPLATE_NGINX: &str = include_str!("../../assets/templates/nginx.conf.j2");
/// How the process platform starts a service, also used when `templates/` has none.
pub const TEMPLATE_PROCESS: &str = include_str!("../../assets/templates/process.sh.j2");

/// How the container platforms run a service, also used when `templates/` has none.
pub const TEMPLATE_CONTAINER: &str = include_str!("../../assets/templates/container.json.j2");

/// How the kubernetes platform runs a service, also used when `templates/` has none.
pub const TEMPLATE_KUBERNETES: &str = include_str!("../../assets/templates/kubernetes.json.j2");

/// How the kubernetes platform runs an infrastructure service, also used when `templates/` has
/// none.
pub const TEMPLATE_KUBERNETES_INFRASTRUCTURE: &str =
    include_str!("../../assets/templates/kubernetes-infrastructure.json.j2");

/// Keeps the fleet key and the lock out of version control.
const GITIGNORE: &str =
    "# Secrets and local bookkeeping of the orchestrator.\nfleet.key\n*.lock\n*.tmp.*\n";

/// Files `--setup` writes, with their example contents.
const FILES: &[(&str, &str)] = &[
    ("config/projects.csv", include_str!("../../assets/projects.csv")),
    ("config/deployment_config.json", include_str!("../../assets/deployment_config.json")),
    ("config/email_config.json", include_str!("../../assets/email_config.json")),
    ("config/sms_config.json", include_str!("../../assets/sms_config.json")),
    ("config/.gitignore", GITIGNORE),
    ("templates/nginx.conf.j2", TEMPLATE_NGINX),
    ("templates/process.sh.j2", TEMPLATE_PROCESS),
    ("templates/container.json.j2", TEMPLATE_CONTAINER),
    ("templates/kubernetes.json.j2", TEMPLATE_KUBERNETES),
    ("templates/kubernetes-infrastructure.json.j2", TEMPLATE_KUBERNETES_INFRASTRUCTURE),
    (".env.example", include_str!("../../assets/env.example")),
];

#[derive(Serialize)]
struct Written {
    path: String,
    /// `written`, or `kept` when the file already existed.
    result: &'static str,
}

pub fn run(context: &Context) -> anyhow::Result<()> {
    let workspace = &context.workspace;
    let mut results = Vec::new();
    for (name, contents) in FILES {
        let path = locate(context, name);
        let result = if path.exists() {
            "kept"
        } else {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            fleet::store::write_atomically(&path, contents.as_bytes(), None)
                .with_context(|| format!("cannot write {}", path.display()))?;
            "written"
        };
        results.push(Written { path: path.display().to_string(), result });
    }

    if context.json {
        output::print_json(&results);
        return Ok(());
    }
    for written in &results {
        match written.result {
            "kept" => crate::say!("kept     {} (it exists; not overwritten)", written.path),
            _ => crate::say!("written  {}", written.path),
        }
    }
    crate::say!(
        "\nNext: edit {} and {}, copy .env.example to .env, then run --init.",
        workspace.projects_csv().display(),
        workspace.deployment_config().display()
    );
    Ok(())
}

/// Where a file of the example goes for this workspace: `config/…` follows `--config-dir`.
fn locate(context: &Context, name: &str) -> PathBuf {
    let workspace = &context.workspace;
    match name.strip_prefix("config/") {
        Some(file) => workspace.config_dir().join(file),
        None if name == ".env.example" => workspace.env_example(),
        None => workspace.templates_dir().join(name.trim_start_matches("templates/")),
    }
}
