//! `--status`: droplets with their live health, services with ports and placement, problems.
//!
//! The state file says what the fleet should be; the provider and the agents say what it is.
//! Status shows both and names every difference, without changing anything.

use std::collections::BTreeMap;
use std::time::Duration;

use fleet::{DropletStatus, ObservedDroplet, State};
use serde::Serialize;
use tokio::task::JoinSet;

use super::Context;
use crate::output;

/// What `--status --json` prints.
#[derive(Debug, Serialize)]
struct Status {
    provider: String,
    state_file: String,
    droplets: Vec<DropletView>,
    projects: BTreeMap<String, BTreeMap<String, fleet::state::ServiceRecord>>,
    monitoring: Vec<String>,
    /// What master's agent says of the load balancer; absent without a running master.
    load_balancer: Option<LoadBalancerView>,
    issues: Vec<String>,
    /// Secrets the configured services need that no variable holds, by project-environment.
    missing_secrets: BTreeMap<String, Vec<crate::secrets::Missing>>,
    summary: fleet::state::Summary,
    /// Droplets whose agent answered its health check just now.
    healthy_droplets: usize,
    /// The infrastructure services on master, with their health now.
    infrastructure: Vec<crate::agent::services::infra::InfraView>,
    /// Where alerts go, or why a configured channel is off.
    notifications: Vec<String>,
    /// The newest failures and recoveries any droplet saw or led, newest first.
    recent_failures_and_recoveries: Vec<DropletEvent>,
}

#[derive(Debug, Serialize)]
struct DropletEvent {
    droplet: String,
    #[serde(flatten)]
    event: crate::agent::events::Event,
}

#[derive(Debug, Serialize)]
struct LoadBalancerView {
    url: String,
    dashboard_url: String,
    nginx_running: bool,
    config_applied_at: Option<String>,
    error: Option<String>,
    upstreams: Vec<crate::agent::api::UpstreamStatus>,
    /// `route on droplet` for every target nginx sends no traffic to (its service does not
    /// answer, or its droplet is down).
    out_of_rotation: Vec<String>,
    /// Recent failures, recoveries and changes on master, newest first.
    recent_events: Vec<crate::agent::events::Event>,
}

#[derive(Debug, Serialize)]
struct DropletView {
    name: String,
    role: String,
    ip: String,
    size: String,
    region: String,
    agent_port: u16,
    /// `healthy`, `unreachable`, `not running` or `missing`.
    health: String,
    monitors: Vec<String>,
    monitored_by: Vec<String>,
    /// Each monitor's last check of this droplet and the fleet's verdict, as it reports them.
    seen_by_monitors: Vec<String>,
    /// Control requests this droplet's agent refused (unsigned, forged, stale, replayed).
    refused_requests: u64,
}

