//! `--deploy-uat`, `--deploy-prod`, `--rollback`, `--releases` and `--reproduce`: releases of
//! a project, built once and rolled out droplet by droplet without dropping a request.
//!
//! UAT builds: from the tip of a Git branch (the release is tagged and the tag pushed once it
//! serves) or from a local tree (recorded by content hash; no tag). Production promotes a UAT
//! release as it is, and a rollback runs an earlier release's artifacts again: neither builds.
//! On each droplet the agent starts the new versions beside the old and moves traffic only when
//! all of the project's services there are healthy; a droplet that refuses stops the rollout,
//! and the droplets already moved go back to what they ran.

mod kubernetes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet::deploy_config::Platform;
use fleet::release::{Artifact, Outcome, Release, Releases, Version};
use fleet::{ServiceKind, State};
use serde::Serialize;
use sha2::Digest;

use super::Context;
use super::config::Config;
use crate::agent::services::{
    ContainerImage, DeployAnswer, DeployRefusal, DeployRequest, Relay, ServiceSpec,
};
use crate::control::sealed;
use crate::control::{AgentClient, FleetKey};
use crate::engine::Engine;
use crate::output;
use crate::release::artifact::{self, Store};
use crate::release::{Records, git, image};
use crate::secrets;

/// Artifacts kept per project-environment (the running release's always among them).
const KEPT_RELEASES: usize = 5;
/// How long one droplet may take to start, check and switch a release.
const DROPLET_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a UAT release comes from.
pub enum Source {
    Git { branch: String },
    Local(PathBuf),
}

/// A project-environment ready to receive a release.
struct Target<'a> {
    config: &'a Config,
    state: State,
    key: FleetKey,
    project: String,
    environment: String,
    project_env: String,
    /// Resolved and sealed: service → variable → value.
    secrets: BTreeMap<String, BTreeMap<String, sealed::Sealed>>,
    platform: Platform,
    /// The administrator's container engine, on the container platforms.
    engine: Option<Engine>,
    /// What starts a service, and where it came from: `templates/process.sh.j2` on the process
    /// platform, `templates/container.json.j2` on the container platforms (or the built-in one).
    start_template: (String, String),
    /// Where the project-environment's infrastructure services listen.
    wiring: BTreeMap<String, String>,
    /// The infrastructure on master the services reach through their droplets' relays.
    relays: Vec<Relay>,
    /// Which variable (and level) each secret came from, for the deploy's output.
    secret_sources: Vec<String>,
}

pub async fn uat(context: &Context, project: &str, source: Source) -> anyhow::Result<()> {
    let config = context.load_config()?;
    // One change to the fleet at a time: deploys, rollbacks and --orchestrate wait for each other.
    let _lock = context.lock("--deploy-uat")?;
    let target = target(context, &config, project, "uat").await?;
    let cache = context.workspace.deploy_cache();
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M").to_string();

    // The tree to build, and what the record says of it.
    let build = cache.join("build").join(format!("{project}-{}", std::process::id()));
    let (tree, mut release, repo) = match &source {
        Source::Git { branch } => {
            let url = repository_url(&config, project)?;
            let repo = git::Repo::fetch(&url, &cache.join("repos").join(project))?;
            let commit = repo.branch_commit(branch)?;
            let tags = repo.tags()?;
            let version = Version::next_after(tags.iter().map(String::as_str)).uat_tag(&stamp);
            let _ = std::fs::remove_dir_all(&build);
            repo.export(&commit, &build)?;
            let mut release = blank(&target, &version);
            release.commit = Some(commit);
            release.branch = Some(branch.clone());
            (build.clone(), release, Some(repo))
        }
        Source::Local(path) => {
            if !path.is_dir() {
                bail!("--project-path {} is not a directory", path.display());
            }
            let content = artifact::pack(path)?.digest;
            let seconds = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
            let mut release = blank(&target, &format!("local-{seconds}-{}", &content[..12]));
            release.commit = git::head_of(path);
            release.local_tree = Some(fleet::release::LocalTree {
                path: path.display().to_string(),
                content_hash: content,
            });
            (path.clone(), release, None)
        }
    };
    let built = build_artifacts(context, &target, &release.version, &tree).await;
    if matches!(source, Source::Git { .. }) {
        let _ = std::fs::remove_dir_all(&build);
    }
    release.artifacts = built?;
    release.services = recorded_services(&target, &release)?;

    let outcome = roll_out(context, &target, &mut release).await;
    if outcome.is_ok()
        && let (Some(repo), Some(commit)) = (&repo, &release.commit)
    {
        match repo.tag_and_push(&release.version, commit) {
            Ok(()) => release.tag_pushed = true,
            Err(err) => crate::say!("Warning: {err:#}"),
        }
    }
    finish(context, &target, release, outcome).await
}

