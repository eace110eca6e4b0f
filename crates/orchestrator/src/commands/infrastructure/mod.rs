//! Infrastructure services, started by `--orchestrate` and restarted by `--restart-infra`: on
//! master (as processes, or containers on docker and podman), or in the Kubernetes cluster on
//! the kubernetes platform when the definition names an image. The definitions come from
//! `deployment_config.json`, the passwords from the usual secret lookup, sealed for master's
//! agent.

pub mod cluster;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet::State;
use fleet::deploy_config::{InfraConfig, Platform};
use fleet::infrastructure::Instance;

use super::Context;
use super::config::Config;
use crate::agent::services::infra::{self, InfraImage, InfraRequest, InfraSpec, InfraView};
use crate::control::sealed;
use crate::control::{AgentClient, FleetKey};
use crate::output;
use crate::secrets;

/// What should run: each instance with its definition, a line for each one that cannot run
/// saying why, and the keys of those whose password is not set here.
type Specs = (Vec<(Instance, InfraSpec)>, Vec<String>, Vec<String>);

/// The instances to run, and a line for each one that cannot run, saying why.
pub fn specs(config: &Config, state: &State, key: &FleetKey) -> Specs {
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    let mut unresolved = Vec::new();
    for instance in fleet::infrastructure::instances(&config.deploy, state) {
        let definition = &config.deploy.infrastructure[&instance.name];
        let Some(process) = &definition.process else {
            problems.push(format!(
                "{} for {} has no command to run it (infrastructure.{}.process)",
                instance.name, instance.project_env, instance.name
            ));
            continue;
        };
        if let Some(secret) = secret_in_command(config, &instance, &process.command) {
            problems.push(format!(
                "{} for {} is not started (or left as it runs): its command holds the value of \
                 secret {secret}, which would show in every process listing; write it into \
                 infrastructure.{}.process.config (the password as {{{{ password }}}})",
                instance.name, instance.project_env, instance.name
            ));
            unresolved.push(format!("{} {}", instance.name, instance.project_env));
            continue;
        }
        let password = match &definition.password_secret {
            Some(secret) => {
                match secrets::resolve(
                    &config.env,
                    &instance.project,
                    &instance.environment,
                    secret,
                ) {
                    Ok(found) => Some(sealed::seal(
                        key,
                        &infra::password_purpose(&instance.name, &instance.project_env),
                        &found.value,
                    )),
                    Err(missing) => {
                        problems.push(format!(
                            "{} for {} is not started (or left as it runs): {missing}",
                            instance.name, instance.project_env
                        ));
                        unresolved.push(format!("{} {}", instance.name, instance.project_env));
                        continue;
                    }
                }
            }
            None => None,
        };
        let spec = InfraSpec {
            name: instance.name.clone(),
            kind: instance.kind,
            project_env: instance.project_env.clone(),
            port: instance.port,
            command: process.command.clone(),
            config: process.config.clone(),
            password,
            image: image_of(config, definition),
        };
        specs.push((instance, spec));
    }
    (specs, problems, unresolved)
}

/// The name of a secret whose value an instance's command holds in the clear: its password,
/// or a secret of a service of its project.
fn secret_in_command(config: &Config, instance: &Instance, command: &str) -> Option<String> {
    let definition = &config.deploy.infrastructure[&instance.name];
    let services = config.deploy.projects.get(&instance.project).map(|p| &p.services);
    let names = definition
        .password_secret
        .iter()
        .chain(services.into_iter().flat_map(|s| s.values()).flat_map(|s| &s.secrets));
    names.into_iter().find_map(|name| {
        let found =
            secrets::resolve(&config.env, &instance.project, &instance.environment, name).ok()?;
        // Values this short would match by chance; nobody's password is that short.
        let value = found.value.expose();
        (value.len() >= 6 && command.contains(value)).then(|| name.clone())
    })
}

/// The image an instance runs from, on the platform's engine (docker, podman) or cluster
/// (kubernetes); none, a process on master, on the process platform or where it names none.
fn image_of(config: &Config, definition: &InfraConfig) -> Option<InfraImage> {
    let engine = config.deploy.deployment_platform;
    let reference = definition.image.clone().filter(|_| engine != Platform::Process)?;
    Some(InfraImage { reference, engine })
}

/// What differs between a running instance and its definition now, in a few words.
fn what_changed(running: &InfraView, wanted: &InfraSpec) -> String {
    let runs_as =
        |image: Option<&str>| image.map_or_else(|| "a process".to_string(), str::to_string);
    let mut differences = Vec::new();
    let wanted_image = wanted.image.as_ref().map(|i| i.reference.as_str());
    if running.image.as_deref() != wanted_image {
        differences.push(format!(
            "from {} to {}",
            runs_as(running.image.as_deref()),
            runs_as(wanted_image)
        ));
    }
    if running.port != wanted.port {
        differences.push(format!("port {} to {}", running.port, wanted.port));
    }
    if differences.is_empty() {
        "its command or configuration changed".into()
    } else {
        format!("changed {}", differences.join(", "))
    }
}

