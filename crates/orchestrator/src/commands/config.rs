//! Reading the user's configuration: every file is validated before any command acts on it.

use std::path::Path;

use anyhow::{Context as _, bail};
use fleet::DeploymentConfig;
use fleet::projects::{self, ProjectRow};

use super::Context;
use crate::environment::Environment;

/// The largest `projects.csv` read: a fleet's worth of projects is a few kilobytes.
const MAX_CSV_BYTES: u64 = 10 * 1024 * 1024;

/// The user's configuration, read and validated.
pub struct Config {
    pub rows: Vec<ProjectRow>,
    pub deploy: DeploymentConfig,
    pub env: Environment,
    /// What was checked besides the CSV and the deployment configuration, and how it went.
    pub checked: Vec<(String, String)>,
    /// Legal but probably unintended: a CSV project with no services, and the like.
    pub warnings: Vec<String>,
}

impl Context {
    /// Reads and validates every configuration file.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let csv = self.workspace.projects_csv();
        let bytes = read_csv(&csv)?;
        self.load_config_with(&csv, &bytes)
    }

    /// The same, with `projects.csv` holding `bytes` (as `--scale` is about to write it).
    pub fn load_config_with(&self, csv: &Path, bytes: &[u8]) -> anyhow::Result<Config> {
        let config_dir = self.workspace.config_dir();
        if !config_dir.is_dir() {
            bail!(
                "the configuration directory {} does not exist or is not a directory; run --setup",
                config_dir.display()
            );
        }
        let rows = projects::parse(csv, bytes)?;
        let deploy = self.load_deploy_config()?;
        let env = Environment::load(&self.workspace.env_file())?;
        let mut checked = Vec::new();

        let email = self.workspace.email_config();
        if email.exists() {
            let config = fleet::notify_config::load_email(&email)?;
            if let Some(ca) = &config.smtp_settings.ca_certificate {
                crate::notify::read_ca(config_dir, ca).map_err(|why| {
                    anyhow::anyhow!("{} at smtp_settings.ca_certificate: {why}", email.display())
                })?;
            }
            checked.push(("email_config.json".to_string(), "valid".to_string()));
        } else {
            checked.push((
                "email_config.json".to_string(),
                "absent: no email notifications".to_string(),
            ));
        }
        let sms = self.workspace.sms_config();
        if sms.exists() {
            fleet::notify_config::load_sms(&sms)?;
            checked.push(("sms_config.json".to_string(), "valid".to_string()));
        } else {
            checked.push(("sms_config.json".to_string(), "absent: no SMS alerts".to_string()));
        }
        checked.push(("templates".to_string(), check_templates(&self.workspace.templates_dir())?));

        for (name, infra) in &deploy.infrastructure {
            if let Some(process) = &infra.process {
                crate::agent::services::infra::check_templates(
                    &process.command,
                    process.config.as_deref(),
                    infra.password_secret.is_some(),
                )
                .map_err(|(field, why)| {
                    anyhow::anyhow!(
                        "{} at infrastructure.{name}.process.{field}: the template cannot be \
                         rendered ({why})",
                        self.workspace.deployment_config().display()
                    )
                })?;
            }
        }
        let warnings = warnings(&rows, &deploy);
        Ok(Config { rows, deploy, env, checked, warnings })
    }

    pub fn load_deploy_config(&self) -> anyhow::Result<DeploymentConfig> {
        let path = self.workspace.deployment_config();
        if !path.exists() {
            bail!(
                "{} does not exist; run `orchestrator --setup` to write an example",
                path.display()
            );
        }
        Ok(fleet::deploy_config::load(&path)?)
    }
}

/// Reads `projects.csv`, refusing what is not a plain file of sensible size.
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<u8>> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{} does not exist; run `orchestrator --setup` to write an example",
                path.display()
            )
        }
        Err(err) => bail!("cannot read {}: {err}", path.display()),
    };
    if !metadata.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if metadata.len() > MAX_CSV_BYTES {
        bail!(
            "{} is {} bytes; a projects file is at most {MAX_CSV_BYTES}",
            path.display(),
            metadata.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Projects named on one side only: almost always a typo, which would otherwise quietly run
/// nothing (or remove what runs).
fn warnings(rows: &[ProjectRow], deploy: &DeploymentConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    for row in rows {
        let services = deploy.projects.get(&row.name).map_or(0, |p| p.services.len());
        if services == 0 {
            warnings.push(format!(
                "project {} (projects.csv line {}) has no services in deployment_config.json, so nothing runs for it",
                row.name, row.line
            ));
        }
    }
    for project in deploy.projects.keys() {
        if !rows.iter().any(|row| row.name == *project) {
            warnings.push(format!(
                "project {project} is configured in deployment_config.json but not in projects.csv"
            ));
        }
    }
    warnings
}

/// Parses every `*.j2` template so a syntax error is found now, not when it is first used.
fn check_templates(dir: &Path) -> anyhow::Result<String> {
    let nginx = dir.join("nginx.conf.j2");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => {
            return Ok(format!("{} is missing: the built-in templates are used", dir.display()));
        }
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
    if !nginx.exists() {
        return Ok(format!(
            "{count} template(s) parse; {} is missing: the built-in one is used",
            nginx.display()
        ));
    }
    Ok(format!("{count} template(s) parse"))
}

/// Refuses CSV sizes the cloud does not offer in the configured region, naming line and field.
pub async fn check_sizes(
    config: &Config,
    provider: &dyn crate::provider::Provider,
) -> anyhow::Result<()> {
    let region = &config.deploy.region;
    let Some(offered) = provider.size_slugs(region).await? else {
        return Ok(());
    };
    if offered.is_empty() {
        bail!(
            "{} offers no droplet sizes in region {region:?}; check region in deployment_config.json",
            provider.name()
        );
    }
    for row in &config.rows {
        for (field, slug) in [("MasterSpec", &row.master_spec), ("WebSpec", &row.web_spec)] {
            if !offered.contains(slug) {
                bail!(
                    "config/projects.csv, line {}, field {field}: {slug:?} is not offered by {} in region {region}",
                    row.line,
                    provider.name()
                );
            }
        }
    }
    Ok(())
}