pub async fn prod(context: &Context, project: &str, tag: Option<&str>) -> anyhow::Result<()> {
    let config = context.load_config()?;
    // One change to the fleet at a time: deploys, rollbacks and --orchestrate wait for each other.
    let _lock = context.lock("--deploy-prod")?;
    let target = target(context, &config, project, "prod").await?;
    let uat_env = fleet::model::project_env(project, "uat");
    let uat = Records::new(context.workspace.config_dir(), &uat_env).load()?;
    let promoted = match tag {
        Some(tag) => uat.find(tag).with_context(|| {
            format!(
                "{tag} is not a release that served in {uat_env}; production only runs what UAT \
                 ran (see --releases {project} uat)"
            )
        })?,
        None => uat.current().with_context(|| {
            format!("{uat_env} has no release yet; run --deploy-uat {project} first")
        })?,
    };
    if tag.is_none() && promoted.local_tree.is_some() {
        bail!(
            "{uat_env} runs {}, built from a local tree that no tag records; production takes \
             releases from Git: run --deploy-uat {project} from Git first, or name this one with \
             --tag {} to promote it anyway",
            promoted.version,
            promoted.version
        );
    }
    let mut release = again(&target, promoted)?;
    release.promoted_from = Some(format!("{uat_env} {}", promoted.version));
    let outcome = roll_out(context, &target, &mut release).await;
    finish(context, &target, release, outcome).await
}

pub async fn rollback(
    context: &Context,
    project: &str,
    environment: &str,
    version: Option<&str>,
) -> anyhow::Result<()> {
    let config = context.load_config()?;
    let _lock = context.lock("--rollback")?;
    let target = target(context, &config, project, environment).await?;
    let releases = Records::new(context.workspace.config_dir(), &target.project_env).load()?;
    let current = releases.current().map(|r| r.version.clone());
    let back_to = match version {
        Some(version) => releases.find(version).with_context(|| {
            format!(
                "{version} never served in {}; see --releases {project} {environment}",
                target.project_env
            )
        })?,
        None => releases.previous().with_context(|| {
            format!("{} has no earlier release to go back to", target.project_env)
        })?,
    };
    if current.as_deref() == Some(back_to.version.as_str()) {
        bail!("{} already runs {}", target.project_env, back_to.version);
    }
    let mut release = again(&target, back_to)?;
    release.rollback_to = Some(back_to.version.clone());
    release.promoted_from = back_to.promoted_from.clone();
    let outcome = roll_out(context, &target, &mut release).await;
    finish(context, &target, release, outcome).await
}

/// Runs a project-environment's serving release again where the CSV places it now, once
/// `--orchestrate` has moved it or given it more droplets; says where it runs, or nothing where
/// no release serves. Each droplet keeps serving until the release runs beside it. A release
/// that could not run there is recorded as failed and is the error.
pub async fn carry(
    context: &Context,
    config: &Config,
    project: &str,
    environment: &str,
) -> anyhow::Result<Option<String>> {
    let project_env = fleet::model::project_env(project, environment);
    let records = Records::new(context.workspace.config_dir(), &project_env);
    let Some(current) = records.load()?.current().cloned() else { return Ok(None) };
    let target = target(context, config, project, environment).await?;
    let mut release = again(&target, &current)?;
    release.branch = current.branch.clone();
    release.local_tree = current.local_tree.clone();
    release.promoted_from = current.promoted_from.clone();
    release.placed_anew = true;
    let outcome = roll_out(context, &target, &mut release).await;
    record(context, &target, &mut release, &outcome).await?;
    match outcome {
        Ok(()) => Ok(Some(format!(
            "{project_env}: {} runs where it is placed now ({})",
            release.version,
            release.droplets.join(", ")
        ))),
        Err(stopped) => bail!("{} did not run there: {}", release.version, stopped.reason),
    }
}

/// A new release of what `earlier` ran: its commit, artifacts, start scripts and health checks,
/// built for this target's platform.
fn again(target: &Target, earlier: &Release) -> anyhow::Result<Release> {
    same_platform(target, earlier)?;
    let mut release = blank(target, &earlier.version);
    release.commit = earlier.commit.clone();
    release.artifacts = earlier.artifacts.clone();
    release.services = earlier.services.clone();
    release.config_hash = earlier.config_hash.clone();
    Ok(release)
}

/// What `--releases --json` prints.
#[derive(Serialize)]
struct Listing<'a> {
    project_env: String,
    current: Option<&'a str>,
    releases: Vec<&'a Release>,
}