pub async fn run(context: &Context) -> anyhow::Result<()> {
    let config = context.load_config()?;
    let (deploy, env) = (&config.deploy, &config.env);
    let store = context.store();
    let state = store.load()?;
    let provider = context.provider(deploy, env, None)?;
    let observed = provider.list().await?;
    let (health, reports) = ask_agents(&observed).await;

    let replaced = super::orchestrate::replaced_while_away(&state, &observed);
    let was_replaced =
        |name: &str| replaced.iter().any(|line| line.starts_with(&format!("{name} was replaced")));
    let mut issues = state.validate();
    issues.extend(
        replaced
            .iter()
            .map(|line| line.replace("; recording it", "; run --orchestrate to record it")),
    );
    let mut droplets = Vec::new();
    for name in state.droplet_names() {
        let record = &state.droplets[name];
        // A droplet the fleet replaced on its own is shown as it is now.
        let live = observed
            .iter()
            .find(|d| d.name == name && d.id == record.id)
            .or_else(|| observed.iter().find(|d| d.name == name).filter(|_| was_replaced(name)));
        let health = match live {
            None => {
                issues.push(format!("droplet {name} ({}) is missing at the provider; run --orchestrate to replace it", record.id));
                "missing".to_string()
            }
            Some(droplet) if droplet.status != DropletStatus::Active => {
                issues
                    .push(format!("droplet {name} is not running; run --orchestrate to start it"));
                "not running".to_string()
            }
            Some(droplet) => {
                let health =
                    health.get(&droplet.id).cloned().unwrap_or_else(|| "unreachable".into());
                if health != "healthy" {
                    issues.push(format!("droplet {name}'s agent is {health}"));
                }
                health
            }
        };
        if let Some(ip) =
            live.and_then(|d| d.ip.as_ref()).filter(|ip| **ip != record.ip && !was_replaced(name))
        {
            issues.push(format!(
                "droplet {name} now has address {ip}, not {}; run --orchestrate to record it",
                record.ip
            ));
        }
        droplets.push(DropletView {
            name: name.to_string(),
            role: record.role.to_string(),
            ip: live.and_then(|d| d.ip.clone()).unwrap_or_else(|| record.ip.clone()),
            size: record.size.clone(),
            region: record.region.clone(),
            agent_port: record.agent_port,
            health,
            monitors: record.monitors.clone(),
            monitored_by: state.monitored_by(name),
            seen_by_monitors: seen_by_monitors(&reports, name),
            refused_requests: reports.get(name).map_or(0, |r| r.refused_requests),
        });
    }
    for droplet in &observed {
        if state.droplets.get(&droplet.name).is_none_or(|r| r.id != droplet.id)
            && !was_replaced(&droplet.name)
        {
            issues.push(format!(
                "droplet {} ({}) exists at the provider but not in the state; run --orchestrate to adopt or remove it",
                droplet.name, droplet.id
            ));
        }
    }

    let load_balancer = load_balancer(&observed).await;
    if let Some(error) = load_balancer.as_ref().and_then(|lb| lb.error.as_ref()) {
        issues.push(format!("load balancer: {error}"));
    }
    // Where alerts go, or why a configured channel is off.
    let mut notifications = Vec::new();
    if let Ok(key) = context.fleet_key() {
        let names: Vec<String> = state.droplet_names().into_iter().map(str::to_string).collect();
        if let Ok((settings, off)) = crate::notify::settings(&context.workspace, env, &key, &names)
        {
            notifications = super::publish::describe(settings.as_ref());
            notifications.extend(off);
        }
    }
    let mut infrastructure = infrastructure(&observed).await;
    // A cluster that cannot say is one issue, not one per instance in it.
    let mut cluster_silent = false;
    match super::infrastructure::cluster_views(context, &config, &state).await {
        Ok((views, unreachable)) => {
            infrastructure.extend(views);
            if let Some(err) = unreachable {
                cluster_silent = true;
                issues.push(format!("infrastructure in the Kubernetes cluster: {err}"));
            }
        }
        Err(err) => issues.push(format!("infrastructure in the Kubernetes cluster: {err}")),
    }
    for instance in &infrastructure {
        if let Some(why) = &instance.refused_change {
            issues.push(format!(
                "infrastructure {} for {}: {why}",
                instance.name, instance.project_env
            ));
        }
        let unknown = cluster_silent && instance.cluster.is_some();
        if !instance.healthy && !unknown {
            let place = match &instance.cluster {
                Some(place) => format!("in the cluster ({place})"),
                None => "on master".into(),
            };
            issues.push(format!(
                "infrastructure {} for {} {place} is {} and does not answer on port {}",
                instance.name, instance.project_env, instance.state, instance.port
            ));
        }
    }
    let healthy_droplets = droplets.iter().filter(|d| d.health == "healthy").count();
    let missing_secrets = crate::secrets::missing(env, &config.rows, deploy);
    for (project_env, missing) in &missing_secrets {
        // Where a release ran, the next deploy or rollback would stop on the missing secret.
        let released = crate::release::Records::new(context.workspace.config_dir(), project_env)
            .load()
            .is_ok_and(|r| !r.releases.is_empty());
        if released {
            let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
            issues.push(format!(
                "{project_env} cannot be deployed again: secret(s) {} not set (see Missing secrets)",
                names.join(", ")
            ));
        }
    }
    let status = Status {
        missing_secrets,
        healthy_droplets,
        load_balancer,
        provider: provider.name().to_string(),
        state_file: store.path().display().to_string(),
        monitoring: monitoring_notes(&state),
        summary: fleet::state::Summary { issues: issues.len(), ..state.summary() },
        projects: state.projects.clone(),
        droplets,
        issues,
        infrastructure,
        notifications,
        recent_failures_and_recoveries: recent_events(&reports),
    };
    if context.json {
        output::print_json(&status);
    } else {
        print_status(&status);
    }
    Ok(())
}

/// Asks master's agent which infrastructure services run there.
async fn infrastructure(
    observed: &[ObservedDroplet],
) -> Vec<crate::agent::services::infra::InfraView> {
    let Some(master) = observed
        .iter()
        .find(|d| d.name == fleet::model::MASTER && d.status == DropletStatus::Active)
    else {
        return Vec::new();
    };
    let Some(ip) = master.ip.as_ref() else { return Vec::new() };
    let url = format!("http://{ip}:{}/infrastructure", master.agent_port);
    let Ok(answer) = crate::http::client().get(&url).timeout(Duration::from_secs(5)).send().await
    else {
        return Vec::new();
    };
    answer.json().await.unwrap_or_default()
}

