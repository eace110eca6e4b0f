//! The commands of the command line, one file each, and what they share.

mod addresses;
mod apply;
mod cleanup;
mod config;
mod deploy;
mod infrastructure;
mod init;
mod monitor;
mod orchestrate;
mod publish;
mod recover;
mod scale;
mod services;
mod setup;
mod status;
mod update_ip;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet::deploy_config::{DeploymentConfig, ProviderKind};
use fleet::{StateStore, store::StateLock};

use crate::cli::Cli;
use crate::control::FleetKey;
use crate::environment::Environment;
use crate::provider::Provider;
use crate::provider::digitalocean::client::{DEFAULT_API_URL, DoClient};
use crate::provider::digitalocean::{DigitalOcean, DoSettings};
use crate::provider::local::LocalCloud;
use crate::secret::Secret;
use crate::workspace::Workspace;

pub use config::Config;

/// Runs the command the flags ask for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let context = Context {
        workspace: Workspace::new(&cli.config_dir),
        json: cli.json,
        dry_run: cli.dry_run,
        yes: cli.yes,
        lock_wait: Duration::from_secs(cli.lock_wait),
    };
    let changes = cli.orchestrate || cli.cleanup || cli.recover.is_some() || cli.scale.is_some();
    if cli.dry_run && !(changes || cli.update_ip.is_some()) {
        bail!("--dry-run goes with --orchestrate, --scale, --recover, --cleanup or --update-ip");
    }
    if cli.force && !cli.orchestrate {
        bail!("--force goes with --orchestrate");
    }
    if cli.yes && !changes {
        bail!("--yes goes with --orchestrate, --scale, --recover or --cleanup");
    }
    // Flags that belong to one command are refused anywhere else, never ignored.
    let belongs = [
        (cli.branch.is_some(), "--branch", "--deploy-uat", cli.deploy_uat.is_some()),
        (cli.local, "--local", "--deploy-uat", cli.deploy_uat.is_some()),
        (cli.project_path.is_some(), "--project-path", "--deploy-uat --local", cli.local),
        (cli.tag.is_some(), "--tag", "--deploy-prod", cli.deploy_prod.is_some()),
        (cli.reproduce_dir.is_some(), "--reproduce-dir", "--reproduce", cli.reproduce.is_some()),
    ];
    for (given, flag, command, present) in belongs {
        if given && !present {
            bail!("{flag} goes with {command}");
        }
    }
    if cli.local && cli.project_path.is_none() {
        bail!("--local needs --project-path PATH, the tree to deploy");
    }
    if cli.setup {
        setup::run(&context)
    } else if cli.init {
        init::run(&context).await
    } else if cli.orchestrate {
        orchestrate::run(&context, cli.force).await
    } else if let Some(arguments) = cli.services {
        services::run(&context, &arguments[0], &arguments[1]).await
    } else if let Some(name) = &cli.monitor {
        monitor::run(&context, name).await
    } else if let Some(name) = &cli.recover {
        recover::run(&context, name).await
    } else if cli.cleanup {
        cleanup::run(&context).await
    } else if cli.status {
        status::run(&context).await
    } else if let Some(arguments) = cli.scale {
        scale::run(&context, &arguments[0], &arguments[1]).await
    } else if let Some(address) = cli.update_ip {
        update_ip::run(&context, &address).await
    } else if let Some(project) = &cli.deploy_uat {
        let source = match &cli.project_path {
            Some(path) if cli.local => deploy::Source::Local(path.clone()),
            _ => {
                deploy::Source::Git { branch: cli.branch.clone().unwrap_or_else(|| "main".into()) }
            }
        };
        deploy::uat(&context, project, source).await
    } else if let Some(project) = &cli.deploy_prod {
        deploy::prod(&context, project, cli.tag.as_deref()).await
    } else if let Some(arguments) = cli.rollback {
        deploy::rollback(
            &context,
            &arguments[0],
            &arguments[1],
            arguments.get(2).map(String::as_str),
        )
        .await
    } else if let Some(arguments) = cli.releases {
        deploy::list(&context, &arguments[0], &arguments[1])
    } else if let Some(arguments) = cli.restart_infra {
        infrastructure::restart(&context, &arguments[0], &arguments[1], &arguments[2]).await
    } else if let (Some(tag), Some(dir)) = (&cli.reproduce, &cli.reproduce_dir) {
        deploy::reproduce(&context, tag, dir)
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

impl Context {
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
        env: &Environment,
        key: Option<FleetKey>,
    ) -> anyhow::Result<Arc<dyn Provider>> {
        match deploy.provider {
            ProviderKind::Digitalocean => {
                let Some(token) = env.get("DO_TOKEN") else {
                    bail!(
                        "DO_TOKEN is not set (or empty); create a token at DigitalOcean (API, read and \
                         write) and put it in .env as DO_TOKEN=..."
                    );
                };
                let api_url = env.get("DO_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string());
                let valid = reqwest::Url::parse(&api_url).is_ok_and(|url| {
                    matches!(url.scheme(), "http" | "https") && url.host().is_some()
                });
                if !valid {
                    bail!(
                        "DO_API_URL ({}) is not an http(s) URL such as {DEFAULT_API_URL}",
                        env.origin("DO_API_URL")
                    );
                }
                let poll = match env.get("DO_POLL_INTERVAL_MS") {
                    Some(ms) => Some(Duration::from_millis(ms.parse().with_context(|| {
                        format!("DO_POLL_INTERVAL_MS={ms:?} is not a number of milliseconds")
                    })?)),
                    None => None,
                };
                let client = Arc::new(DoClient::new(&api_url, Secret::new(token)));
                Ok(Arc::new(DigitalOcean::new(DoSettings {
                    api_url,
                    client,
                    fleet: deploy.fleet_name.clone(),
                    image: deploy.digitalocean.image.clone(),
                    agent_url: deploy.digitalocean.agent_url.clone(),
                    agent_sha256: deploy.digitalocean.agent_sha256.clone(),
                    fleet_key: key,
                    agent_port: deploy.agent_port,
                    poll,
                })))
            }
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