pub fn list(context: &Context, project: &str, environment: &str) -> anyhow::Result<()> {
    let deploy = context.load_deploy_config()?;
    if !deploy.projects.contains_key(project) {
        let known: Vec<&str> = deploy.projects.keys().map(String::as_str).collect();
        bail!(
            "{project} is not a project in deployment_config.json (it has: {})",
            known.join(", ")
        );
    }
    if !deploy.environments_of(project).iter().any(|e| e == environment) {
        bail!(
            "{project} has no {environment} environment (it has: {})",
            deploy.environments_of(project).join(", ")
        );
    }
    let project_env = fleet::model::project_env(project, environment);
    let releases = Records::new(context.workspace.config_dir(), &project_env).load()?;
    let current = releases.current().map(|r| r.version.as_str());
    if context.json {
        output::print_json(&Listing {
            project_env,
            current,
            releases: releases.releases.iter().rev().collect(),
        });
        return Ok(());
    }
    if releases.releases.is_empty() {
        crate::say!("{project_env} has no releases yet.");
        return Ok(());
    }
    let serving = releases.releases.iter().rposition(|r| r.outcome == Outcome::Deployed);
    let rows = releases.releases.iter().enumerate().rev().map(|(index, r)| {
        let outcome = match &r.outcome {
            Outcome::Deployed if Some(index) == serving => "serving".to_string(),
            Outcome::Deployed => "deployed".to_string(),
            Outcome::Failed { reason } => format!("failed: {reason}"),
        };
        let source = match (&r.promoted_from, &r.rollback_to, &r.local_tree, &r.branch) {
            _ if r.placed_anew => "placed anew".to_string(),
            (_, Some(to), _, _) => format!("rollback to {to}"),
            (Some(from), _, _, _) => format!("promoted from {from}"),
            (_, _, Some(tree), _) => format!("local tree {}", tree.path),
            (_, _, _, Some(branch)) => format!("branch {branch}"),
            _ => String::new(),
        };
        let commit =
            r.commit.as_deref().map(|c| c[..c.len().min(10)].to_string()).unwrap_or_default();
        vec![r.version.clone(), commit, r.at.clone(), source, r.droplets.join(" "), outcome]
    });
    crate::say!(
        "{}",
        output::table(["VERSION", "COMMIT", "AT", "SOURCE", "DROPLETS", "OUTCOME"], rows)
    );
    Ok(())
}

/// What `--reproduce --json` prints.
#[derive(Serialize)]
struct Reproduced {
    tag: String,
    project_env: String,
    commit: String,
    dir: String,
    artifacts: Vec<Check>,
}

#[derive(Serialize)]
struct Check {
    service: String,
    /// The build context's digest.
    digest: String,
    /// The image the release ran, on the container platforms: not rebuilt, since an image's
    /// id records when it was built; its build context is what is compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    matches: bool,
}

pub fn reproduce(context: &Context, tag: &str, dir: &Path) -> anyhow::Result<()> {
    let config = context.load_config()?;
    let found =
        Records::all(context.workspace.config_dir())?.into_iter().find_map(|(pe, releases)| {
            releases
                .releases
                .into_iter()
                .rev()
                .find(|r| r.version == tag && r.tag_pushed)
                .map(|r| (pe, r))
        });
    let Some((project_env, release)) = found else {
        bail!(
            "no release tagged {tag} is recorded in {}/releases",
            context.workspace.config_dir().display()
        );
    };
    let commit = release.commit.clone().context("the release names no commit")?;
    if dir.exists() && !dir.is_dir() {
        bail!("--reproduce-dir {} exists and is not a directory", dir.display());
    }
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("--reproduce-dir {} exists and is not empty", dir.display());
    }
    let url = repository_url(&config, &release.project)?;
    let repo = git::Repo::fetch(
        &url,
        &context.workspace.deploy_cache().join("repos").join(&release.project),
    )?;
    let tagged = repo.tag_commit(tag)?;
    if tagged != commit {
        bail!("the tag {tag} now points at {tagged}, not at the released commit {commit}");
    }
    repo.export(&commit, dir)?;
    let mut checks = Vec::new();
    for (service, artifact) in &release.artifacts {
        let packed = artifact::pack(&dir.join(&artifact.context))?;
        checks.push(Check {
            service: service.clone(),
            digest: artifact.digest.clone(),
            image: artifact.image.clone(),
            matches: packed.digest == artifact.digest,
        });
    }
    let record = serde_json::to_vec_pretty(&release).expect("records always serialise");
    std::fs::write(dir.join(".orchestrator-release.json"), record)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    let all_match = checks.iter().all(|c| c.matches);
    if context.json {
        output::print_json(&Reproduced {
            tag: tag.to_string(),
            project_env,
            commit,
            dir: dir.display().to_string(),
            artifacts: checks,
        });
    } else {
        crate::say!("{tag} of {project_env} (commit {commit}) written to {}.", dir.display());
        let rows = checks.iter().map(|c| {
            vec![
                c.service.clone(),
                c.digest[..16].to_string(),
                c.image.as_deref().map_or("-", short_image).to_string(),
                if c.matches { "yes" } else { "NO" }.to_string(),
            ]
        });
        let header = ["SERVICE", "BUILD CONTEXT", "IMAGE IT RAN", "CONTEXT REBUILT IDENTICALLY"];
        crate::say!("{}", output::table(header, rows));
    }
    if !all_match {
        bail!("the tree of {tag} does not rebuild the artifacts the release ran");
    }
    Ok(())
}

