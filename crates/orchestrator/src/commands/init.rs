//! `--init`: validate every configuration file, make the SSH key pair and the fleet key,
//! record the administrator's addresses, and check the cloud can be reached (registering the
//! SSH key with it where it keeps keys).
//!
//! Everything is validated before anything is written, so a bad file changes nothing.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Serialize;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use super::{Context, expand_home};
use crate::control::FleetKey;
use crate::control::key::FleetKeyError;
use crate::output;

#[derive(Serialize)]
struct Step {
    step: String,
    result: String,
}

pub async fn run(context: &Context) -> anyhow::Result<()> {
    let workspace = &context.workspace;
    let mut steps = Vec::new();
    let mut step = |step: &str, result: String| steps.push(Step { step: step.into(), result });

    let config = context.load_config()?;
    step("projects.csv", format!("valid: {} projects", config.rows.len()));
    step("deployment_config.json", format!("valid: provider {}", config.deploy.provider.as_str()));
    for (name, checked) in &config.checked {
        step(name, checked.clone());
    }

    let wanted = super::addresses::wanted(&config.env)?;

    let key_path = expand_home(&config.deploy.ssh_key_path);
    let (ssh_result, public_key) = ensure_ssh_key(&key_path)?;
    step("ssh key", ssh_result);
    step("fleet key", ensure_fleet_key(&workspace.fleet_key())?);
    step("administrator addresses", record_addresses(context, wanted)?);

    let provider = context.provider(&config.deploy, &config.env, None)?;
    step("provider", provider.check_access().await?);
    super::config::check_sizes(&config, provider.as_ref()).await?;
    if let Some(key) = provider.register_ssh_key(&public_key).await? {
        step("ssh key at the cloud", format!("{} ({})", key.name, key.fingerprint));
    }

    if context.json {
        output::print_json(&steps);
    } else {
        let rows = steps.iter().map(|s| vec![s.step.clone(), s.result.clone()]);
        crate::say!("{}", output::table(["STEP", "RESULT"], rows));
        crate::say!(
            "Ready. Run --orchestrate --dry-run to see the plan, then --orchestrate to apply it."
        );
    }
    Ok(())
}

/// Records the administrator's addresses from `.env`, unless `--update-ip` pinned one.
fn record_addresses(context: &Context, wanted: super::addresses::Wanted) -> anyhow::Result<String> {
    let lock = context.lock("--init")?;
    let store = context.store();
    let before = store.load()?;
    let mut state = before.clone();
    let said = super::addresses::sync(&mut state, wanted);
    if state != before {
        store.save(&lock, &state)?;
    }
    Ok(said)
}

/// Makes the fleet key that signs control requests, unless there is one.
fn ensure_fleet_key(path: &Path) -> anyhow::Result<String> {
    match FleetKey::load(path) {
        Ok(_) => Ok(format!("kept the existing key {}", path.display())),
        Err(FleetKeyError::Missing { .. }) => {
            FleetKey::generate().create(path)?;
            Ok(format!("created {} (mode 600; keep it out of version control)", path.display()))
        }
        Err(err) => Err(err.into()),
    }
}

/// Makes an ed25519 key pair at `path` (private key mode 0600) unless a valid one is there;
/// returns what it did and the public key.
fn ensure_ssh_key(path: &Path) -> anyhow::Result<(String, String)> {
    let public_path = path.with_extension("pub");
    if path.exists() {
        if !path.is_file() {
            bail!(
                "{} is not a file; point ssh_key_path in deployment_config.json at a key file",
                path.display()
            );
        }
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!("{} is readable by others (mode {mode:o}); run chmod 600 on it", path.display());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let key = PrivateKey::from_openssh(&text).map_err(|err| {
            anyhow::anyhow!(
                "{} is not an OpenSSH private key ({err}); move it aside to make a new one",
                path.display()
            )
        })?;
        let public = key.public_key().to_openssh().context("cannot encode the SSH public key")?;
        if !public_path.exists() {
            std::fs::write(&public_path, format!("{public}\n"))
                .with_context(|| format!("cannot write {}", public_path.display()))?;
            return Ok((
                format!("kept {}; wrote its missing {}", path.display(), public_path.display()),
                public,
            ));
        }
        return Ok((format!("kept the existing key {}", path.display()), public));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).ok();
    }
    let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .context("cannot generate an SSH key")?;
    key.set_comment("orchestrator fleet key");
    let private = key.to_openssh(LineEnding::LF).context("cannot encode the SSH key")?;
    let public = key.public_key().to_openssh().context("cannot encode the SSH public key")?;

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(private.as_bytes())?;
    file.sync_all()?;
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    Ok((format!("created ed25519 key {} and {}", path.display(), public_path.display()), public))
}
