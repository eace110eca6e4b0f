//! The commands of the command line, one file each, and what they share.

mod apply;
mod init;
mod orchestrate;
mod publish;
mod scale;
mod setup;
mod status;
mod update_ip;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet::deploy_config::{DeploymentConfig, ProviderKind};
use fleet::projects::{self, ProjectRow};
use fleet::{StateStore, store::StateLock};

use crate::cli::Cli;
use crate::control::FleetKey;
use crate::environment::Environment;
use crate::provider::Provider;
use crate::provider::local::LocalCloud;
use crate::workspace::Workspace;

/// Runs the command the flags ask for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let context = Context {
        workspace: Workspace::new(&cli.config_dir),
        json: cli.json,
        dry_run: cli.dry_run,
        yes: cli.yes,
        lock_wait: Duration::from_secs(cli.lock_wait),
    };
    if cli.dry_run && !(cli.orchestrate || cli.scale.is_some() || cli.update_ip.is_some()) {
        bail!("--dry-run goes with --orchestrate, --scale or --update-ip");
    }
    if cli.setup {
        setup::run(&context)
    } else if cli.init {
        init::run(&context).await
    } else if cli.orchestrate {
        orchestrate::run(&context, cli.force).await
    } else if cli.status {
        status::run(&context).await
    } else if let Some(arguments) = cli.scale {
        scale::run(&context, &arguments[0], &arguments[1]).await
    } else if let Some(address) = cli.update_ip {
        update_ip::run(&context, &address).await
    } else {
        bail!("no command given; see --help")
    }
}

/// What every command needs to know.
pub struct Context {
    pub workspace: Workspace,
    pub json: bool,
    pub dry_run: bool,
    pub yes: bool,
    pub lock_wait: Duration,
}

/// The user's configuration, read and validated.
pub struct Config {
    pub rows: Vec<ProjectRow>,
    pub deploy: DeploymentConfig,
    pub env: Environment,
}

impl Context {
    /// Reads `projects.csv`, `deployment_config.json` and `.env`, refusing anything invalid.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let csv = self.workspace.projects_csv();
        if !csv.exists() {
            bail!(
                "{} does not exist; run `orchestrator --setup` to write an example",
                csv.display()
            );
        }
        let rows = projects::load(&csv)?;
        let deploy = self.load_deploy_config()?;
        let env = Environment::load(&self.workspace.env_file())?;
        Ok(Config { rows, deploy, env })
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

    pub fn store(&self) -> StateStore {
        StateStore::new(self.workspace.state_file())
    }

    /// Takes the state lock, naming this command for anyone who has to wait.
    pub fn lock(&self, command: &str) -> anyhow::Result<StateLock> {
        let holder = format!(
            "orchestrator {command}, pid {}, started {}",
            std::process::id(),
            crate::clock::now_rfc3339()
        );
        let store = self.store();
        let lock = tokio::task::block_in_place(|| store.lock(&holder, self.lock_wait))?;
        Ok(lock)
    }

    /// The cloud the configuration names.
    /// The fleet key made by `--init`.
    pub fn fleet_key(&self) -> anyhow::Result<FleetKey> {
        Ok(FleetKey::load(&self.workspace.fleet_key())?)
    }

    /// The cloud the configuration names; new droplets get `key`.
    pub fn provider(
        &self,
        deploy: &DeploymentConfig,
        key: Option<FleetKey>,
    ) -> anyhow::Result<Arc<dyn Provider>> {
        match deploy.provider {
            ProviderKind::Local => {
                let binary = std::env::current_exe()
                    .context("cannot find the orchestrator binary to run agents")?;
                let root = self.workspace.local_cloud();
                let cloud = LocalCloud::new(&root, &binary, key).with_context(|| {
                    format!("cannot open the local cloud in {}", root.display())
                })?;
                Ok(Arc::new(cloud))
            }
        }
    }
}

/// Asks on the terminal whether to go ahead; refuses outright when nobody can answer.
pub fn confirm(question: &str, what: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        bail!("{what}; re-run with --yes to confirm, or --dry-run to look first");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        bail!("nothing was changed")
    }
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => Path::new(path).to_path_buf(),
    }
}
