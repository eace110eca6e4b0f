//! Recovering a failed droplet, led by the monitor the consensus chose.
//!
//! In order: claim the recovery with the target's other monitors; take the droplet out of
//! the load balancer; make sure the old droplet is gone (a paused one could wake up and
//! answer beside its replacement); restore it from its newest snapshot (or create it anew
//! when it has none); then hand the changed fleet state to every agent, so nginx, the
//! monitoring ring and every replica point at the new address.

use std::sync::Arc;
use std::time::Duration;

use fleet::{DropletStatus, State};

use super::Agent;
use super::api::{FleetUpdate, FleetUpdateAnswer};
use super::events::EventKind;
use super::monitor::ClaimMessage;
use crate::control::AgentClient;
use crate::notify::Notice;
use crate::provider::local::LocalCloud;
use crate::provider::{self, DropletSpec};

/// Runs a recovery and reports how it went: in the agent's events, its metrics, and to
/// people.
pub async fn run(agent: Arc<Agent>, target: String) {
    // When the monitors' agreement held through the confirmation wait and recovery began.
    let detected = crate::clock::now_rfc3339();
    let before = agent.replica.read().await.as_ref().and_then(|u| {
        let droplet = u.state.droplet(&target)?;
        Some((u.state.fleet.clone(), droplet.clone(), u.state.monitored_by(&target)))
    });
    agent.events.record(
        EventKind::Failure,
        format!("{target} failed by the consensus of its monitors; recovering it"),
    );
    let result = recover(&agent, &target).await;
    agent.metrics.recovery(result.is_ok());
    let (fleet, what_happened) = match before {
        Some((fleet, record, monitors)) => (
            fleet,
            format!(
                "{target} ({} droplet at {}) stopped answering its health checks; its monitors \
                 ({}) agreed that it had failed, and it stayed failed through the confirmation \
                 wait, so recovery began at {detected}.",
                record.role,
                record.ip,
                monitors.join(", ")
            ),
        ),
        None => (
            String::from("fleet"),
            format!("{target} was agreed to have failed; recovery began at {detected}."),
        ),
    };
    let notice = match &result {
        Ok(done) => {
            agent.monitor.recovery_succeeded(&target);
            agent.events.record(EventKind::Recovery, done.clone());
            Notice {
                subject: format!("[{fleet}] {target} failed and was recovered"),
                body: format!(
                    "What happened: {what_happened}\nWhat was done: {target} was taken out of the \
                     load balancer and the old droplet removed; {done}.\nWhen: recovery began \
                     {detected}, ended {}.\nLed by: {}.\n",
                    crate::clock::now_rfc3339(),
                    agent.droplet.name
                ),
                urgent: true,
                sms: Some(format!(
                    "[{fleet}] {target} failed and was recovered: {done} (led by {})",
                    agent.droplet.name
                )),
            }
        }
        Err(err) => {
            let (attempt, wait) = agent.monitor.recovery_failed(&target);
            agent.events.record(
                EventKind::Failure,
                format!(
                    "recovery of {target} failed (attempt {attempt}): {err}; next attempt in {} s",
                    wait.as_secs()
                ),
            );
            Notice {
                subject: format!("[{fleet}] recovery of {target} failed"),
                body: format!(
                    "What happened: {what_happened}\nWhat was done: a recovery was tried and \
                     failed (attempt {attempt}): {err}.\nNext: it is tried again in {} s, while \
                     its monitors still agree it has failed; `orchestrator --recover {target}` \
                     does it by hand. Further failures are mailed at attempts 2, 4, 8 and so on.\n\
                     When: recovery began {detected}, failed {}.\nLed by: {}.\n",
                    wait.as_secs(),
                    crate::clock::now_rfc3339(),
                    agent.droplet.name
                ),
                urgent: true,
                sms: Some(format!(
                    "[{fleet}] recovery of {target} failed (attempt {attempt}): {err}; next try \
                     in {} s",
                    wait.as_secs()
                )),
            }
        }
    };
    // Every success; failures at attempts 1, 2, 4, 8 …, so a recovery that keeps failing
    // does not flood anyone.
    let attempt = match &result {
        Ok(_) => 1,
        Err(_) => agent.monitor.recovery_attempts(&target),
    };
    if attempt.is_power_of_two() {
        super::alerts::send(&agent, super::alerts::Kind::Alert, notice);
    }
    agent.monitor.recovery_ended(&target);
}

