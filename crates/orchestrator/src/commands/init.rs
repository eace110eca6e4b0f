//! `--init`: make the SSH key pair, validate every configuration file, record the
//! administrator's addresses, and check the cloud can be reached.
//!
//! Everything is validated before anything is written, so a bad file changes nothing.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Serialize;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use super::update_ip::parse_cidr;
use super::{Context, expand_home};
use crate::control::FleetKey;
use crate::control::key::FleetKeyError;
use crate::output;
use crate::provider::Provider;

#[derive(Serialize)]
struct Step {
    step: String,
    result: String,
}

pub async fn run(context: &Context) -> anyhow::Result<()> {
    let workspace = &context.workspace;
    let mut steps = Vec::new();
    let mut step = |step: &str, result: String| {
        steps.push(Step {
            step: step.into(),
            result,
        })
    };

    let config = context.load_config()?;
    step(
        "projects.csv",
        format!("valid: {} projects", config.rows.len()),
    );
    step(
        "deployment_config.json",
        format!("valid: provider {}", config.deploy.provider.as_str()),
    );
    for (name, path, load) in [
        (
            "email_config.json",
            workspace.email_config(),
            check_email as fn(&Path) -> anyhow::Result<()>,
        ),
        ("sms_config.json", workspace.sms_config(), check_sms),
    ] {
        if path.exists() {
            load(&path)?;
            step(name, "valid".into());
        } else {
            step(name, "absent: no notifications of this kind".into());
        }
    }
    let templates = check_templates(&workspace.templates_dir())?;
    step("templates", format!("{templates} template(s) parse"));

    let admin_ip = config
        .env
        .get("ADMIN_IP")
        .map(|ip| parse_cidr(&ip).context("ADMIN_IP"))
        .transpose()?;
    let additional: Vec<String> = config
        .env
        .get("ADDITIONAL_IPS")
        .map(|list| {
            list.split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|ip| parse_cidr(ip).context("ADDITIONAL_IPS"))
                .collect()
        })
        .transpose()?
        .unwrap_or_default();

    let key_path = expand_home(&config.deploy.ssh_key_path);
    step("ssh key", ensure_ssh_key(&key_path)?);
    step("fleet key", ensure_fleet_key(&workspace.fleet_key())?);

    if admin_ip.is_some() || !additional.is_empty() {
        let lock = context.lock("--init")?;
        let store = context.store();
        let mut state = store.load()?;
        if let Some(ip) = &admin_ip {
            state.admin_ip = Some(ip.clone());
        }
        if !additional.is_empty() {
            state.additional_ips = additional.clone();
        }
        store.save(&lock, &state)?;
        let mut all: Vec<String> = admin_ip.into_iter().collect();
        all.extend(additional);
        step(
            "administrator addresses",
            format!("recorded {}", all.join(", ")),
        );
    } else {
        step(
            "administrator addresses",
            "ADMIN_IP is not set; set it in .env or run --update-ip".into(),
        );
    }

    let provider = context.provider(&config.deploy, None)?;
    let droplets = provider.list().await?;
    step(
        "provider",
        describe_provider(provider.as_ref(), context, droplets.len()),
    );

    if context.json {
        output::print_json(&steps);
    } else {
        println!(
            "{}",
            output::table(
                ["STEP", "RESULT"],
                steps.iter().map(|s| vec![s.step.clone(), s.result.clone()])
            )
        );
        println!(
            "Ready. Run --orchestrate --dry-run to see the plan, then --orchestrate to apply it."
        );
    }
    Ok(())
}

fn describe_provider(provider: &dyn Provider, context: &Context, droplets: usize) -> String {
    format!(
        "{} cloud in {} reachable, {droplets} droplet(s) exist",
        provider.name(),
        context.workspace.local_cloud().display()
    )
}

fn check_email(path: &Path) -> anyhow::Result<()> {
    fleet::notify_config::load_email(path)?;
    Ok(())
}

fn check_sms(path: &Path) -> anyhow::Result<()> {
    fleet::notify_config::load_sms(path)?;
    Ok(())
}

/// Parses every `*.j2` template so a syntax error is found now, not when it is first used.
fn check_templates(dir: &Path) -> anyhow::Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut count = 0;
    let mut environment = minijinja::Environment::new();
    for path in entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "j2"))
    {
        let source = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let name = path.display().to_string();
        if let Err(err) = environment.add_template_owned(name.clone(), source) {
            bail!(
                "{name}, line {}: {}",
                err.line().unwrap_or(0),
                err.detail().unwrap_or("syntax error")
            );
        }
        count += 1;
    }
    Ok(count)
}

/// Makes the fleet key that signs control requests, unless there is one.
fn ensure_fleet_key(path: &Path) -> anyhow::Result<String> {
    match FleetKey::load(path) {
        Ok(_) => Ok(format!("kept the existing key {}", path.display())),
        Err(FleetKeyError::Missing { .. }) => {
            FleetKey::generate().create(path)?;
            Ok(format!(
                "created {} (mode 600; keep it out of version control)",
                path.display()
            ))
        }
        Err(err) => Err(err.into()),
    }
}

/// Makes an ed25519 key pair at `path` (private key mode 0600) unless one is there.
fn ensure_ssh_key(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {mode:o}); run chmod 600 on it",
                path.display()
            );
        }
        return Ok(format!("kept the existing key {}", path.display()));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).ok();
    }
    let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .context("cannot generate an SSH key")?;
    key.set_comment("orchestrator fleet key");
    let private = key
        .to_openssh(LineEnding::LF)
        .context("cannot encode the SSH key")?;
    let public = key
        .public_key()
        .to_openssh()
        .context("cannot encode the SSH public key")?;

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(private.as_bytes())?;
    file.sync_all()?;
    let public_path = path.with_extension("pub");
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    Ok(format!(
        "created ed25519 key {} and {}",
        path.display(),
        public_path.display()
    ))
}
