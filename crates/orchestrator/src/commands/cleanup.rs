//! `--cleanup [--dry-run]`: remove what the fleet no longer needs: snapshots beyond the
//! retention setting (the newest `snapshot_retention` of each droplet are kept), droplets
//! tagged as this fleet that the CSV does not ask for, SSH keys of this fleet other than
//! the current one, and the data of infrastructure services on master that no longer run. Each is listed with the reason first; nothing is removed without
//! confirmation (or `--yes`).

use std::collections::BTreeMap;

use fleet::plan::Action;
use fleet::{DesiredFleet, ObservedDroplet};
use serde::Serialize;

use super::{Context, confirm, expand_home};
use crate::output;
use crate::provider::digitalocean::md5_fingerprint;
use crate::provider::{Provider, Snapshot, SshKeyRecord};

/// One thing to remove.
#[derive(Debug, Clone, Serialize)]
struct Item {
    kind: &'static str,
    name: String,
    reason: String,
    #[serde(skip)]
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Snapshot(Snapshot),
    Droplet(ObservedDroplet),
    SshKey(SshKeyRecord),
    InfraData(crate::agent::services::infra::Leftover),
}

#[derive(Serialize)]
struct Outcome {
    dry_run: bool,
    items: Vec<Item>,
    removed: Vec<String>,
    failed: Vec<String>,
}

pub async fn run(context: &Context) -> anyhow::Result<()> {
    let config = context.load_config()?;
    let _lock = if context.dry_run { None } else { Some(context.lock("--cleanup")?) };
    let provider = context.provider(&config.deploy, &config.env, None)?;

    let desired = DesiredFleet::from_config(&config.rows, &config.deploy);
    let names: Vec<&str> = desired.droplets.iter().map(|d| d.name.as_str()).collect();
    let mut items =
        stale_snapshots(provider.as_ref(), config.deploy.snapshot_retention, &names).await?;
    let observed = provider.list().await?;
    let plan = fleet::plan(&desired, &observed, &context.store().load()?, false)?;
    for action in &plan.actions {
        if let Action::DestroyDroplet { id, .. } = action
            && let Some(droplet) = observed.iter().find(|d| d.id == *id)
        {
            items.push(Item {
                kind: "droplet",
                name: format!("{} ({id})", droplet.name),
                reason: format!("tagged as this fleet but {}", action.detail()),
                target: Target::Droplet(droplet.clone()),
            });
        }
    }
    let public_key =
        std::fs::read_to_string(expand_home(&config.deploy.ssh_key_path).with_extension("pub"))
            .ok();
    let current = public_key.as_deref().and_then(md5_fingerprint);
    for key in provider.stale_ssh_keys(current.as_deref()).await? {
        items.push(Item {
            kind: "ssh key",
            name: format!("{} ({})", key.name, key.fingerprint),
            reason: "an earlier key of this fleet; the current one has another fingerprint".into(),
            target: Target::SshKey(key),
        });
    }

    let state = context.store().load()?;
    for leftover in infrastructure_leftovers(&state).await {
        items.push(Item {
            kind: "infrastructure data",
            name: format!(
                "{} {} on master ({} bytes)",
                leftover.name, leftover.project_env, leftover.bytes
            ),
            reason: "the instance no longer runs (it is not configured any more)".into(),
            target: Target::InfraData(leftover),
        });
    }

    if !context.json {
        if items.is_empty() {
            crate::say!("Nothing to clean up.");
        } else {
            let rows =
                items.iter().map(|i| vec![i.kind.to_string(), i.name.clone(), i.reason.clone()]);
            crate::say!("{}", output::table(["KIND", "NAME", "REASON"], rows));
        }
    }
    if context.dry_run || items.is_empty() {
        if context.json {
            output::print_json(&Outcome {
                dry_run: context.dry_run,
                items,
                removed: vec![],
                failed: vec![],
            });
        }
        return Ok(());
    }
    if !context.yes {
        let what = format!("cleanup removes {} item(s)", items.len());
        confirm(&format!("This {what}. Go ahead?"), &what)?;
    }

    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let mut purged = false;
    for item in &items {
        let result = match &item.target {
            Target::Snapshot(snapshot) => provider.delete_snapshot(snapshot).await,
            Target::Droplet(droplet) => provider.destroy(droplet).await,
            Target::SshKey(key) => provider.delete_ssh_key(key).await,
            Target::InfraData(leftover) => purge(context, &state, leftover).await,
        };
        match result {
            Ok(()) => {
                purged |= matches!(item.target, Target::InfraData(_));
                removed.push(format!("{} {}", item.kind, item.name));
            }
            Err(err) => failed.push(format!("{} {}: {err}", item.kind, item.name)),
        }
    }
    // A replacement of master comes from its newest snapshot: it must not bring the data back.
    if purged {
        let snapshot = match context.fleet_key() {
            Ok(key) => super::infrastructure::snapshot_master(&config, context, &key).await,
            Err(err) => Err(err),
        };
        if let Err(err) = snapshot {
            failed.push(format!("a new snapshot of master without the removed data: {err:#}"));
        }
    }
    if context.json {
        output::print_json(&Outcome {
            dry_run: false,
            items,
            removed: removed.clone(),
            failed: failed.clone(),
        });
    } else {
        crate::say!("Removed {} of {} item(s).", removed.len(), removed.len() + failed.len());
    }
    if !failed.is_empty() {
        anyhow::bail!("some items could not be removed:\n  {}", failed.join("\n  "));
    }
    Ok(())
}