/// A release runs again only on the platform it was built for.
fn same_platform(target: &Target, release: &Release) -> anyhow::Result<()> {
    if release.platform != target.platform.as_str() {
        bail!(
            "{} was built for the {} platform, and deployment_platform is now {}; it cannot run \
             as it is: deploy a new release with --deploy-uat {}",
            release.version,
            release.platform,
            target.platform.as_str(),
            target.project
        );
    }
    Ok(())
}

/// Checks everything a deploy needs before anything changes.
async fn target<'a>(
    context: &Context,
    config: &'a Config,
    project: &str,
    environment: &str,
) -> anyhow::Result<Target<'a>> {
    let deploy = &config.deploy;
    let Some(project_config) = deploy.projects.get(project) else {
        let known: Vec<&str> = deploy.projects.keys().map(String::as_str).collect();
        bail!(
            "{project} is not a project in {} (it has: {})",
            context.workspace.deployment_config().display(),
            known.join(", ")
        );
    };
    if !deploy.environments_of(project).iter().any(|e| e == environment) {
        bail!(
            "{project} has no {environment} environment (it has: {})",
            deploy.environments_of(project).join(", ")
        );
    }
    let platform = deploy.deployment_platform;
    for (service, service_config) in &project_config.services {
        if platform == Platform::Process
            && service_config.command.as_deref().is_none_or(|c| c.trim().is_empty())
        {
            bail!(
                "{} at projects.{project}.services.{service}.command: the process platform needs \
                 the command that starts the service",
                context.workspace.deployment_config().display()
            );
        }
    }
    let project_env = fleet::model::project_env(project, environment);
    let state = context.store().load()?;
    let placed = state.project_services(&project_env).is_some_and(|s| !s.is_empty());
    if !placed {
        bail!("{project_env} has no services placed on droplets; run --orchestrate first");
    }
    let key = context.fleet_key()?;

    // Every secret of every service, or nothing happens.
    let mut sealed_secrets = BTreeMap::new();
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for (service, service_config) in &project_config.services {
        let mut values = BTreeMap::new();
        for name in &service_config.secrets {
            match secrets::resolve(&config.env, project, environment, name) {
                Ok(resolved) => {
                    let variable = fleet::names::env_prefix(name);
                    let purpose = format!("secret {variable}");
                    values.insert(variable, sealed::seal(&key, &purpose, &resolved.value));
                    found.push(format!("{name} from {} ({})", resolved.variable, resolved.level));
                }
                Err(absent) => missing.push(absent.to_string()),
            }
        }
        sealed_secrets.insert(service.clone(), values);
    }

    // Infrastructure on master: host and port in the open, the password as a secret.
    let mut wiring = BTreeMap::new();
    let instances = fleet::infrastructure::instances(deploy, &state);
    let master_ip = state.master().map(|m| m.ip.clone()).unwrap_or_default();
    let in_cluster = super::infrastructure::cluster_instances(config, &state);
    let mut relays = Vec::new();
    for instance in fleet::infrastructure::used_by(&instances, &project_env) {
        let prefix = fleet::infrastructure::variable_prefix(&instance.name);
        let host = if in_cluster.contains(instance) {
            super::infrastructure::cluster::host(config, instance)
        } else {
            // Each droplet's agent relays the port to master and names its own address.
            relays.push(Relay {
                variable: format!("{prefix}_HOST"),
                port: fleet::infrastructure::wired_port(&state, instance),
            });
            master_ip.clone()
        };
        wiring.insert(format!("{prefix}_HOST"), host);
        let port = fleet::infrastructure::wired_port(&state, instance);
        wiring.insert(format!("{prefix}_PORT"), port.to_string());
        let Some(secret) = &deploy.infrastructure[&instance.name].password_secret else { continue };
        match secrets::resolve(&config.env, project, environment, secret) {
            Ok(resolved) => {
                let variable = format!("{prefix}_PASSWORD");
                let purpose = format!("secret {variable}");
                for values in sealed_secrets.values_mut() {
                    values.insert(variable.clone(), sealed::seal(&key, &purpose, &resolved.value));
                }
                found.push(format!("{secret} from {} ({})", resolved.variable, resolved.level));
            }
            Err(absent) => missing.push(absent.to_string()),
        }
    }

    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        bail!(
            "nothing was deployed: {} secret(s) missing:\n  {}",
            missing.len(),
            missing.join("\n  ")
        );
    }
    found.sort();
    found.dedup();

    let (file, built_in) = match platform {
        Platform::Process => ("process.sh.j2", super::setup::TEMPLATE_PROCESS),
        Platform::Kubernetes => ("kubernetes.json.j2", super::setup::TEMPLATE_KUBERNETES),
        _ => ("container.json.j2", super::setup::TEMPLATE_CONTAINER),
    };
    let template_path = context.workspace.templates_dir().join(file);
    let start_template = match std::fs::read_to_string(&template_path) {
        Ok(text) => (template_path.display().to_string(), text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            (format!("the built-in {file}"), built_in.to_string())
        }
        Err(err) => bail!("cannot read {}: {err}", template_path.display()),
    };
    // Kubernetes runs images built on the administrator's Docker engine.
    let engine = match platform {
        Platform::Docker | Platform::Podman => Some(Engine::connect(platform).await?),
        Platform::Kubernetes => Some(Engine::connect(Platform::Docker).await?),
        Platform::Process => None,
    };
    let target = Target {
        config,
        state,
        key,
        platform,
        engine,
        start_template,
        wiring,
        relays,
        secret_sources: found,
        project: project.to_string(),
        environment: environment.to_string(),
        project_env,
        secrets: sealed_secrets,
    };
    // A template that cannot be rendered stops the deploy before anything is built.
    let probe = blank(&target, "v0.0.0");
    for (service, service_config) in &project_config.services {
        render_start(&target, &probe, service, service_config.command.as_deref())?;
    }
    Ok(target)
}

