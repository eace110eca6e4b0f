//! `--orchestrate`: make the cloud match the CSV, then record the result and hand it to every
//! droplet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use fleet::plan::Action;
use fleet::{DesiredFleet, DropletStatus, Plan, State};
use serde::Serialize;

use super::apply::{ApplyReport, apply};
use super::publish::{Published, publish};
use super::{Config, Context, confirm};
use crate::output;
use crate::progress::Progress;
use crate::provider::firewall;

/// A CSV rewrite that `--scale` wants made once the plan is confirmed.
pub struct CsvRewrite {
    pub path: PathBuf,
    pub text: String,
}

pub async fn run(context: &Context, force: bool) -> anyhow::Result<()> {
    let config = context.load_config()?;
    converge(context, &config, force, None, "--orchestrate").await
}

/// Plans from `config`, shows the plan, confirms what destroys, applies, records the state.
pub async fn converge(
    context: &Context,
    config: &Config,
    force: bool,
    rewrite: Option<CsvRewrite>,
    command: &str,
) -> anyhow::Result<()> {
    let key = if context.dry_run { None } else { Some(context.fleet_key()?) };
    let lock = if context.dry_run { None } else { Some(context.lock(command)?) };
    let store = context.store();
    let previous = store.load()?;
    refuse_another_fleet(&previous, &config.deploy, &store)?;
    refuse_ports_of_infrastructure(context, &previous, &config.deploy)?;
    if lock.is_some() {
        store.check_writable()?;
    }
    let provider = context.provider(&config.deploy, &config.env, key.clone())?;
    super::config::check_sizes(config, provider.as_ref()).await?;
    let observed = provider.list().await?;
    let replaced: Vec<String> = replaced_while_away(&previous, &observed)
        .into_iter()
        .map(|line| {
            if context.dry_run {
                line.replace("recording it", "--orchestrate records it")
            } else {
                line
            }
        })
        .collect();

    let desired = DesiredFleet::from_config(&config.rows, &config.deploy);
    let plan = fleet::plan(&desired, &observed, &previous, force)?;
    if !context.json {
        for line in &replaced {
            crate::say!("{line}");
        }
        for warning in config.warnings.iter().chain(&plan.warnings) {
            crate::say!("Warning: {warning}");
        }
        print_plan(&plan);
    }
    let (Some(lock), Some(key)) = (lock, key) else {
        if context.json {
            output::print_json(&Outcome::new(
                &plan,
                config,
                true,
                &ApplyReport::default(),
                false,
                None,
            ));
        }
        return Ok(());
    };
    super::infrastructure::check_cluster(context, config, &previous, &key)?;
    if plan.is_destructive() && !context.yes {
        let summary = destructive_summary(&plan);
        confirm(&format!("This plan {summary}. Apply it?"), &format!("the plan {summary}"))?;
    }

    if let Some(rewrite) = rewrite {
        write_csv(&rewrite)?;
        if !context.json {
            crate::say!("Updated {}.", rewrite.path.display());
        }
    }

    let makes_droplets = plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::CreateDroplet { .. } | Action::ReplaceDroplet { .. }));
    if makes_droplets {
        // New droplets carry the fleet's SSH key for break-glass access, where the cloud has SSH.
        let public = super::expand_home(&config.deploy.ssh_key_path).with_extension("pub");
        if let Ok(public_key) = std::fs::read_to_string(&public) {
            provider.register_ssh_key(&public_key).await?;
        }
    }

    let started = Instant::now();
    let report =
        apply(Arc::clone(&provider), &plan, &observed, config.deploy.agent_port, &Progress::new())
            .await;
    let mut observed_after = provider.list().await?;
    for droplet in observed_after.iter_mut().filter(|d| d.status == DropletStatus::New) {
        *droplet = provider.wait_ready(droplet).await?;
    }
    if config.deploy.snapshot_new_droplets() {
        // A first snapshot of every new droplet, so an automatic recovery can restore it.
        for droplet in observed_after.iter().filter(|d| !observed.iter().any(|o| o.id == d.id)) {
            if let Err(err) = provider.snapshot(droplet).await {
                crate::say!("Warning: no first snapshot of {}: {err}", droplet.name);
            }
        }
    }
    let mut state = plan.state_after(&observed_after, &previous, provider.name());
    state.fleet = config.deploy.fleet_name.clone();
    record_heartbeat(context, &mut state);
    super::addresses::sync(&mut state, super::addresses::wanted(&config.env)?);
    let changed = !same_ignoring_time(&state, &previous);
    if changed {
        state.updated_at = Some(crate::clock::now_rfc3339());
        store.save(&lock, &state)?;
    }
    let policy =
        firewall::policy(&state, config.deploy.agent_port, config.deploy.load_balancer_port());
    let firewall = provider.apply_firewall(&policy).await?;
    // Releases go where the CSV places them now before nginx sends traffic there; the droplets
    // that lost a service stop it once nginx has moved on.
    let mut carried = Vec::new();
    let mut settled = Vec::new();
    for (project, environment) in placed_anew(&previous, &state) {
        let project_env = fleet::model::project_env(&project, &environment);
        match super::deploy::carry(context, config, &project, &environment).await {
            Ok(said) => {
                carried.extend(said);
                settled.push(project_env);
            }
            Err(err) => carried.push(format!(
                "{project_env}: the serving release could not run where it is placed now: {err:#}"
            )),
        }
    }
    let published = publish(context, &config.deploy, &state, &key).await?;
    carried.extend(retire_left_services(&previous, &state, &settled, &key).await);
    let (infrastructure, infra_lines) =
        match super::infrastructure::apply(context, config, &state, &key).await {
            Ok((views, lines)) => {
                // The ports the instances run on now, which the services are wired to; a
                // change waiting for confirmation keeps the port it runs on.
                let running = fleet::infrastructure::running_ports(
                    views.iter().map(|v| (v.name.as_str(), v.project_env.as_str(), v.port)),
                );
                if running != state.infrastructure {
                    state.infrastructure = running;
                    state.updated_at = Some(crate::clock::now_rfc3339());
                    store.save(&lock, &state)?;
                }
                (views, lines)
            }
            Err(err) => (Vec::new(), vec![format!("infrastructure not applied: {err:#}")]),
        };

    if context.json {
        let mut outcome = Outcome::new(&plan, config, false, &report, changed, Some(&published));
        outcome.firewall = firewall;
        outcome.infrastructure = infrastructure;
        outcome.warnings.extend(infra_lines);
        outcome.warnings.extend(carried);
        output::print_json(&outcome);
    } else {
        let attempted = report.done.len() + report.failed.len();
        if attempted > 0 {
            crate::say!(
                "Applied {} of {attempted} droplet actions in {:.1}s.",
                report.done.len(),
                started.elapsed().as_secs_f64()
            );
        }
        if changed {
            crate::say!("State written to {}.", store.path().display());
        }
        for line in &carried {
            crate::say!("{line}");
        }
        if let Some(firewall) = firewall {
            crate::say!("Firewall: {firewall}.");
            if policy.admin_sources.is_empty() {
                crate::say!(
                    "Warning: SSH is closed to everyone: no administrator address is recorded, and \
                     it cannot be detected from here; set ADMIN_IP in .env and run --init, or run \
                     --update-ip YOUR_ADDRESS"
                );
            }
        }
        print_published(&published);
        if !infrastructure.is_empty() {
            let rows = super::infrastructure::rows(&infrastructure);
            crate::say!(
                "{}",
                output::table(
                    [
                        "INFRASTRUCTURE",
                        "KIND",
                        "FOR",
                        "PORT",
                        "RUNS AS",
                        "STATE",
                        "HEALTH",
                        "PENDING"
                    ],
                    rows
                )
            );
        }
        for line in &infra_lines {
            crate::say!("Warning: {line}");
        }
    }
    if !report.failed.is_empty() {
        let lines: Vec<String> =
            report.failed.iter().map(|(action, err)| format!("  {action}: {err}")).collect();
        bail!(
            "{} action(s) failed; run --orchestrate again to retry them:\n{}",
            report.failed.len(),
            lines.join("\n")
        );
    }
    if let Some(lb) = &published.load_balancer
        && lb.nginx_installed
        && let Some(error) = &lb.error
    {
        bail!("the load balancer kept its last good configuration: {error}");
    }
    Ok(())
}