async fn recover(agent: &Agent, target: &str) -> Result<String, String> {
    let Some(update) = agent.replica.read().await.clone() else {
        return Err("this agent holds no fleet state".into());
    };
    let Some(key) = agent.key.clone() else {
        return Err("this agent has no fleet key".into());
    };
    let client =
        AgentClient::from_droplet(key.clone(), &agent.droplet.name, agent.droplet.address.into());
    let mut state = update.state.clone();
    let Some(record) = state.droplets.get(target).cloned() else {
        return Err(format!("{target} is not in the fleet state"));
    };

    let claim = ClaimMessage { target: target.to_string(), lease_ms: agent.monitor.lease_ms() };
    for fellow in fellow_monitors(&state, target, &agent.droplet.name) {
        if let Some(base) = base_url(&state, &fellow) {
            let _ = client
                .post::<_, serde_json::Value>(&base, "/v1/claim", &claim, Duration::from_secs(2))
                .await;
        }
    }

    // Out of the load balancer first, so no request goes to it while it is replaced.
    state.droplets.get_mut(target).expect("looked up above").status = DropletStatus::Off;
    publish(agent, &client, &FleetUpdate { state: state.clone(), ..update.clone() }).await;

    let provider = local_cloud(agent, &state, key)?;
    let spec = DropletSpec::recorded(target, &record);
    let newest = provider::newest_snapshot(&provider, target).await.map_err(|e| e.to_string())?;
    let from = provider::source(newest.as_ref());
    let replacement = provider::replace(&provider, &spec, newest.as_ref())
        .await
        .map_err(|e| format!("cannot replace {target}: {e}"))?;

    let new_ip = replacement.ip.clone().unwrap_or_default();
    let entry = state.droplets.get_mut(target).expect("looked up above");
    entry.id = replacement.id.clone();
    entry.ip = new_ip.clone();
    entry.status = DropletStatus::Active;
    publish(agent, &client, &FleetUpdate { state, ..update }).await;
    Ok(format!(
        "{target} recovered from {from} at {new_ip} (was {}); the fleet's state is updated",
        record.ip
    ))
}

/// The local cloud this droplet lives in: its directory is `{root}/droplets/{id}`.
fn local_cloud(
    agent: &Agent,
    state: &State,
    key: crate::control::FleetKey,
) -> Result<LocalCloud, String> {
    if state.provider != "local" {
        return Err(format!(
            "droplets on {} cannot replace each other yet; run --orchestrate from the administrator's machine",
            state.provider
        ));
    }
    let root = agent
        .dir
        .parent()
        .and_then(|droplets| droplets.parent())
        .ok_or("the droplet directory has no cloud around it")?;
    let binary = own_binary()?;
    LocalCloud::new(root, &binary, Some(key))
        .map_err(|e| format!("cannot open the local cloud: {e}"))
}

/// Hands `update` to every running droplet, this one included.
async fn publish(agent: &Agent, client: &AgentClient, update: &FleetUpdate) {
    for (name, droplet) in &update.state.droplets {
        if droplet.status != DropletStatus::Active {
            continue;
        }
        if *name == agent.droplet.name {
            if let Err(err) = agent.take_fleet(update.clone()).await {
                tracing::warn!(%err, "this agent could not keep the recovered fleet state");
            }
            continue;
        }
        let base = format!("http://{}:{}", droplet.ip, droplet.agent_port);
        if let Err(err) = client
            .post::<_, FleetUpdateAnswer>(&base, "/v1/fleet", update, Duration::from_secs(10))
            .await
        {
            tracing::warn!(droplet = %name, %err, "a droplet did not take the recovered fleet state");
        }
    }
}

fn fellow_monitors(state: &State, target: &str, me: &str) -> Vec<String> {
    state.monitored_by(target).into_iter().filter(|m| m != me).collect()
}

fn base_url(state: &State, droplet: &str) -> Option<String> {
    state.droplet(droplet).map(|d| format!("http://{}:{}", d.ip, d.agent_port))
}

/// The binary to start replacement agents with: this agent's own, or, when that file was
/// replaced since it started (a rebuild or an upgrade), the new file at the same path.
fn own_binary() -> Result<std::path::PathBuf, String> {
    let path =
        std::env::current_exe().map_err(|e| format!("cannot find the orchestrator binary: {e}"))?;
    if path.exists() {
        return Ok(path);
    }
    let text = path.to_string_lossy();
    let replaced = std::path::PathBuf::from(text.trim_end_matches(" (deleted)"));
    if replaced.exists() {
        Ok(replaced)
    } else {
        Err(format!("the orchestrator binary {} is gone", replaced.display()))
    }
}
