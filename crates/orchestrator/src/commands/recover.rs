//! `--recover NAME`: replace a droplet by hand, the way the fleet's monitors do on their own:
//! take it out of the load balancer, remove it, restore it from its newest snapshot (or make
//! it anew when it has none), record it and hand the new state to every agent.

use anyhow::{Context as _, bail};
use fleet::DropletStatus;
use serde::Serialize;

use super::publish::publish;
use super::{Context, confirm};
use crate::output;
use crate::provider::{self, DropletSpec, firewall};

#[derive(Serialize)]
struct Recovered {
    droplet: String,
    from: String,
    old_address: String,
    new_address: String,
}

pub async fn run(context: &Context, name: &str) -> anyhow::Result<()> {
    let config = context.load_config()?;
    let key = context.fleet_key()?;
    let lock = context.lock("--recover")?;
    let store = context.store();
    let mut state = store.load()?;
    let Some(record) = state.droplet(name).cloned() else {
        bail!(
            "{name} is not in {}; the fleet has {}",
            store.path().display(),
            state.droplet_names().join(", ")
        );
    };
    let provider = context.provider(&config.deploy, &config.env, Some(key.clone()))?;
    let replaced = super::orchestrate::replaced_while_away(&state, &provider.list().await?);
    if !replaced.is_empty() {
        bail!(
            "the state file is behind the fleet; run --orchestrate first to record what changed:\n  {}",
            replaced
                .iter()
                .map(|l| l.replace("; recording it", ""))
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    let newest = provider::newest_snapshot(provider.as_ref(), name).await?;
    let from = provider::source(newest.as_ref());
    let what = format!("recovering {name} destroys it and restores it from {from}");
    if context.dry_run {
        if context.json {
            output::print_json(
                &serde_json::json!({"dry_run": true, "droplet": name, "from": from}),
            );
        } else {
            crate::say!("Would recover {name}: destroy it and restore it from {from}.");
        }
        return Ok(());
    }
    if !context.yes {
        confirm(&format!("{what}. Go ahead?"), &what)?;
    }

    // Out of the load balancer first, so no request goes to it while it is replaced.
    state.droplets.get_mut(name).expect("looked up above").status = DropletStatus::Off;
    publish(context, &config.deploy, &state, &key).await?;
    let spec = DropletSpec::recorded(name, &record);
    let replacement = provider::replace(provider.as_ref(), &spec, newest.as_ref())
        .await
        .with_context(|| format!("cannot replace {name}"))?;

    let entry = state.droplets.get_mut(name).expect("looked up above");
    entry.id = replacement.id.clone();
    entry.ip = replacement.ip.clone().unwrap_or_default();
    entry.status = DropletStatus::Active;
    state.updated_at = Some(crate::clock::now_rfc3339());
    store.save(&lock, &state)?;
    let policy =
        firewall::policy(&state, config.deploy.agent_port, config.deploy.load_balancer_port());
    provider.apply_firewall(&policy).await?;
    publish(context, &config.deploy, &state, &key).await?;

    let recovered = Recovered {
        droplet: name.to_string(),
        from,
        old_address: record.ip,
        new_address: entry_ip(&state, name),
    };
    if context.json {
        output::print_json(&recovered);
    } else {
        crate::say!(
            "Recovered {} from {} at {} (was {}).",
            recovered.droplet,
            recovered.from,
            recovered.new_address,
            recovered.old_address
        );
    }
    Ok(())
}

fn entry_ip(state: &fleet::State, name: &str) -> String {
    state.droplet(name).map(|d| d.ip.clone()).unwrap_or_default()
}