/// Sentences about droplets the fleet replaced on its own since the state was written.
pub(super) fn replaced_while_away(
    previous: &State,
    observed: &[fleet::ObservedDroplet],
) -> Vec<String> {
    let mut said = Vec::new();
    for (name, recorded) in &previous.droplets {
        if observed.iter().any(|d| d.id == recorded.id) {
            continue;
        }
        if let Some(now) = observed.iter().find(|d| d.name == *name) {
            said.push(format!(
                "{name} was replaced while you were away (id {} → {}, address {} → {}); recording it",
                recorded.id,
                now.id,
                recorded.ip,
                now.ip.as_deref().unwrap_or("none")
            ));
        }
    }
    said
}

/// Refuses to plan when the state belongs to another fleet name or provider: the droplets it
/// records would keep running, unseen, beside a new fleet.
fn refuse_another_fleet(
    previous: &State,
    deploy: &fleet::DeploymentConfig,
    store: &fleet::StateStore,
) -> anyhow::Result<()> {
    if previous.droplets.is_empty() {
        return Ok(());
    }
    let provider = deploy.provider.as_str();
    if !previous.provider.is_empty() && previous.provider != provider {
        bail!(
            "{} records droplets on the {} cloud, but the provider is now {provider}; they would keep \
             running beside a new fleet. Put the provider back and destroy them first (an empty \
             projects.csv and --orchestrate --yes), or move the state file aside if they are gone",
            store.path().display(),
            previous.provider
        );
    }
    if !previous.fleet.is_empty() && previous.fleet != deploy.fleet_name {
        bail!(
            "{} records droplets of fleet {:?}, but fleet_name is now {:?}; they would keep running \
             beside a new fleet. Put fleet_name back and destroy them first (an empty projects.csv \
             and --orchestrate --yes), or move the state file aside if they are gone",
            store.path().display(),
            previous.fleet,
            deploy.fleet_name
        );
    }
    Ok(())
}