fn repository_url(config: &Config, project: &str) -> anyhow::Result<String> {
    let Some(git) = &config.deploy.git_config else {
        bail!(
            "deployment_config.json has no git_config; add one, or deploy with --local --project-path"
        );
    };
    Ok(git
        .url_pattern
        .replace("{base_url}", git.base_url.trim_end_matches('/'))
        .replace("{project}", project))
}

/// A release record before it has artifacts or an outcome.
fn blank(target: &Target, version: &str) -> Release {
    Release {
        version: version.to_string(),
        project: target.project.clone(),
        environment: target.environment.clone(),
        commit: None,
        branch: None,
        tag_pushed: false,
        local_tree: None,
        artifacts: BTreeMap::new(),
        services: BTreeMap::new(),
        config_hash: config_hash(target),
        platform: target.platform.as_str().into(),
        droplets: Vec::new(),
        at: crate::clock::now_rfc3339(),
        outcome: Outcome::Deployed,
        promoted_from: None,
        rollback_to: None,
        placed_anew: false,
    }
}

/// A hash of the service definitions (secret names, never values).
fn config_hash(target: &Target) -> String {
    let services = &target.config.deploy.projects[&target.project].services;
    let text = serde_json::to_vec(services).expect("service definitions always serialise");
    hex::encode(sha2::Sha256::digest(&text))[..16].to_string()
}

/// Packs each service's build context and keeps the artifact; on the container platforms,
/// builds the service's image from it.
async fn build_artifacts(
    context: &Context,
    target: &Target<'_>,
    version: &str,
    tree: &Path,
) -> anyhow::Result<BTreeMap<String, Artifact>> {
    let project = &target.project;
    let store = store(context);
    let progress = crate::progress::Progress::new();
    let mut artifacts = BTreeMap::new();
    for (service, service_config) in &target.config.deploy.projects[project].services {
        let build_context = service_config.build_context.clone().unwrap_or_else(|| ".".into());
        let dir = tree.join(&build_context);
        if !dir.is_dir() {
            bail!(
                "deployment_config.json at projects.{project}.services.{service}.build_context: \
                 {build_context:?} is not a directory of the project's tree"
            );
        }
        let packed = artifact::pack(&dir)?;
        store.keep(&packed)?;
        let mut artifact = Artifact {
            digest: packed.digest,
            bytes: packed.bytes.len() as u64,
            context: build_context,
            image: None,
        };
        if let Some(engine) = &target.engine {
            let containerfile = image::containerfile_in_context(
                project,
                service,
                service_config,
                &artifact.context,
            )?;
            if !dir.join(&containerfile).is_file() {
                bail!(
                    "deployment_config.json at projects.{project}.services.{service}.\
                     containerfile_path: the project's tree has no {}/{containerfile}",
                    artifact.context.trim_end_matches('/')
                );
            }
            let step = progress.start(format!("building the image of {service}"));
            let workspace = context.workspace.root().display().to_string();
            let built = image::build(
                engine,
                &workspace,
                project,
                service,
                version,
                &containerfile,
                &service_config.build_args,
                packed.bytes,
            )
            .await;
            match built {
                Ok(id) => {
                    step.done(format!("image of {service}: {}", short_image(&id)));
                    artifact.image = Some(id);
                }
                Err(err) => {
                    step.failed(format!("image of {service} did not build"));
                    return Err(err);
                }
            }
        }
        artifacts.insert(service.clone(), artifact);
    }
    Ok(artifacts)
}

