//! Carrying out a plan's droplet actions against a provider.
//!
//! Destroys go first (they free names and addresses), then resizes one droplet at a time
//! (each takes its droplet down), then creates and starts. Within a phase the actions run
//! concurrently, as many at once as the provider allows. A failed action does not stop the
//! others: what succeeded is recorded, and a re-run picks up the rest.

use std::sync::Arc;

use fleet::plan::Action;
use fleet::{ObservedDroplet, Plan};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::progress::Progress;
use crate::provider::{DropletSpec, Provider, ProviderError};

/// What came of applying a plan.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// One line per action that succeeded.
    pub done: Vec<String>,
    /// The action and why it failed.
    pub failed: Vec<(String, String)>,
}

/// Applies the droplet actions of `plan`; `observed` is what the provider reported before.
pub async fn apply(
    provider: Arc<dyn Provider>,
    plan: &Plan,
    observed: &[ObservedDroplet],
    agent_port: u16,
    progress: &Progress,
) -> ApplyReport {
    let by_id = |id: &str| observed.iter().find(|d| d.id == id).cloned();
    let spec = |name: &str, role: fleet::Role, size: &str, region: &str| DropletSpec {
        name: name.to_string(),
        role,
        size: size.to_string(),
        region: region.to_string(),
        agent_port,
    };
    let mut destroys = Vec::new();
    let mut resizes = Vec::new();
    let mut creates = Vec::new();
    for action in &plan.actions {
        match action {
            Action::DestroyDroplet { id, .. } | Action::ReplaceDroplet { id, .. } => {
                if let Some(droplet) = by_id(id) {
                    destroys.push((action.clone(), droplet.clone()));
                }
                if let Action::ReplaceDroplet { name, role, size, region, .. } = action {
                    creates.push((action.clone(), Work::Create(spec(name, *role, size, region))));
                }
            }
            Action::ResizeDroplet { id, to, .. } => {
                if let Some(droplet) = by_id(id) {
                    resizes.push((action.clone(), droplet, to.clone()));
                }
            }
            Action::CreateDroplet { name, role, size, region } => {
                creates.push((action.clone(), Work::Create(spec(name, *role, size, region))));
            }
            Action::StartDroplet { id, .. } => {
                if let Some(droplet) = by_id(id) {
                    creates.push((action.clone(), Work::Start(droplet)));
                }
            }
            Action::PlaceService { .. }
            | Action::MoveService { .. }
            | Action::RemoveService { .. } => {}
        }
    }

    let mut report = ApplyReport::default();
    let destroy_work =
        destroys.into_iter().map(|(action, droplet)| (action, Work::Destroy(droplet))).collect();
    run_concurrently(&provider, destroy_work, progress, &mut report).await;
    for (action, droplet, size) in resizes {
        run_concurrently(
            &provider,
            vec![(action, Work::Resize(droplet, size))],
            progress,
            &mut report,
        )
        .await;
    }
    run_concurrently(&provider, creates, progress, &mut report).await;
    report
}

enum Work {
    Create(DropletSpec),
    Start(ObservedDroplet),
    Destroy(ObservedDroplet),
    Resize(ObservedDroplet, String),
}

impl Work {
    fn describe(&self) -> String {
        match self {
            Work::Create(spec) => format!("creating {} ({}, {})", spec.name, spec.role, spec.size),
            Work::Start(droplet) => format!("starting {}", droplet.name),
            Work::Destroy(droplet) => format!("destroying {}", droplet.name),
            Work::Resize(droplet, size) => format!("resizing {} to {size}", droplet.name),
        }
    }

    async fn run(self, provider: &dyn Provider) -> Result<String, ProviderError> {
        match self {
            Work::Create(spec) => {
                let droplet = provider.create(&spec).await?;
                Ok(format!("created {} at {}", droplet.name, droplet.ip.unwrap_or_default()))
            }
            Work::Start(droplet) => {
                let droplet = provider.power_on(&droplet).await?;
                Ok(format!("started {} at {}", droplet.name, droplet.ip.unwrap_or_default()))
            }
            Work::Destroy(droplet) => {
                provider.destroy(&droplet).await?;
                Ok(format!("destroyed {}", droplet.name))
            }
            Work::Resize(droplet, size) => {
                provider.resize(&droplet, &size).await?;
                Ok(format!("resized {} to {size}", droplet.name))
            }
        }
    }
}

async fn run_concurrently(
    provider: &Arc<dyn Provider>,
    work: Vec<(Action, Work)>,
    progress: &Progress,
    report: &mut ApplyReport,
) {
    let limit = Arc::new(Semaphore::new(provider.concurrency().max(1)));
    let mut tasks = JoinSet::new();
    for (action, work) in work {
        let provider = Arc::clone(provider);
        let limit = Arc::clone(&limit);
        let progress = progress.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
            let step = progress.start(work.describe());
            match work.run(provider.as_ref()).await {
                Ok(message) => {
                    step.done(message.clone());
                    Ok(message)
                }
                Err(err) => {
                    step.failed(format!("{action}: {err}"));
                    Err((action.to_string(), err.to_string()))
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("droplet actions do not panic") {
            Ok(message) => report.done.push(message),
            Err(failure) => report.failed.push(failure),
        }
    }
}