/// Writes the scaled CSV where the file really is (through a symbolic link), keeping its
/// permissions.
fn write_csv(rewrite: &CsvRewrite) -> anyhow::Result<()> {
    let target = std::fs::canonicalize(&rewrite.path).unwrap_or_else(|_| rewrite.path.clone());
    let permissions = std::fs::metadata(&target).map(|m| m.permissions()).ok();
    fleet::store::write_atomically(&target, rewrite.text.as_bytes(), None)
        .with_context(|| format!("cannot write {}", target.display()))?;
    if let Some(permissions) = permissions {
        std::fs::set_permissions(&target, permissions)
            .with_context(|| format!("cannot set the mode of {}", target.display()))?;
    }
    Ok(())
}

fn print_published(published: &Published) {
    for (droplet, why) in &published.missed {
        crate::say!("Warning: droplet {droplet} did not take the fleet state: {why}");
    }
    for line in &published.notifications {
        crate::say!("Notifications: {line}");
    }
    match &published.load_balancer {
        Some(lb) if lb.nginx_running => {
            crate::say!("Load balancer: {} (the dashboard is at the same address)", lb.url)
        }
        Some(lb) if !lb.nginx_installed => {
            crate::say!(
                "Warning: no load balancer: {}",
                lb.error.as_deref().unwrap_or("nginx is not installed")
            )
        }
        Some(_) | None => {}
    }
}

/// The project-environments whose services `--orchestrate` moved, gave other droplets or
/// other ports.
fn placed_anew(previous: &State, state: &State) -> Vec<(String, String)> {
    state
        .projects
        .iter()
        .filter(|(project_env, services)| previous.projects.get(*project_env) != Some(services))
        .filter(|(project_env, _)| previous.projects.contains_key(*project_env))
        .filter_map(|(project_env, _)| fleet::model::split_project_env(project_env))
        .map(|(project, environment)| (project.to_string(), environment.to_string()))
        .collect()
}

/// Stops, on each droplet that still exists, the services of `settled` project-environments
/// that the CSV no longer places there; returns lines to show.
async fn retire_left_services(
    previous: &State,
    state: &State,
    settled: &[String],
    key: &crate::control::FleetKey,
) -> Vec<String> {
    let client = crate::control::AgentClient::new(key.clone(), "cli");
    let mut lines = Vec::new();
    for project_env in settled {
        let Some(before) = previous.projects.get(project_env) else { continue };
        let now = state.projects.get(project_env);
        let mut droplets: Vec<&String> =
            before.values().flat_map(|s| &s.assigned_droplets).collect();
        droplets.sort();
        droplets.dedup();
        for droplet in droplets {
            let keep: Vec<String> = now
                .into_iter()
                .flatten()
                .filter(|(_, s)| s.assigned_droplets.contains(droplet))
                .map(|(name, _)| name.clone())
                .collect();
            let left = before
                .iter()
                .any(|(name, s)| s.assigned_droplets.contains(droplet) && !keep.contains(name));
            let Some(record) = state.droplet(droplet).filter(|_| left) else { continue };
            let base = format!("http://{}:{}", record.ip, record.agent_port);
            let request =
                crate::agent::services::RetireRequest { project_env: project_env.clone(), keep };
            let timeout = std::time::Duration::from_secs(60);
            match client.post::<_, Vec<String>>(&base, "/v1/retire", &request, timeout).await {
                Ok(stopped) if !stopped.is_empty() => lines.push(format!(
                    "{project_env}: {} stopped on {droplet}, where it is no longer placed",
                    stopped.join(", ")
                )),
                Ok(_) => {}
                Err(err) => lines.push(format!(
                    "Warning: {project_env} still runs on {droplet}, where it is no longer placed: {err}"
                )),
            }
        }
    }
    lines
}

