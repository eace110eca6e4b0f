//! Where droplets come from.
//!
//! Everything above this trait is shared by every cloud: the planner decides, a provider only
//! carries out droplet-level actions and reports what exists. Droplets carry the fleet's tags,
//! so what a provider lists is always this fleet's and nothing else.

pub mod digitalocean;
pub mod firewall;
pub mod local;

use async_trait::async_trait;
use fleet::{ObservedDroplet, Role};
use serde::{Deserialize, Serialize};

/// What a new droplet should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropletSpec {
    pub name: String,
    pub role: Role,
    pub size: String,
    pub region: String,
    pub agent_port: u16,
}

impl DropletSpec {
    /// The droplet `name` as the fleet state records it, to make it again.
    pub fn recorded(name: &str, record: &fleet::state::DropletRecord) -> DropletSpec {
        DropletSpec {
            name: name.to_string(),
            role: record.role,
            size: record.size.clone(),
            region: record.region.clone(),
            agent_port: record.agent_port,
        }
    }
}

/// The newest snapshot of droplet `name`, if it has one.
pub async fn newest_snapshot(
    provider: &dyn Provider,
    name: &str,
) -> Result<Option<Snapshot>, ProviderError> {
    Ok(provider
        .snapshots()
        .await?
        .into_iter()
        .filter(|s| s.droplet_name == name)
        .max_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))))
}

/// Snapshots `droplet`, then deletes its snapshots beyond the newest `keep`.
pub async fn snapshot_keeping(
    provider: &dyn Provider,
    droplet: &ObservedDroplet,
    keep: u32,
) -> Result<Snapshot, ProviderError> {
    let snapshot = provider.snapshot(droplet).await?;
    let mut mine: Vec<Snapshot> = provider
        .snapshots()
        .await?
        .into_iter()
        .filter(|s| s.droplet_name == droplet.name)
        .collect();
    mine.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    for stale in mine.into_iter().skip(keep.max(1) as usize) {
        if stale.id != snapshot.id {
            provider.delete_snapshot(&stale).await?;
        }
    }
    Ok(snapshot)
}

/// What a replacement is made from, for messages.
pub fn source(snapshot: Option<&Snapshot>) -> String {
    snapshot.map_or("a fresh droplet (it has no snapshot)".to_string(), |s| {
        format!("snapshot {}", s.name)
    })
}

/// Replaces droplet `spec.name`: removes every droplet of that name first (a paused one could
/// wake up and answer beside its replacement), then restores `snapshot`, or makes the droplet
/// anew without one, and waits until it runs.
pub async fn replace(
    provider: &dyn Provider,
    spec: &DropletSpec,
    snapshot: Option<&Snapshot>,
) -> Result<ObservedDroplet, ProviderError> {
    for old in provider.list().await?.into_iter().filter(|d| d.name == spec.name) {
        provider.destroy(&old).await?;
    }
    let made = match snapshot {
        Some(snapshot) => provider.restore(snapshot, spec).await?,
        None => provider.create(spec).await?,
    };
    provider.wait_ready(&made).await
}

/// A saved image of a droplet's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub name: String,
    pub droplet_id: String,
    pub droplet_name: String,
    /// RFC 3339.
    pub created_at: String,
    pub size_bytes: u64,
}

/// A provider could not carry out an action.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("droplet {name} ({id}) does not exist")]
    NoSuchDroplet { name: String, id: String },
    #[error("snapshot {id} does not exist")]
    NoSuchSnapshot { id: String },
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the agent of droplet {name} did not start: {reason}\n--- last lines of {log} ---\n{tail}"
    )]
    AgentDidNotStart { name: String, reason: String, log: String, tail: String },
    #[error("no free address is left for droplet {name} in {range}")]
    NoAddress { name: String, range: String },
    #[error(transparent)]
    Api(#[from] digitalocean::client::DoError),
    #[error("droplet {name} {problem}")]
    Droplet { name: String, problem: String },
    #[error("{0}")]
    Setup(String),
}

/// An SSH key the cloud knows for this fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKeyRecord {
    pub id: String,
    pub name: String,
    pub fingerprint: String,
}

impl ProviderError {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProviderError {
        let action = action.into();
        move |source| ProviderError::Io { action, source }
    }
}

/// The operations the orchestrator needs from a cloud.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The name used in `deployment_config.json` and in messages.
    fn name(&self) -> &'static str;

    /// How many droplet actions may run at once without tripping the cloud's rate limit.
    fn concurrency(&self) -> usize;

    /// Every droplet of this fleet, running or not.
    async fn list(&self) -> Result<Vec<ObservedDroplet>, ProviderError>;

    /// Creates a droplet and waits until its agent answers.
    async fn create(&self, spec: &DropletSpec) -> Result<ObservedDroplet, ProviderError>;

    /// Destroys a droplet and everything on its disk.
    async fn destroy(&self, droplet: &ObservedDroplet) -> Result<(), ProviderError>;

    /// Changes a droplet's size; it is down meanwhile and comes back as it was (running or not).
    async fn resize(&self, droplet: &ObservedDroplet, size: &str) -> Result<(), ProviderError>;

    /// Starts a droplet that exists but is not running.
    async fn power_on(&self, droplet: &ObservedDroplet) -> Result<ObservedDroplet, ProviderError>;

    /// Stops a droplet without destroying it.
    async fn power_off(&self, droplet: &ObservedDroplet) -> Result<(), ProviderError>;

    /// Saves an image of a droplet's disk.
    async fn snapshot(&self, droplet: &ObservedDroplet) -> Result<Snapshot, ProviderError>;

    /// Every snapshot of this fleet, oldest first.
    async fn snapshots(&self) -> Result<Vec<Snapshot>, ProviderError>;

    async fn delete_snapshot(&self, snapshot: &Snapshot) -> Result<(), ProviderError>;

    /// Creates a droplet from a snapshot, on a new address, and waits until its agent answers.
    async fn restore(
        &self,
        snapshot: &Snapshot,
        spec: &DropletSpec,
    ) -> Result<ObservedDroplet, ProviderError>;

    /// The size slugs the cloud offers in `region`; `None` where sizes are only labels.
    async fn size_slugs(&self, region: &str) -> Result<Option<Vec<String>>, ProviderError>;

    /// Waits until a droplet that is still being made (status `new`) is running.
    async fn wait_ready(&self, droplet: &ObservedDroplet)
    -> Result<ObservedDroplet, ProviderError>;

    /// Says whether the cloud can be reached with the configured credentials, and how.
    async fn check_access(&self) -> Result<String, ProviderError>;

    /// Registers the fleet's SSH public key unless the cloud already has it (found again by
    /// fingerprint); `None` where the cloud has no SSH access to manage.
    async fn register_ssh_key(
        &self,
        public_key: &str,
    ) -> Result<Option<SshKeyRecord>, ProviderError>;

    /// The fleet's SSH keys the cloud holds other than `current` (a fingerprint), for cleanup.
    async fn stale_ssh_keys(
        &self,
        current: Option<&str>,
    ) -> Result<Vec<SshKeyRecord>, ProviderError>;

    async fn delete_ssh_key(&self, key: &SshKeyRecord) -> Result<(), ProviderError>;

    /// Makes the cloud's firewall say what `policy` says; `None` where the cloud has none.
    async fn apply_firewall(
        &self,
        policy: &firewall::FirewallPolicy,
    ) -> Result<Option<String>, ProviderError>;
}