/// Snapshots beyond the newest `keep` of each droplet.
/// Snapshots beyond the newest `keep` of each droplet, and every snapshot of a droplet the
/// fleet (whose droplets are `fleet`) no longer has.
async fn stale_snapshots(
    provider: &dyn Provider,
    keep: u32,
    fleet: &[&str],
) -> anyhow::Result<Vec<Item>> {
    let mut by_droplet: BTreeMap<String, Vec<Snapshot>> = BTreeMap::new();
    for snapshot in provider.snapshots().await? {
        by_droplet.entry(snapshot.droplet_name.clone()).or_default().push(snapshot);
    }
    let mut items = Vec::new();
    for (droplet, mut snapshots) in by_droplet {
        snapshots.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let gone = !fleet.contains(&droplet.as_str());
        let skip = if gone { 0 } else { keep as usize };
        for snapshot in snapshots.into_iter().skip(skip) {
            let reason = if gone {
                format!("of {droplet}, which the fleet no longer has")
            } else {
                format!("older than the newest {keep} of {droplet}")
            };
            items.push(Item {
                kind: "snapshot",
                name: format!("{} ({})", snapshot.name, snapshot.created_at),
                reason,
                target: Target::Snapshot(snapshot),
            });
        }
    }
    Ok(items)
}

/// What master keeps of infrastructure instances that no longer run.
async fn infrastructure_leftovers(
    state: &fleet::State,
) -> Vec<crate::agent::services::infra::Leftover> {
    let Some(master) = state.master() else { return Vec::new() };
    let url = format!("http://{}:{}/infrastructure/leftovers", master.ip, master.agent_port);
    let http = crate::http::client();
    match http.get(&url).timeout(std::time::Duration::from_secs(10)).send().await {
        Ok(answer) => answer.json().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

async fn purge(
    context: &Context,
    state: &fleet::State,
    leftover: &crate::agent::services::infra::Leftover,
) -> Result<(), crate::provider::ProviderError> {
    let failed = |problem: String| crate::provider::ProviderError::Droplet {
        name: fleet::model::MASTER.into(),
        problem,
    };
    let master = state.master().ok_or_else(|| failed("the fleet has no master".into()))?;
    let key = context.fleet_key().map_err(|err| failed(format!("{err:#}")))?;
    let client = crate::control::AgentClient::new(key, "cli");
    let base = format!("http://{}:{}", master.ip, master.agent_port);
    client
        .post::<_, serde_json::Value>(
            &base,
            "/v1/infrastructure/purge",
            leftover,
            std::time::Duration::from_secs(30),
        )
        .await
        .map(|_| ())
        .map_err(|err| failed(err.to_string()))
}