/// Refuses an agent or load-balancer port that an infrastructure instance runs on: both would
/// fail to listen, and the services wired to the instance would lose it.
fn refuse_ports_of_infrastructure(
    context: &Context,
    previous: &State,
    deploy: &fleet::DeploymentConfig,
) -> anyhow::Result<()> {
    let file = context.workspace.deployment_config();
    for (field, port) in
        [("agent_port", deploy.agent_port), ("load_balancer_port", deploy.load_balancer_port())]
    {
        if let Some((instance, _)) = previous.infrastructure.iter().find(|(_, p)| **p == port) {
            bail!(
                "{} at {field}: {port} is the port infrastructure {instance} runs on, on master; \
                 choose another",
                file.display()
            );
        }
    }
    Ok(())
}

fn print_plan(plan: &Plan) {
    if plan.is_empty() {
        crate::say!("Nothing to change: the fleet matches the configuration.");
        return;
    }
    let rows = plan.actions.iter().map(|a| vec![a.verb().to_string(), a.target(), a.detail()]);
    crate::say!("{}", output::table(["ACTION", "TARGET", "DETAIL"], rows));
}

fn destructive_summary(plan: &Plan) -> String {
    let count = |verb: &str| plan.actions.iter().filter(|a| a.verb() == verb).count();
    let mut parts = Vec::new();
    for (verb, past, noun) in [
        ("destroy", "destroys", "droplet"),
        ("replace", "replaces", "droplet"),
        ("resize", "resizes", "droplet"),
        ("remove", "removes", "service"),
    ] {
        let n = count(verb);
        if n > 0 {
            parts.push(format!("{past} {n} {noun}{}", if n == 1 { "" } else { "s" }));
        }
    }
    parts.join(" and ")
}

fn same_ignoring_time(a: &State, b: &State) -> bool {
    State { updated_at: None, ..a.clone() } == State { updated_at: None, ..b.clone() }
}

/// What `--orchestrate --json` prints.
#[derive(Serialize)]
struct Outcome {
    dry_run: bool,
    warnings: Vec<String>,
    plan: Vec<PlannedAction>,
    applied: Vec<String>,
    failed: Vec<Failure>,
    state_changed: bool,
    firewall: Option<String>,
    /// Droplets whose agent did not take the new fleet state, with why.
    unreached: Vec<Failure>,
    load_balancer: Option<crate::agent::api::LbReport>,
    /// Where alerts go, or why a configured channel is off.
    notifications: Vec<String>,
    /// The infrastructure services on master.
    infrastructure: Vec<crate::agent::services::infra::InfraView>,
}

#[derive(Serialize)]
struct PlannedAction {
    action: &'static str,
    target: String,
    detail: String,
    destructive: bool,
}

#[derive(Serialize)]
struct Failure {
    action: String,
    error: String,
}

impl Outcome {
    fn new(
        plan: &Plan,
        config: &Config,
        dry_run: bool,
        report: &ApplyReport,
        state_changed: bool,
        published: Option<&Published>,
    ) -> Outcome {
        let failure = |(action, error): &(String, String)| Failure {
            action: action.clone(),
            error: error.clone(),
        };
        Outcome {
            dry_run,
            warnings: config.warnings.iter().chain(&plan.warnings).cloned().collect(),
            plan: plan.actions.iter().map(PlannedAction::from).collect(),
            applied: report.done.clone(),
            failed: report.failed.iter().map(failure).collect(),
            state_changed,
            firewall: None,
            unreached: published
                .map(|p| p.missed.iter().map(failure).collect())
                .unwrap_or_default(),
            load_balancer: published.and_then(|p| p.load_balancer.clone()),
            notifications: published.map(|p| p.notifications.clone()).unwrap_or_default(),
            infrastructure: Vec::new(),
        }
    }
}

impl From<&Action> for PlannedAction {
    fn from(action: &Action) -> Self {
        PlannedAction {
            action: action.verb(),
            target: action.target(),
            detail: action.detail(),
            destructive: action.is_destructive(),
        }
    }
}

/// The state records who sends heartbeats and how often (in whole minutes, rounded up), as
/// `email_config.json` says.
fn record_heartbeat(context: &Context, state: &mut State) {
    let file = context.workspace.email_config();
    let Ok(email) = fleet::notify_config::load_email(&file) else { return };
    let names: Vec<String> = state.droplet_names().into_iter().map(str::to_string).collect();
    if let Some(heartbeat) = crate::notify::heartbeat_settings(&email, &names)
        && let Some((primary, backups)) = heartbeat.senders.split_first()
    {
        let minutes = u32::try_from(heartbeat.interval_ms.div_ceil(60_000)).unwrap_or(u32::MAX);
        state.update_heartbeat_config(Some(primary.clone()), Some(backups.to_vec()), Some(minutes));
    }
}