/// Whether an instance runs in the Kubernetes cluster rather than on master.
fn in_cluster(spec: &InfraSpec) -> bool {
    spec.image.as_ref().is_some_and(|i| i.engine == Platform::Kubernetes)
}

/// The instances of the configuration that run in the Kubernetes cluster.
pub fn cluster_instances(config: &Config, state: &State) -> Vec<Instance> {
    fleet::infrastructure::instances(&config.deploy, state)
        .into_iter()
        .filter(|i| {
            let definition = &config.deploy.infrastructure[&i.name];
            image_of(config, definition).is_some_and(|i| i.engine == Platform::Kubernetes)
        })
        .collect()
}

fn master(state: &State) -> anyhow::Result<String> {
    let master = state.master().context("the fleet has no master droplet; run --orchestrate")?;
    Ok(format!("http://{}:{}", master.ip, master.agent_port))
}

/// What master runs now.
pub async fn current(state: &State) -> anyhow::Result<Vec<InfraView>> {
    let url = format!("{}/infrastructure", master(state)?);
    let answer = crate::http::client().get(&url).timeout(Duration::from_secs(10)).send().await?;
    Ok(answer.error_for_status()?.json().await?)
}

/// Starts what is missing on master and in the cluster; restarts changed and stops removed
/// instances once confirmed (`--yes`, or a yes on the terminal). Returns what runs, and lines
/// to show.
pub async fn apply(
    context: &Context,
    config: &Config,
    state: &State,
    key: &FleetKey,
) -> anyhow::Result<(Vec<InfraView>, Vec<String>)> {
    if state.master().is_none() {
        // No fleet (it was just emptied): nothing runs, and nothing can.
        return Ok((Vec::new(), Vec::new()));
    }
    let (specs, mut lines, unresolved) = specs(config, state, key);
    let (in_cluster, on_master): (Vec<_>, Vec<_>) =
        specs.into_iter().partition(|(_, spec)| in_cluster(spec));
    let specs: Vec<InfraSpec> = on_master.into_iter().map(|(_, spec)| spec).collect();
    let (planned, client) = cluster::plan(context, config, key, &in_cluster, true).await?;
    if !planned.is_empty()
        && let Err(err) = &client
    {
        lines.push(format!(
            "the objects of {} instance(s) in the cluster are written to kubernetes/infrastructure/ \
             but not applied: {err}",
            planned.len()
        ));
    }
    let running = current(state).await.unwrap_or_default();
    if specs.is_empty() && running.is_empty() && planned.is_empty() {
        return Ok((Vec::new(), lines));
    }
    let mut changes = Vec::new();
    for view in &running {
        let key = format!("{} {}", view.name, view.project_env);
        match specs.iter().find(|s| s.key() == key) {
            Some(spec) if spec.fingerprint() != view.fingerprint => changes
                .push((key, format!("{}: restarts it (its data stays)", what_changed(view, spec)))),
            Some(_) => {}
            None if unresolved.contains(&key) => {}
            None if planned.iter().any(|item| item.key == key) => changes.push((
                key,
                "runs in the cluster now: stops it on master (its data there stays)".into(),
            )),
            None => changes.push((key, "no longer configured: stops it (its data stays)".into())),
        }
    }
    for item in planned.iter().filter(|item| item.changed()) {
        changes.push((item.key.clone(), "changed: restarts its pod (its volume stays)".into()));
    }
    let mut confirmed = Vec::new();
    if !changes.is_empty() {
        let rows = changes.iter().map(|(key, what)| vec![key.clone(), what.clone()]);
        crate::say!("{}", output::table(["INFRASTRUCTURE", "CHANGE"], rows));
        let agreed = context.yes
            || (std::io::stdin().is_terminal()
                && super::confirm("Apply these infrastructure changes?", "infrastructure changes")
                    .is_ok());
        if agreed {
            confirmed = changes.iter().map(|(key, _)| key.clone()).collect();
        } else {
            lines.push(format!(
                "{} infrastructure change(s) wait for confirmation: run --orchestrate --yes",
                changes.len()
            ));
        }
    }
    let client_ok = client.as_ref().ok();
    if let Some(client) = client_ok {
        lines.extend(cluster::apply(&planned, client, &confirmed).await);
    }
    let mut views: Vec<InfraView> = Vec::new();
    if !specs.is_empty() || !running.is_empty() {
        let agents = AgentClient::new(key.clone(), "cli");
        let request = InfraRequest { instances: specs, confirmed, unresolved };
        views = agents
            .post(&master(state)?, "/v1/infrastructure", &request, Duration::from_secs(60))
            .await
            .context("master did not take the infrastructure")?;
    }
    // A snapshot of master once an instance starts or stops, so a replacement brings the new
    // one's data along and never brings back one that was stopped.
    let same = |a: &InfraView, b: &InfraView| a.name == b.name && a.project_env == b.project_env;
    let started = views.iter().any(|v| !running.iter().any(|r| same(r, v)));
    let stopped = running.iter().any(|r| !views.iter().any(|v| same(r, v)));
    if (started || stopped)
        && let Err(err) = snapshot_master(config, context, key).await
    {
        lines.push(format!("no snapshot of master after changing its infrastructure: {err:#}"));
    }
    for view in &views {
        if let Some(why) = &view.refused_change {
            lines.push(format!("{} {}: {why}", view.name, view.project_env));
        }
    }
    views.extend(cluster::views(&planned, client_ok).await);
    Ok((views, lines))
}

