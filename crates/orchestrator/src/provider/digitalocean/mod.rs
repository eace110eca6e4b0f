//! The DigitalOcean provider: droplets made through the API v2.
//!
//! Droplets are named `{fleet}-{droplet}` and tagged `orchestrator`, `fleet:{fleet}` and
//! `fleet:{fleet}:{role}`, so listing by the fleet tag finds exactly this fleet's droplets,
//! and a re-run after a crash adopts what exists instead of creating it again.

pub mod api;
pub mod bootstrap;
pub mod client;
mod firewall;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fleet::{DropletStatus, ObservedDroplet, Role};
use serde_json::json;

use self::api::{CreateDroplet, Droplet};
use self::bootstrap::Bootstrap;
use self::client::{DoClient, DoError, Idempotence};
use super::firewall::FirewallPolicy;
use super::local::manifest::DropletManifest;
use super::{DropletSpec, Provider, ProviderError, Snapshot, SshKeyRecord};
use crate::control::FleetKey;

/// How often progress is polled unless `DO_POLL_INTERVAL_MS` says otherwise; with ten
/// droplets being made at once this stays well inside the API's 250 requests a minute.
const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// How long a droplet or an action may take.
const PATIENCE: Duration = Duration::from_secs(15 * 60);

/// Everything the provider needs, gathered by the command line.
pub struct DoSettings {
    pub api_url: String,
    pub client: Arc<DoClient>,
    pub fleet: String,
    pub image: String,
    pub agent_url: Option<String>,
    pub agent_sha256: Option<String>,
    pub fleet_key: Option<FleetKey>,
    pub agent_port: u16,
    pub poll: Option<Duration>,
}

/// The provider.
pub struct DigitalOcean {
    client: Arc<DoClient>,
    api_url: String,
    fleet: String,
    image: String,
    agent_url: Option<String>,
    agent_sha256: Option<String>,
    fleet_key: Option<FleetKey>,
    agent_port: u16,
    poll: Duration,
    /// Fingerprints of SSH keys put on new droplets.
    ssh_keys: std::sync::Mutex<Vec<String>>,
    /// The last listing of the fleet's droplets, shared by everyone waiting on a droplet.
    listing: tokio::sync::Mutex<Option<(tokio::time::Instant, Vec<Droplet>)>>,
}

impl DigitalOcean {
    pub fn new(settings: DoSettings) -> DigitalOcean {
        DigitalOcean {
            client: settings.client,
            api_url: settings.api_url,
            fleet: settings.fleet,
            image: settings.image,
            agent_url: settings.agent_url,
            agent_sha256: settings.agent_sha256,
            fleet_key: settings.fleet_key,
            agent_port: settings.agent_port,
            poll: settings.poll.unwrap_or(DEFAULT_POLL),
            ssh_keys: std::sync::Mutex::new(Vec::new()),
            listing: tokio::sync::Mutex::new(None),
        }
    }

    fn fleet_tag(&self) -> String {
        format!("fleet:{}", self.fleet)
    }

    fn cloud_name(&self, name: &str) -> String {
        format!("{}-{name}", self.fleet)
    }

    fn key_name(&self) -> String {
        format!("orchestrator-{}", self.fleet)
    }

    /// The droplet as the orchestrator sees it; `None` for one not named by this fleet.
    fn observe(&self, droplet: &Droplet, agent_port: u16) -> Option<ObservedDroplet> {
        let name = droplet.name.strip_prefix(&format!("{}-", self.fleet))?;
        let role = Role::of_name(name)?;
        let status = match droplet.status.as_str() {
            "active" => DropletStatus::Active,
            "new" => DropletStatus::New,
            _ => DropletStatus::Off,
        };
        Some(ObservedDroplet {
            id: droplet.id.to_string(),
            name: name.to_string(),
            role,
            size: droplet.size_slug.clone(),
            region: droplet.region.slug.clone(),
            ip: droplet.public_ip().map(str::to_string),
            agent_port,
            status,
        })
    }

    async fn fleet_droplets(&self) -> Result<Vec<Droplet>, DoError> {
        self.client
            .list(&format!("/v2/droplets?tag_name={}", encode(&self.fleet_tag())), "droplets")
            .await
    }

    /// The fleet's droplets as listed at most half a poll interval ago: droplets being made
    /// at the same time share one list call per poll instead of each asking for itself,
    /// which keeps a large create inside the API's rate limit.
    async fn recent_fleet(&self) -> Result<Vec<Droplet>, DoError> {
        let mut cache = self.listing.lock().await;
        if let Some((at, droplets)) = &*cache
            && at.elapsed() < self.poll / 2
        {
            return Ok(droplets.clone());
        }
        let droplets = self.fleet_droplets().await?;
        *cache = Some((tokio::time::Instant::now(), droplets.clone()));
        Ok(droplets)
    }