/// Asks master's agent, wherever the cloud says it is now, how the load balancer is doing.
async fn load_balancer(observed: &[ObservedDroplet]) -> Option<LoadBalancerView> {
    let master = observed
        .iter()
        .find(|d| d.name == fleet::model::MASTER && d.status == DropletStatus::Active)?;
    let url = format!("http://{}:{}/lb-status", master.ip.as_ref()?, master.agent_port);
    let answer =
        crate::http::client().get(&url).timeout(Duration::from_secs(3)).send().await.ok()?;
    let status: crate::agent::api::LbStatus = answer.json().await.ok()?;
    let lb = status.load_balancer;
    let out_of_rotation = status
        .upstreams
        .iter()
        .flat_map(|u| {
            u.targets
                .iter()
                .filter(|t| !t.in_rotation)
                .map(move |t| format!("{} on {}", u.route, t.droplet))
        })
        .collect();
    Some(LoadBalancerView {
        out_of_rotation,
        recent_events: status.events.clone(),
        dashboard_url: lb.url.clone(),
        url: lb.url,
        nginx_running: lb.nginx_running,
        config_applied_at: lb.config_applied_at,
        error: lb.error,
        upstreams: status.upstreams,
    })
}

/// What each agent's `/status` says, by droplet name: its monitoring and refused requests.
type AgentReports = BTreeMap<String, crate::agent::AgentStatus>;

/// Asks every running droplet's agent for `/status`, all at once: its health (by droplet id)
/// comes from whether it answers, the rest from what it says.
async fn ask_agents(observed: &[ObservedDroplet]) -> (BTreeMap<String, String>, AgentReports) {
    let http = crate::http::client();
    let mut asks = JoinSet::new();
    for droplet in observed.iter().filter(|d| d.status == DropletStatus::Active) {
        let Some(ip) = droplet.ip.clone() else { continue };
        let url = format!("http://{ip}:{}/status", droplet.agent_port);
        let (http, id, name) = (http.clone(), droplet.id.clone(), droplet.name.clone());
        asks.spawn(async move {
            let answer = http.get(&url).timeout(Duration::from_secs(2)).send().await;
            let (health, report) = match answer {
                Ok(response) if response.status().is_success() => {
                    ("healthy".to_string(), response.json::<crate::agent::AgentStatus>().await.ok())
                }
                Ok(response) => (format!("unhealthy (HTTP {})", response.status().as_u16()), None),
                Err(err) if err.is_timeout() => ("unreachable (timed out)".to_string(), None),
                Err(_) => ("unreachable".to_string(), None),
            };
            (id, name, health, report)
        });
    }
    let (mut health, mut reports) = (BTreeMap::new(), BTreeMap::new());
    while let Some(Ok((id, name, answer, report))) = asks.join_next().await {
        health.insert(id, answer);
        if let Some(report) = report {
            reports.insert(name, report);
        }
    }
    (health, reports)
}

/// How each monitor of `droplet` sees it: `master: ok; web2: timed out`.
/// Every droplet's recent failures and recoveries, newest first; a message several droplets
/// recorded at the same second is shown once.
fn recent_events(reports: &AgentReports) -> Vec<DropletEvent> {
    let mut all: Vec<DropletEvent> = reports
        .iter()
        .flat_map(|(droplet, report)| {
            report
                .recent_events
                .iter()
                .map(|event| DropletEvent { droplet: droplet.clone(), event: event.clone() })
        })
        .collect();
    all.sort_by(|a, b| b.event.at.cmp(&a.event.at));
    let mut seen = std::collections::BTreeSet::new();
    all.retain(|e| seen.insert((e.event.at.clone(), e.event.message.clone())));
    all.truncate(20);
    all
}

fn seen_by_monitors(reports: &AgentReports, droplet: &str) -> Vec<String> {
    reports
        .iter()
        .filter_map(|(monitor, status)| {
            let watch = status.monitoring.watches.iter().find(|w| w.target == droplet)?;
            Some(format!("{monitor}: {} ({})", watch.last_check, watch.verdict))
        })
        .collect()
}