/// `sha256:0123456789ab`.
fn short_image(id: &str) -> &str {
    &id[..id.len().min(19)]
}

fn store(context: &Context) -> Store {
    Store::new(context.workspace.deploy_cache().join("artifacts"))
}

/// Why a rollout stopped: one line for the record, and everything for the person.
struct Stopped {
    reason: String,
    details: String,
}

/// The droplets of the project-environment, in fleet order, with the services each runs.
fn placement(target: &Target) -> Vec<(String, Vec<String>)> {
    let services = target.state.project_services(&target.project_env).cloned().unwrap_or_default();
    target
        .state
        .droplet_names()
        .into_iter()
        .filter_map(|droplet| {
            let here: Vec<String> = services
                .iter()
                .filter(|(_, record)| record.assigned_droplets.iter().any(|d| d == droplet))
                .map(|(name, _)| name.clone())
                .collect();
            (!here.is_empty()).then(|| (droplet.to_string(), here))
        })
        .collect()
}

/// What one droplet is asked to run for `release`.
fn request(
    target: &Target,
    release: &Release,
    services: &[String],
) -> anyhow::Result<DeployRequest> {
    let configs = &target.config.deploy.projects[&target.project].services;
    let records = target.state.project_services(&target.project_env).cloned().unwrap_or_default();
    let mut specs = Vec::new();
    for name in services {
        let (Some(config), Some(record)) = (configs.get(name), records.get(name)) else { continue };
        let artifact = release.artifacts.get(name).with_context(|| {
            format!("release {} has no artifact for {name}; deploy a new release", release.version)
        })?;
        specs.push(ServiceSpec {
            name: name.clone(),
            kind: record.kind,
            port: if record.kind == ServiceKind::Web { record.port } else { None },
            artifact: artifact.digest.clone(),
            // As the release ran it, when it recorded that; else as configured now.
            command: match release.services.get(name) {
                Some(recorded) => recorded.command.clone(),
                None => render_start(target, release, name, config.command.as_deref())?,
            },
            image: artifact
                .image
                .as_ref()
                .map(|id| ContainerImage { id: id.clone(), engine: target.platform }),
            health: release
                .services
                .get(name)
                .map_or_else(|| config.health_check.clone(), |r| r.health_check.clone()),
            secrets: target.secrets.get(name).cloned().unwrap_or_default(),
            environment: target.wiring.clone(),
            relays: target.relays.clone(),
        });
    }
    Ok(DeployRequest {
        project: target.project.clone(),
        environment: target.environment.clone(),
        version: release.version.clone(),
        services: specs,
    })
}