    /// The oldest droplet of the fleet named `cloud_name`; `fresh` insists on a new listing,
    /// as after a create whose outcome is unknown.
    async fn find_by_name(
        &self,
        cloud_name: &str,
        fresh: bool,
    ) -> Result<Option<Droplet>, DoError> {
        let droplets =
            if fresh { self.fleet_droplets().await? } else { self.recent_fleet().await? };
        let mut matching: Vec<Droplet> =
            droplets.into_iter().filter(|d| d.name == cloud_name).collect();
        matching.sort_by_key(|d| d.id);
        Ok(matching.into_iter().next())
    }

    /// Makes a droplet unless one of that name exists, and waits until it runs.
    ///
    /// A create that fails in a way that may have reached the API (a 5xx, a timeout) is never
    /// sent again blindly: the fleet's droplets are listed first, and one with the name is
    /// adopted.
    async fn create_once(
        &self,
        spec: &DropletSpec,
        image: serde_json::Value,
    ) -> Result<ObservedDroplet, ProviderError> {
        let cloud_name = self.cloud_name(&spec.name);
        if let Some(existing) = self.find_by_name(&cloud_name, false).await? {
            tracing::info!(droplet = %spec.name, id = existing.id, "adopting an existing droplet");
            return self.wait_active(existing.id, spec).await;
        }
        let request = self.create_request(spec, image)?;
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .client
                .post::<_, Droplet>("/v2/droplets", &request, "droplet", Idempotence::Once)
                .await
            {
                Ok(droplet) => return self.wait_active(droplet.id, spec).await,
                Err(err) if err.is_transient() && tries < 5 => {
                    tracing::warn!(droplet = %spec.name, %err, "create failed ambiguously; looking before trying again");
                    tokio::time::sleep(self.poll.min(Duration::from_secs(2)) * tries).await;
                    if let Some(made) = self.find_by_name(&cloud_name, true).await? {
                        return self.wait_active(made.id, spec).await;
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    fn create_request(
        &self,
        spec: &DropletSpec,
        image: serde_json::Value,
    ) -> Result<CreateDroplet, ProviderError> {
        let (Some(url), Some(sha), Some(key)) =
            (&self.agent_url, &self.agent_sha256, &self.fleet_key)
        else {
            return Err(ProviderError::Setup(
                "new droplets need the agent: set digitalocean.agent_url and digitalocean.agent_sha256 in \
                 deployment_config.json, and run --init for the fleet key"
                    .into(),
            ));
        };
        let tags = vec![
            "orchestrator".to_string(),
            self.fleet_tag(),
            format!("{}:{}", self.fleet_tag(), spec.role),
        ];
        let manifest = DropletManifest {
            id: String::new(),
            name: spec.name.clone(),
            role: spec.role,
            size: spec.size.clone(),
            region: spec.region.clone(),
            address: std::net::Ipv4Addr::UNSPECIFIED,
            agent_port: spec.agent_port,
            created_at: crate::clock::now_rfc3339(),
            tags: tags.clone(),
        };
        let user_data = bootstrap::user_data(
            &Bootstrap { agent_url: url, agent_sha256: sha, fleet_key: key },
            &manifest,
        );
        Ok(CreateDroplet {
            name: self.cloud_name(&spec.name),
            region: spec.region.clone(),
            size: spec.size.clone(),
            image,
            ssh_keys: self.ssh_keys.lock().expect("never poisoned").clone(),
            tags,
            user_data,
            monitoring: true,
            ipv6: false,
        })
    }

    async fn wait_active(
        &self,
        id: u64,
        spec: &DropletSpec,
    ) -> Result<ObservedDroplet, ProviderError> {
        let started = tokio::time::Instant::now();
        loop {
            let droplet = match self.recent_fleet().await?.into_iter().find(|d| d.id == id) {
                Some(droplet) => droplet,
                // Not listed yet (or no longer tagged): ask for it directly.
                None => self.client.get(&format!("/v2/droplets/{id}"), "droplet").await?,
            };
            if droplet.status == "active" && droplet.public_ip().is_some() {
                tracing::info!(droplet = %spec.name, id, "droplet active");
                return self.observe(&droplet, spec.agent_port).ok_or_else(|| {
                    ProviderError::Droplet {
                        name: spec.name.clone(),
                        problem: format!("came back named {:?}", droplet.name),
                    }
                });
            }
            if started.elapsed() > PATIENCE {
                return Err(ProviderError::Droplet {
                    name: spec.name.clone(),
                    problem: format!("is still {} after {PATIENCE:?}", droplet.status),
                });
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Runs a droplet action and waits for it to finish.
    async fn act(
        &self,
        droplet: &ObservedDroplet,
        body: serde_json::Value,
    ) -> Result<(), ProviderError> {
        let kind = body["type"].as_str().unwrap_or("action").to_string();
        let path = format!("/v2/droplets/{}/actions", droplet.id);
        let mut action: api::Action =
            self.client.post(&path, &body, "action", Idempotence::Once).await?;
        let started = tokio::time::Instant::now();
        while action.status == "in-progress" {
            if started.elapsed() > PATIENCE {
                return Err(ProviderError::Droplet {
                    name: droplet.name.clone(),
                    problem: format!("{kind} did not finish"),
                });
            }
            tokio::time::sleep(self.poll).await;
            action = self.client.get(&format!("/v2/actions/{}", action.id), "action").await?;
        }
        if action.status == "errored" {
            return Err(ProviderError::Droplet {
                name: droplet.name.clone(),
                problem: format!("{kind} failed at DigitalOcean (action {})", action.id),
            });
        }
        Ok(())
    }

    fn snapshot_from(&self, snapshot: api::Snapshot) -> Option<Snapshot> {
        let rest = snapshot.name.strip_prefix(&format!("{}--", self.fleet))?;
        let (droplet_name, _) = rest.split_once("--")?;
        Some(Snapshot {
            droplet_name: droplet_name.to_string(),
            droplet_id: snapshot.resource_id.unwrap_or_default(),
            created_at: snapshot.created_at,
            size_bytes: (snapshot.size_gigabytes * 1_073_741_824.0) as u64,
            id: snapshot.id,
            name: snapshot.name,
        })
    }
}

#[async_trait]
impl Provider for DigitalOcean {
    fn name(&self) -> &'static str {
        "digitalocean"
    }

    fn concurrency(&self) -> usize {
        10
    }

    async fn list(&self) -> Result<Vec<ObservedDroplet>, ProviderError> {
        let droplets = self.fleet_droplets().await?;
        Ok(droplets.iter().filter_map(|d| self.observe(d, self.agent_port)).collect())
    }

    async fn create(&self, spec: &DropletSpec) -> Result<ObservedDroplet, ProviderError> {
        self.create_once(spec, json!(self.image)).await
    }

    async fn destroy(&self, droplet: &ObservedDroplet) -> Result<(), ProviderError> {
        self.client.delete(&format!("/v2/droplets/{}", droplet.id)).await?;
        Ok(())
    }

    async fn resize(&self, droplet: &ObservedDroplet, size: &str) -> Result<(), ProviderError> {
        let was_running = droplet.status == DropletStatus::Active;
        if was_running {
            self.act(droplet, json!({"type": "power_off"})).await?;
        }
        let resized =
            self.act(droplet, json!({"type": "resize", "size": size, "disk": false})).await;
        if let Err(err) = resized {
            // Leave the droplet as it was found: running, at its old size.
            if was_running && let Err(again) = self.act(droplet, json!({"type": "power_on"})).await
            {
                tracing::error!(droplet = %droplet.name, %again, "cannot power the droplet on again");
            }
            return Err(err);
        }
        if was_running {
            self.act(droplet, json!({"type": "power_on"})).await?;
        }
        Ok(())
    }

    async fn power_on(&self, droplet: &ObservedDroplet) -> Result<ObservedDroplet, ProviderError> {
        self.act(droplet, json!({"type": "power_on"})).await?;
        let current: Droplet =
            self.client.get(&format!("/v2/droplets/{}", droplet.id), "droplet").await?;
        Ok(self.observe(&current, droplet.agent_port).unwrap_or_else(|| droplet.clone()))
    }

    async fn power_off(&self, droplet: &ObservedDroplet) -> Result<(), ProviderError> {
        self.act(droplet, json!({"type": "power_off"})).await
    }

    async fn snapshot(&self, droplet: &ObservedDroplet) -> Result<Snapshot, ProviderError> {
        let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
        let name = format!("{}--{}--{stamp}", self.fleet, droplet.name);
        self.act(droplet, json!({"type": "snapshot", "name": name})).await?;
        let taken: Vec<api::Snapshot> = self
            .client
            .list(&format!("/v2/droplets/{}/snapshots", droplet.id), "snapshots")
            .await?;
        taken
            .into_iter()
            .filter(|s| s.name == name)
            .find_map(|s| {
                self.snapshot_from(api::Snapshot { resource_id: Some(droplet.id.clone()), ..s })
            })
            .ok_or_else(|| ProviderError::Droplet {
                name: droplet.name.clone(),
                problem: format!("has no snapshot named {name} after taking it"),
            })
    }

    async fn snapshots(&self) -> Result<Vec<Snapshot>, ProviderError> {
        let all: Vec<api::Snapshot> =
            self.client.list("/v2/snapshots?resource_type=droplet", "snapshots").await?;
        let mut ours: Vec<Snapshot> =
            all.into_iter().filter_map(|s| self.snapshot_from(s)).collect();
        ours.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
        Ok(ours)
    }

    async fn delete_snapshot(&self, snapshot: &Snapshot) -> Result<(), ProviderError> {
        self.client.delete(&format!("/v2/snapshots/{}", snapshot.id)).await?;
        Ok(())
    }

    async fn restore(
        &self,
        snapshot: &Snapshot,
        spec: &DropletSpec,
    ) -> Result<ObservedDroplet, ProviderError> {
        let image: serde_json::Value =
            snapshot.id.parse::<u64>().map_or_else(|_| json!(snapshot.id), |id| json!(id));
        self.create_once(spec, image).await
    }

    async fn size_slugs(&self, region: &str) -> Result<Option<Vec<String>>, ProviderError> {
        let sizes: Vec<api::Size> = self.client.list("/v2/sizes", "sizes").await?;
        let offered = sizes
            .into_iter()
            .filter(|s| s.available && s.regions.iter().any(|r| r == region))
            .map(|s| s.slug)
            .collect();
        Ok(Some(offered))
    }

    async fn wait_ready(
        &self,
        droplet: &ObservedDroplet,
    ) -> Result<ObservedDroplet, ProviderError> {
        if droplet.status != DropletStatus::New {
            return Ok(droplet.clone());
        }
        let id = droplet.id.parse().map_err(|_| ProviderError::Droplet {
            name: droplet.name.clone(),
            problem: format!("has a malformed id {:?}", droplet.id),
        })?;
        let spec = DropletSpec {
            name: droplet.name.clone(),
            role: droplet.role,
            size: droplet.size.clone(),
            region: droplet.region.clone(),
            agent_port: droplet.agent_port,
        };
        self.wait_active(id, &spec).await
    }

    async fn check_access(&self) -> Result<String, ProviderError> {
        let account: serde_json::Value = self.client.get("/v2/account", "account").await?;
        let email = account["email"].as_str().unwrap_or("an account");
        let limit = account["droplet_limit"]
            .as_u64()
            .map(|l| format!(", droplet limit {l}"))
            .unwrap_or_default();
        Ok(format!("DigitalOcean at {} reachable as {email}{limit}", self.api_url))
    }

    async fn register_ssh_key(
        &self,
        public_key: &str,
    ) -> Result<Option<SshKeyRecord>, ProviderError> {
        let fingerprint = md5_fingerprint(public_key)
            .ok_or_else(|| ProviderError::Setup("the SSH public key cannot be read".into()))?;
        let key = match self
            .client
            .get::<api::SshKey>(&format!("/v2/account/keys/{fingerprint}"), "ssh_key")
            .await
        {
            Ok(key) => key,
            Err(err) if err.is_not_found() => {
                let body = json!({"name": self.key_name(), "public_key": public_key.trim()});
                self.client.post("/v2/account/keys", &body, "ssh_key", Idempotence::Once).await?
            }
            Err(err) => return Err(err.into()),
        };
        self.ssh_keys.lock().expect("never poisoned").push(key.fingerprint.clone());
        Ok(Some(SshKeyRecord {
            id: key.id.to_string(),
            name: key.name,
            fingerprint: key.fingerprint,
        }))
    }

    async fn stale_ssh_keys(
        &self,
        current: Option<&str>,
    ) -> Result<Vec<SshKeyRecord>, ProviderError> {
        let keys: Vec<api::SshKey> = self.client.list("/v2/account/keys", "ssh_keys").await?;
        Ok(keys
            .into_iter()
            .filter(|k| k.name == self.key_name() && Some(k.fingerprint.as_str()) != current)
            .map(|k| SshKeyRecord {
                id: k.id.to_string(),
                name: k.name,
                fingerprint: k.fingerprint,
            })
            .collect())
    }

    async fn delete_ssh_key(&self, key: &SshKeyRecord) -> Result<(), ProviderError> {
        self.client.delete(&format!("/v2/account/keys/{}", key.id)).await?;
        Ok(())
    }

    async fn apply_firewall(
        &self,
        policy: &FirewallPolicy,
    ) -> Result<Option<String>, ProviderError> {
        firewall::apply(&self.client, &self.fleet, &self.fleet_tag(), policy).await.map(Some)
    }
}

/// DigitalOcean's fingerprint of an OpenSSH public key: MD5 of the key blob, as hex pairs
/// joined by colons.
pub fn md5_fingerprint(public_key: &str) -> Option<String> {
    use md5::{Digest, Md5};
    let key = ssh_key::PublicKey::from_openssh(public_key.trim()).ok()?;
    let blob = key.to_bytes().ok()?;
    let digest = Md5::digest(&blob);
    Some(digest.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
}

/// Encodes a query value (tag names hold a colon).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