/// Renders and checks the objects of the instances that run in the cluster, so a template the
/// schemas refuse stops `--orchestrate` before anything changes.
pub fn check_cluster(
    context: &Context,
    config: &Config,
    state: &State,
    key: &FleetKey,
) -> anyhow::Result<()> {
    for (instance, spec) in cluster_specs(config, state, key) {
        cluster::objects(context, config, key, &instance, &spec)?;
    }
    Ok(())
}

/// The instances that run in the cluster, each with its definition.
fn cluster_specs(config: &Config, state: &State, key: &FleetKey) -> Vec<(Instance, InfraSpec)> {
    let (specs, _, _) = specs(config, state, key);
    specs.into_iter().filter(|(_, spec)| in_cluster(spec)).collect()
}

/// What runs in the cluster now, for `--status`, and why the cluster could not say, if it
/// could not.
pub async fn cluster_views(
    context: &Context,
    config: &Config,
    state: &State,
) -> Result<(Vec<InfraView>, Option<String>), String> {
    if cluster_instances(config, state).is_empty() {
        return Ok((Vec::new(), None));
    }
    let key = context.fleet_key().map_err(|err| format!("{err:#}"))?;
    let in_cluster = cluster_specs(config, state, &key);
    let (planned, client) = cluster::plan(context, config, &key, &in_cluster, false)
        .await
        .map_err(|err| format!("{err:#}"))?;
    Ok((cluster::views(&planned, client.as_ref().ok()).await, client.err()))
}

/// `--restart-infra NAME PROJECT ENVIRONMENT`.
pub async fn restart(
    context: &Context,
    name: &str,
    project: &str,
    environment: &str,
) -> anyhow::Result<()> {
    let state = context.store().load()?;
    let key = context.fleet_key()?;
    let project_env = fleet::model::project_env(project, environment);
    let instance_key = format!("{name} {project_env}");
    let config = context.load_config()?;
    if let Some(instance) = cluster_instances(&config, &state)
        .into_iter()
        .find(|i| i.name == name && i.project_env == project_env)
    {
        let place = cluster::restart(&config, &instance).await?;
        if context.json {
            output::print_json(&serde_json::json!({ "restarted": place }));
        } else {
            crate::say!("{name} for {project_env} restarted in the cluster ({place}).");
        }
        return Ok(());
    }
    let client = AgentClient::new(key, "cli");
    let views: Vec<InfraView> = match client
        .post(
            &master(&state)?,
            "/v1/infrastructure/restart",
            &serde_json::json!({"key": instance_key}),
            Duration::from_secs(60),
        )
        .await
    {
        Ok(views) => views,
        Err(crate::control::client::ControlError::Refused { status: 404, .. }) => {
            bail!("no infrastructure {name} runs for {project_env} on master; see --status")
        }
        Err(err) => return Err(err.into()),
    };
    if context.json {
        output::print_json(&views);
    } else {
        crate::say!("{name} for {project_env} restarted.");
    }
    Ok(())
}

/// Rows for tables: name, kind, project-environment, port, what runs it, state, health, pending.
pub fn rows(views: &[InfraView]) -> Vec<Vec<String>> {
    views
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                format!("{:?}", v.kind).to_lowercase(),
                v.project_env.clone(),
                v.port.to_string(),
                match (&v.image, &v.cluster) {
                    (Some(image), Some(place)) => format!("{image} in {place}"),
                    (Some(image), None) => image.clone(),
                    (None, _) => "process".into(),
                },
                v.state.clone(),
                if v.healthy { "healthy".into() } else { "not answering".into() },
                v.pending.clone().or_else(|| v.refused_change.clone()).unwrap_or_default(),
            ]
        })
        .collect()
}

pub(super) async fn snapshot_master(
    config: &Config,
    context: &Context,
    key: &FleetKey,
) -> anyhow::Result<()> {
    let provider = context.provider(&config.deploy, &config.env, Some(key.clone()))?;
    let observed = provider.list().await?;
    let master = observed
        .iter()
        .find(|d| d.name == fleet::model::MASTER)
        .context("master is not at the provider")?;
    crate::provider::snapshot_keeping(provider.as_ref(), master, config.deploy.snapshot_retention)
        .await?;
    Ok(())
}