/// Deploys droplet by droplet; on a refusal, puts the droplets already moved back.
async fn roll_out(
    context: &Context,
    target: &Target<'_>,
    release: &mut Release,
) -> Result<(), Stopped> {
    let store = store(context);
    let client = AgentClient::new(target.key.clone(), "cli");
    let progress = crate::progress::Progress::new();
    let previous = Records::new(context.workspace.config_dir(), &target.project_env)
        .load()
        .ok()
        .and_then(|r| r.current().cloned());
    if !target.secret_sources.is_empty() && !context.json {
        crate::say!("Secrets: {}.", target.secret_sources.join("; "));
    }
    if target.platform == Platform::Kubernetes {
        return kubernetes::roll_out(context, target, release, previous.as_ref()).await;
    }
    let mut moved: Vec<(String, Vec<String>)> = Vec::new();
    // Ctrl-C part way would leave droplets on different versions: it stops the rollout and
    // puts the droplets already moved (and the one moving) back, like a failure.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    for (droplet, services) in placement(target) {
        let step = progress.start(format!("{droplet}: {} {}", target.project_env, release.version));
        let result = tokio::select! {
            result = deploy_to(target, &client, &store, release, &droplet, &services) => result,
            _ = &mut interrupted => {
                moved.push((droplet.clone(), services.clone()));
                Err("interrupted (Ctrl-C) before every droplet ran the release".to_string())
            }
        };
        match result {
            Ok(answer) => {
                let running: Vec<String> = answer
                    .services
                    .iter()
                    .map(|s| {
                        format!("{} pid {}", s.service, s.pid.map_or("-".into(), |p| p.to_string()))
                    })
                    .collect();
                step.done(format!(
                    "{droplet}: {} runs {} ({})",
                    target.project_env,
                    release.version,
                    running.join(", ")
                ));
                release.droplets.push(droplet.clone());
                moved.push((droplet, services));
            }
            Err(why) => {
                let first = why.lines().next().unwrap_or_default().to_string();
                step.failed(format!("{droplet}: {first}"));
                if let Some(previous) = &previous {
                    for (droplet, services) in &moved {
                        let back =
                            deploy_to(target, &client, &store, previous, droplet, services).await;
                        match back {
                            Ok(_) => crate::say!("{droplet} is back on {}.", previous.version),
                            Err(err) => crate::say!(
                                "Warning: {droplet} could not go back to {}: {err}",
                                previous.version
                            ),
                        }
                    }
                }
                return Err(Stopped { reason: format!("{droplet}: {first}"), details: why });
            }
        }
    }
    Ok(())
}

