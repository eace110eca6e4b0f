//! `--orchestrate`: make the cloud match the CSV, then record the result.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use fleet::plan::Action;
use fleet::{DesiredFleet, Plan, State};
use serde::Serialize;

use super::apply::{ApplyReport, apply};
use super::publish::{Published, publish};
use super::{Config, Context, confirm};
use crate::output;
use crate::progress::Progress;

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
    let key = if context.dry_run {
        None
    } else {
        Some(context.fleet_key()?)
    };
    let _lock = if context.dry_run {
        None
    } else {
        Some(context.lock(command)?)
    };
    let store = context.store();
    let previous = store.load()?;
    let provider = context.provider(&config.deploy, key.clone())?;
    let observed = provider.list().await?;

    let desired = DesiredFleet::from_config(&config.rows, &config.deploy);
    let plan = fleet::plan(&desired, &observed, &previous, force)?;
    if !context.json {
        print_plan(&plan);
    }
    if context.dry_run {
        if context.json {
            output::print_json(&Outcome::new(
                &plan,
                true,
                &ApplyReport::default(),
                false,
                None,
            ));
        }
        return Ok(());
    }
    if plan.is_destructive() && !context.yes {
        let summary = destructive_summary(&plan);
        confirm(
            &format!("This plan {summary}. Apply it?"),
            &format!("the plan {summary}"),
        )?;
    }

    if let Some(rewrite) = rewrite {
        fleet::store::write_atomically(&rewrite.path, rewrite.text.as_bytes(), None)?;
        if !context.json {
            println!("Updated {}.", rewrite.path.display());
        }
    }

    let started = Instant::now();
    let report = apply(
        Arc::clone(&provider),
        &plan,
        &observed,
        config.deploy.agent_port,
        &Progress::new(),
    )
    .await;
    let observed_after = provider.list().await?;
    let mut state = plan.state_after(&observed_after, &previous, provider.name());
    let changed = !same_ignoring_time(&state, &previous);
    if changed {
        state.updated_at = Some(crate::clock::now_rfc3339());
        store.save(
            _lock.as_ref().expect("a lock is held outside dry runs"),
            &state,
        )?;
    }

    let key = key.expect("a key is loaded outside dry runs");
    let published = publish(context, &config.deploy, &state, &key).await?;

    if context.json {
        output::print_json(&Outcome::new(
            &plan,
            false,
            &report,
            changed,
            Some(&published),
        ));
    } else {
        if !plan.is_empty() {
            println!(
                "Applied {} of {} droplet actions in {:.1}s; state written to {}.",
                report.done.len(),
                report.done.len() + report.failed.len(),
                started.elapsed().as_secs_f64(),
                store.path().display()
            );
        } else if changed {
            println!("Recorded the fleet in {} again.", store.path().display());
        }
        print_published(&published);
    }
    if !report.failed.is_empty() {
        let lines: Vec<String> = report
            .failed
            .iter()
            .map(|(action, err)| format!("  {action}: {err}"))
            .collect();
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

fn print_published(published: &Published) {
    for (droplet, why) in &published.missed {
        println!("Warning: droplet {droplet} did not take the fleet state: {why}");
    }
    match &published.load_balancer {
        Some(lb) if lb.nginx_running => {
            println!("Load balancer: {} (dashboard at the same address)", lb.url)
        }
        Some(lb) if !lb.nginx_installed => {
            println!(
                "Warning: no load balancer: {}",
                lb.error.as_deref().unwrap_or("nginx is not installed")
            );
        }
        Some(_) | None => {}
    }
}

fn print_plan(plan: &Plan) {
    if plan.is_empty() {
        println!("Nothing to change: the fleet matches the configuration.");
        return;
    }
    let rows = plan
        .actions
        .iter()
        .map(|a| vec![a.verb().to_string(), a.target(), a.detail()]);
    println!("{}", output::table(["ACTION", "TARGET", "DETAIL"], rows));
}

fn destructive_summary(plan: &Plan) -> String {
    let count = |verb: &str| plan.actions.iter().filter(|a| a.verb() == verb).count();
    let mut parts = Vec::new();
    for (verb, past) in [
        ("destroy", "destroys"),
        ("replace", "replaces"),
        ("resize", "resizes"),
    ] {
        let n = count(verb);
        if n > 0 {
            parts.push(format!(
                "{past} {n} droplet{}",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    parts.join(" and ")
}

fn same_ignoring_time(a: &State, b: &State) -> bool {
    State {
        updated_at: None,
        ..a.clone()
    } == State {
        updated_at: None,
        ..b.clone()
    }
}

/// What `--orchestrate --json` prints.
#[derive(Serialize)]
struct Outcome {
    dry_run: bool,
    plan: Vec<PlannedAction>,
    applied: Vec<String>,
    failed: Vec<Failure>,
    state_changed: bool,
    /// Droplets whose agent did not take the new fleet state, with why.
    unreached: Vec<Failure>,
    load_balancer: Option<crate::agent::api::LbReport>,
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
        dry_run: bool,
        report: &ApplyReport,
        state_changed: bool,
        published: Option<&Published>,
    ) -> Outcome {
        Outcome {
            dry_run,
            plan: plan.actions.iter().map(PlannedAction::from).collect(),
            applied: report.done.clone(),
            failed: report
                .failed
                .iter()
                .map(|(action, error)| Failure {
                    action: action.clone(),
                    error: error.clone(),
                })
                .collect(),
            state_changed,
            unreached: published
                .map(|p| {
                    p.missed
                        .iter()
                        .map(|(action, error)| Failure {
                            action: action.clone(),
                            error: error.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            load_balancer: published.and_then(|p| p.load_balancer.clone()),
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