fn monitoring_notes(state: &State) -> Vec<String> {
    match state.droplets.len() {
        0 => vec!["no droplets: nothing to monitor".into()],
        1 => vec![format!(
            "{} is the only droplet: nobody watches it, and a failure cannot be detected by its peers",
            state.droplet_names()[0]
        )],
        _ => state
            .droplet_names()
            .into_iter()
            .filter(|name| state.monitored_by(name).len() < 2)
            .map(|name| format!("{name} has a single monitor: one lost check cannot be told from a failure by a vote"))
            .collect(),
    }
}

fn print_status(status: &Status) {
    crate::say!("Fleet on the {} cloud, state in {}", status.provider, status.state_file);
    if status.droplets.is_empty() {
        crate::say!("No droplets. Run --orchestrate to create the fleet of projects.csv.");
    } else {
        let rows = status.droplets.iter().map(|d| {
            vec![
                d.name.clone(),
                d.role.clone(),
                format!("{}:{}", d.ip, d.agent_port),
                d.size.clone(),
                d.health.clone(),
                d.monitors.join(", "),
                d.monitored_by.join(", "),
            ]
        });
        crate::say!(
            "{}",
            output::table(
                ["DROPLET", "ROLE", "AGENT", "SIZE", "HEALTH", "WATCHES", "WATCHED BY"],
                rows
            )
        );
    }

    let mut rows = Vec::new();
    for (project_env, services) in &status.projects {
        for (service, record) in services {
            rows.push(vec![
                project_env.clone(),
                service.clone(),
                format!("{:?}", record.kind).to_lowercase(),
                record.port.map_or("-".to_string(), |p| p.to_string()),
                record.assigned_droplets.join(", "),
            ]);
        }
    }
    rows.sort_by(|a, b| (&a[0], &a[1]).cmp(&(&b[0], &b[1])));
    if !rows.is_empty() {
        crate::say!(
            "{}",
            output::table(["PROJECT-ENV", "SERVICE", "TYPE", "PORT", "DROPLETS"], rows)
        );
    }
    for line in &status.notifications {
        crate::say!("Notifications: {line}");
    }
    if !status.infrastructure.is_empty() {
        let rows = super::infrastructure::rows(&status.infrastructure);
        crate::say!(
            "{}",
            output::table(
                [
                    "INFRASTRUCTURE",
                    "KIND",
                    "FOR",
                    "PORT ON MASTER",
                    "RUNS AS",
                    "STATE",
                    "HEALTH",
                    "PENDING"
                ],
                rows
            )
        );
    }

    for droplet in status.droplets.iter().filter(|d| !d.seen_by_monitors.is_empty()) {
        crate::say!(
            "{} as its monitors see it: {}",
            droplet.name,
            droplet.seen_by_monitors.join("; ")
        );
    }
    let refused: Vec<String> = status
        .droplets
        .iter()
        .filter(|d| d.refused_requests > 0)
        .map(|d| format!("{} {}", d.name, d.refused_requests))
        .collect();
    if !refused.is_empty() {
        crate::say!(
            "Refused control requests (unsigned, forged, stale or replayed): {}",
            refused.join(", ")
        );
    }
    for seen in status.recent_failures_and_recoveries.iter().take(5) {
        let event = &seen.event;
        crate::say!(
            "Recent {:?} (on {}): {} {}",
            event.kind,
            seen.droplet,
            event.at,
            event.message
        );
    }
    match &status.load_balancer {
        Some(lb) if lb.nginx_running => {
            crate::say!(
                "Load balancer: {} ({} routes); dashboard: {}",
                lb.url,
                lb.upstreams.len(),
                lb.dashboard_url
            );
            if !lb.out_of_rotation.is_empty() {
                crate::say!(
                    "Out of rotation (nothing answers there yet, or the droplet is down): {}",
                    lb.out_of_rotation.join("; ")
                );
            }
        }
        Some(_) => crate::say!("Load balancer: not running"),
        None => crate::say!("Load balancer: unknown (master's agent did not answer)"),
    }
    for note in &status.monitoring {
        crate::say!("Monitoring: {note}");
    }
    if !status.missing_secrets.is_empty() {
        crate::say!(
            "Missing secrets (looked up as PROJECT_ENV_NAME, PROJECT_NAME, ENV_NAME, NAME):"
        );
        for (project_env, missing) in &status.missing_secrets {
            let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
            crate::say!("  {project_env}: {}", names.join(", "));
        }
    }
    if status.issues.is_empty() {
        crate::say!("No issues.");
    } else {
        crate::say!("Issues:");
        for issue in &status.issues {
            crate::say!("  - {issue}");
        }
    }
}