/// Uploads what `droplet` lacks and asks its agent to run the release.
async fn deploy_to(
    target: &Target<'_>,
    client: &AgentClient,
    store: &Store,
    release: &Release,
    droplet: &str,
    services: &[String],
) -> Result<DeployAnswer, String> {
    let record =
        target.state.droplet(droplet).ok_or_else(|| format!("{droplet} is not in the state"))?;
    let base = format!("http://{}:{}", record.ip, record.agent_port);
    let request = request(target, release, services).map_err(|e| format!("{e:#}"))?;
    for spec in &request.services {
        if let (Some(image), Some(engine)) = (&spec.image, &target.engine) {
            image::ship(client, &base, engine, image).await?;
            continue;
        }
        let bytes = store.read(&spec.artifact).map_err(|e| format!("{e:#}"))?;
        client
            .post_bytes(&base, &format!("/v1/artifacts/{}", spec.artifact), bytes, DROPLET_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
    }
    match client.post::<_, DeployAnswer>(&base, "/v1/deploy", &request, DROPLET_TIMEOUT).await {
        Ok(answer) => Ok(answer),
        Err(crate::control::client::ControlError::Refused { status: 422, body, .. }) => {
            let refusal: DeployRefusal = serde_json::from_str(&body)
                .map_err(|_| format!("{droplet} refused the release: {body}"))?;
            let mut text = format!(
                "{} on {droplet}: {}; the version it ran before keeps serving.",
                refusal.service, refusal.reason
            );
            if let (Some(url), Some(answer)) = (&refusal.probe_url, &refusal.last_answer) {
                text.push_str(&format!("\nHealth check {url} last answered: {answer}"));
            }
            if !refusal.logs.is_empty() {
                text.push_str(&format!(
                    "\nThe last {} lines of its log:\n  {}",
                    refusal.logs.len(),
                    refusal.logs.join("\n  ")
                ));
            }
            Err(text)
        }
        Err(err) => Err(err.to_string()),
    }
}

/// Records the release, snapshots the droplets it reached and prunes old artifacts.
/// Keeps the release's record (failed, and why, if it stopped); snapshots the droplets it
/// runs on once it serves.
async fn record(
    context: &Context,
    target: &Target<'_>,
    release: &mut Release,
    outcome: &Result<(), Stopped>,
) -> anyhow::Result<()> {
    let records = Records::new(context.workspace.config_dir(), &target.project_env);
    let mut releases: Releases = records.load()?;
    if let Err(stopped) = outcome {
        release.outcome = Outcome::Failed { reason: stopped.reason.clone() };
    }
    releases.releases.push(release.clone());
    records.save(&releases)?;
    if outcome.is_ok() {
        snapshot(context, target, &release.droplets).await;
    }
    Ok(())
}

async fn finish(
    context: &Context,
    target: &Target<'_>,
    mut release: Release,
    outcome: Result<(), Stopped>,
) -> anyhow::Result<()> {
    record(context, target, &mut release, &outcome).await?;
    if outcome.is_ok() {
        // Every agent learns what serves now, for the dashboard.
        if let Err(err) =
            super::publish::publish(context, deploy_config(target), &target.state, &target.key)
                .await
        {
            crate::say!("Warning: the agents did not all hear of the release: {err:#}");
        }
        let mut kept = Vec::new();
        let mut images = Vec::new();
        for (_, releases) in Records::all(context.workspace.config_dir())? {
            kept.extend(releases.kept_digests(KEPT_RELEASES));
            images.extend(releases.kept_images(KEPT_RELEASES));
        }
        store(context).prune(&kept);
        if let Some(engine) = &target.engine {
            let workspace = context.workspace.root().display().to_string();
            if let Err(err) = engine.prune_images(&workspace, &images).await {
                crate::say!("Warning: old images were not pruned: {err}");
            }
        }
    }
    if context.json {
        output::print_json(&release);
    } else if outcome.is_ok() {
        crate::say!(
            "{} now runs {} on {}.",
            target.project_env,
            release.version,
            release.droplets.join(", ")
        );
        match (
            &release.local_tree,
            release.tag_pushed,
            &release.promoted_from,
            &release.rollback_to,
        ) {
            (Some(tree), _, _, _) => crate::say!(
                "Built from the local tree {} (content {}); no tag was pushed.",
                tree.path,
                &tree.content_hash[..16]
            ),
            (_, true, _, _) => crate::say!("Tagged {} and pushed the tag.", release.version),
            (_, _, _, Some(_)) => crate::say!("Rolled back; nothing was rebuilt."),
            (_, _, Some(from), _) => {
                crate::say!("Promoted {from} as it ran there; nothing was rebuilt.")
            }
            _ => {}
        }
    }
    if let Err(stopped) = outcome {
        bail!("the release of {} stopped: {}", target.project_env, stopped.details);
    }
    Ok(())
}

/// A snapshot of each droplet the release reached, within the retention setting.
async fn snapshot(context: &Context, target: &Target<'_>, droplets: &[String]) {
    let deploy = &target.config.deploy;
    let provider = match context.provider(deploy, &target.config.env, Some(target.key.clone())) {
        Ok(provider) => provider,
        Err(err) => {
            crate::say!("Warning: no snapshots after the release: {err:#}");
            return;
        }
    };
    let Ok(observed) = provider.list().await else { return };
    for name in droplets {
        let Some(droplet) = observed.iter().find(|d| d.name == *name) else { continue };
        let keep = deploy.snapshot_retention;
        if let Err(err) = crate::provider::snapshot_keeping(provider.as_ref(), droplet, keep).await
        {
            crate::say!("Warning: no snapshot of {name} after the release: {err}");
        }
    }
}

/// How each service of a new release starts and is checked, from the configuration now.
fn recorded_services(
    target: &Target,
    release: &Release,
) -> anyhow::Result<BTreeMap<String, fleet::release::RecordedService>> {
    let configs = &target.config.deploy.projects[&target.project].services;
    let mut services = BTreeMap::new();
    for (name, config) in configs {
        let command = render_start(target, release, name, config.command.as_deref())?;
        services.insert(
            name.clone(),
            fleet::release::RecordedService { command, health_check: config.health_check.clone() },
        );
    }
    Ok(services)
}

fn deploy_config<'a>(target: &Target<'a>) -> &'a fleet::DeploymentConfig {
    &target.config.deploy
}

/// What starts `service`: the shell script from `templates/process.sh.j2`, or the container's
/// settings from `templates/container.json.j2`.
fn render_start(
    target: &Target,
    release: &Release,
    service: &str,
    command: Option<&str>,
) -> anyhow::Result<String> {
    if target.platform == Platform::Kubernetes {
        return kubernetes::recorded(target, release, service);
    }
    let (origin, source) = &target.start_template;
    let mut environment = minijinja::Environment::new();
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let command_args = match target.platform {
        Platform::Process => None,
        _ => image::command_args(command).with_context(|| {
            format!(
                "deployment_config.json at projects.{}.services.{service}.command",
                target.project
            )
        })?,
    };
    let rendered = environment.render_str(
        source,
        minijinja::context! {
            project => &target.project,
            environment => &target.environment,
            service => service,
            version => &release.version,
            command => command.unwrap_or_default(),
            command_args => command_args,
        },
    );
    let rendered = rendered.map_err(|err| {
        anyhow::anyhow!(
            "{origin}, line {}: {}",
            err.line().unwrap_or(0),
            err.detail().map_or_else(|| err.kind().to_string(), str::to_string)
        )
    })?;
    match target.platform {
        Platform::Process => Ok(rendered),
        _ => image::settings(origin, service, &rendered),
    }
}
