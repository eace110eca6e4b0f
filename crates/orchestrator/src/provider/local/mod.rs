//! The local cloud: every droplet is a real agent process on this machine.
//!
//! A droplet is a directory under `.local-cloud/droplets/` holding its description, its disk
//! (`data/`) and its agent's log, and an agent process listening on the droplet's own
//! loopback address. The fleet is observed from what runs: a droplet whose agent is gone is
//! reported as off, never as healthy. Snapshots are archives of a droplet's directory.

mod address;
mod archive;
pub mod manifest;
mod process;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use fleet::{DropletStatus, ObservedDroplet};
use tokio::sync::Mutex;

use self::manifest::{DATA_DIR, DropletManifest, KEY_FILE};
use super::firewall::FirewallPolicy;
use super::{DropletSpec, Provider, ProviderError, Snapshot, SshKeyRecord};
use crate::control::FleetKey;

/// A local cloud rooted at a directory.
pub struct LocalCloud {
    root: PathBuf,
    agent_binary: PathBuf,
    /// Handed to every new droplet; without it droplets refuse every control request.
    fleet_key: Option<FleetKey>,
    subnet: [u8; 3],
    http: reqwest::Client,
    /// Serialises address choice and directory creation within this process; the state lock
    /// does the same between processes.
    allocation: Mutex<()>,
    /// Serialises updates of the retired-address list, which destroys running at once share.
    retiring: std::sync::Mutex<()>,
}

impl LocalCloud {
    /// A local cloud kept in `root`, whose droplets run `agent_binary agent …` and hold
    /// `fleet_key`.
    pub fn new(
        root: &Path,
        agent_binary: &Path,
        fleet_key: Option<FleetKey>,
    ) -> std::io::Result<LocalCloud> {
        std::fs::create_dir_all(root.join("droplets"))?;
        std::fs::create_dir_all(root.join("snapshots"))?;
        let root = root.canonicalize()?;
        Ok(LocalCloud {
            subnet: address::subnet_of(&root),
            root,
            agent_binary: agent_binary.to_path_buf(),
            fleet_key,
            http: crate::http::client(),
            allocation: Mutex::new(()),
            retiring: std::sync::Mutex::new(()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The addresses this cloud hands out, for messages: `127.a.b.0/24`.
    pub fn address_range(&self) -> String {
        let [a, b, c] = self.subnet;
        format!("{a}.{b}.{c}.0/24")
    }

    fn droplets_dir(&self) -> PathBuf {
        self.root.join("droplets")
    }

    fn droplet_dir(&self, id: &str) -> PathBuf {
        self.droplets_dir().join(id)
    }

    fn snapshot_archive(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(format!("{id}.tar.gz"))
    }

    fn snapshot_record(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(format!("{id}.json"))
    }

    /// Every droplet directory with its description, in creation order.
    fn manifests(&self) -> Result<Vec<(PathBuf, DropletManifest)>, ProviderError> {
        let dir = self.droplets_dir();
        let entries = std::fs::read_dir(&dir)
            .map_err(ProviderError::io(format!("list {}", dir.display())))?;
        let mut found = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            match DropletManifest::read(&path) {
                Ok(manifest) => found.push((path, manifest)),
                // A directory without a readable description is a create that was cut short.
                Err(err) => {
                    tracing::debug!(path = %path.display(), %err, "skipping incomplete droplet")
                }
            }
        }
        found.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        Ok(found)
    }

    fn observe(dir: &Path, manifest: &DropletManifest) -> ObservedDroplet {
        let running = manifest::running_agent(dir).is_some();
        ObservedDroplet {
            id: manifest.id.clone(),
            name: manifest.name.clone(),
            role: manifest.role,
            size: manifest.size.clone(),
            region: manifest.region.clone(),
            ip: Some(manifest.address.to_string()),
            agent_port: manifest.agent_port,
            status: if running { DropletStatus::Active } else { DropletStatus::Off },
        }
    }

    fn find(&self, droplet: &ObservedDroplet) -> Result<(PathBuf, DropletManifest), ProviderError> {
        let dir = self.droplet_dir(&droplet.id);
        DropletManifest::read(&dir).map(|manifest| (dir, manifest)).map_err(|_| {
            ProviderError::NoSuchDroplet { name: droplet.name.clone(), id: droplet.id.clone() }
        })
    }

    /// Makes a droplet directory with a fresh id and address; returns it unstarted.
    async fn allocate(
        &self,
        spec: &DropletSpec,
    ) -> Result<(PathBuf, DropletManifest), ProviderError> {
        let _guard = self.allocation.lock().await;
        let mut taken: Vec<Ipv4Addr> =
            self.manifests()?.into_iter().map(|(_, m)| m.address).collect();
        // Like a cloud, an address just given up is not handed out again while others are free,
        // so a replacement droplet is reached at a new address.
        let in_use = taken.len();
        taken.extend(self.retired());
        let address = address::free_address(self.subnet, &taken, spec.agent_port)
            .or_else(|| address::free_address(self.subnet, &taken[..in_use], spec.agent_port))
            .ok_or_else(|| ProviderError::NoAddress {
                name: spec.name.clone(),
                range: self.address_range(),
            })?;
        let manifest = DropletManifest {
            id: new_id(),
            name: spec.name.clone(),
            role: spec.role,
            size: spec.size.clone(),
            region: spec.region.clone(),
            address,
            agent_port: spec.agent_port,
            created_at: crate::clock::now_rfc3339(),
            tags: vec!["orchestrator".into(), format!("role:{}", spec.role)],
        };
        let dir = self.droplet_dir(&manifest.id);
        std::fs::create_dir_all(dir.join(DATA_DIR))
            .map_err(ProviderError::io(format!("create {}", dir.display())))?;
        manifest.write(&dir).map_err(ProviderError::io(format!("write {}", dir.display())))?;
        if let Some(key) = &self.fleet_key {
            key.create(&dir.join(KEY_FILE)).map_err(|err| ProviderError::Io {
                action: format!("give droplet {} the fleet key", spec.name),
                source: std::io::Error::other(err.to_string()),
            })?;
        }
        Ok((dir, manifest))
    }

    async fn start(
        &self,
        dir: &Path,
        manifest: &DropletManifest,
    ) -> Result<ObservedDroplet, ProviderError> {
        process::start(&self.agent_binary, dir, &self.http).await?;
        tracing::info!(droplet = %manifest.name, address = %manifest.address, "droplet running");
        Ok(Self::observe(dir, manifest))
    }

    /// Addresses of destroyed droplets, newest last.
    fn retired(&self) -> Vec<Ipv4Addr> {
        std::fs::read(self.root.join("retired-addresses.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn retire(&self, address: Ipv4Addr) {
        let _guard = self.retiring.lock().expect("the retired list is never poisoned");
        let mut retired = self.retired();
        retired.retain(|a| *a != address);
        retired.push(address);
        let keep = retired.len().saturating_sub(64);
        let text = serde_json::to_vec(&retired[keep..]).expect("addresses always serialise");
        if let Err(err) =
            fleet::store::write_atomically(&self.root.join("retired-addresses.json"), &text, None)
        {
            tracing::warn!(%err, "cannot note a retired address");
        }
    }

    /// Kills every droplet of this cloud at once, with everything its agent started; for tests
    /// and emergencies, not for plans.
    pub fn kill_all(&self) {
        for (dir, _) in self.manifests().unwrap_or_default() {
            if let Some(pid) = manifest::running_agent(&dir) {
                process::kill_droplet(pid);
            }
            process::kill_leftovers(&dir);
        }
    }
}

#[async_trait]
impl Provider for LocalCloud {
    fn name(&self) -> &'static str {
        "local"
    }

    fn concurrency(&self) -> usize {
        8
    }

    async fn list(&self) -> Result<Vec<ObservedDroplet>, ProviderError> {
        Ok(self.manifests()?.iter().map(|(dir, manifest)| Self::observe(dir, manifest)).collect())
    }

    async fn create(&self, spec: &DropletSpec) -> Result<ObservedDroplet, ProviderError> {
        let (dir, manifest) = self.allocate(spec).await?;
        self.start(&dir, &manifest).await
    }

    async fn destroy(&self, droplet: &ObservedDroplet) -> Result<(), ProviderError> {
        let (dir, manifest) = self.find(droplet)?;
        process::stop(&dir).await;
        self.retire(manifest.address);
        std::fs::remove_dir_all(&dir)
            .map_err(ProviderError::io(format!("remove {}", dir.display())))?;
        tracing::info!(droplet = %droplet.name, "droplet destroyed");
        Ok(())
    }

    async fn resize(&self, droplet: &ObservedDroplet, size: &str) -> Result<(), ProviderError> {
        let (dir, mut manifest) = self.find(droplet)?;
        let was_running = manifest::running_agent(&dir).is_some();
        process::stop(&dir).await;
        manifest.size = size.to_string();
        manifest.write(&dir).map_err(ProviderError::io(format!("write {}", dir.display())))?;
        if was_running {
            self.start(&dir, &manifest).await?;
        }
        Ok(())
    }

    async fn power_on(&self, droplet: &ObservedDroplet) -> Result<ObservedDroplet, ProviderError> {
        let (dir, manifest) = self.find(droplet)?;
        if manifest::running_agent(&dir).is_some() {
            return Ok(Self::observe(&dir, &manifest));
        }
        self.start(&dir, &manifest).await
    }

    async fn power_off(&self, droplet: &ObservedDroplet) -> Result<(), ProviderError> {
        let (dir, _) = self.find(droplet)?;
        process::stop(&dir).await;
        Ok(())
    }

    async fn snapshot(&self, droplet: &ObservedDroplet) -> Result<Snapshot, ProviderError> {
        let (dir, manifest) = self.find(droplet)?;
        let id = new_id();
        let archive = self.snapshot_archive(&id);
        let pack_target = archive.clone();
        let size_bytes = tokio::task::spawn_blocking(move || archive::pack(&dir, &pack_target))
            .await
            .expect("the archiver does not panic")
            .map_err(ProviderError::io(format!("archive droplet {}", manifest.name)))?;
        let created_at = crate::clock::now_rfc3339();
        let snapshot = Snapshot {
            name: format!(
                "{}-{}",
                manifest.name,
                created_at.replace([':', '-'], "").replace('T', "-").trim_end_matches('Z')
            ),
            id,
            droplet_id: manifest.id,
            droplet_name: manifest.name,
            created_at,
            size_bytes,
        };
        let record = serde_json::to_vec_pretty(&snapshot).expect("a snapshot always serialises");
        fleet::store::write_atomically(&self.snapshot_record(&snapshot.id), &record, None)
            .map_err(ProviderError::io("record the snapshot"))?;
        tracing::info!(droplet = %snapshot.droplet_name, snapshot = %snapshot.id, "snapshot taken");
        Ok(snapshot)
    }

    async fn snapshots(&self) -> Result<Vec<Snapshot>, ProviderError> {
        let dir = self.root.join("snapshots");
        let entries = std::fs::read_dir(&dir)
            .map_err(ProviderError::io(format!("list {}", dir.display())))?;
        let mut snapshots: Vec<Snapshot> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .filter_map(|path| serde_json::from_slice(&std::fs::read(path).ok()?).ok())
            .collect();
        snapshots.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(snapshots)
    }

    async fn delete_snapshot(&self, snapshot: &Snapshot) -> Result<(), ProviderError> {
        let record = self.snapshot_record(&snapshot.id);
        if !record.exists() {
            return Err(ProviderError::NoSuchSnapshot { id: snapshot.id.clone() });
        }
        std::fs::remove_file(self.snapshot_archive(&snapshot.id))
            .map_err(ProviderError::io("delete the snapshot"))?;
        std::fs::remove_file(record).map_err(ProviderError::io("delete the snapshot record"))?;
        Ok(())
    }

    async fn restore(
        &self,
        snapshot: &Snapshot,
        spec: &DropletSpec,
    ) -> Result<ObservedDroplet, ProviderError> {
        let archive = self.snapshot_archive(&snapshot.id);
        if !archive.exists() {
            return Err(ProviderError::NoSuchSnapshot { id: snapshot.id.clone() });
        }
        let (dir, fresh) = self.allocate(spec).await?;
        let unpack_dir = dir.clone();
        tokio::task::spawn_blocking(move || archive::unpack(&archive, &unpack_dir))
            .await
            .expect("the archiver does not panic")
            .map_err(ProviderError::io(format!("restore snapshot {}", snapshot.id)))?;
        // The archive brought the old description; the new droplet keeps its own id and address.
        fresh.write(&dir).map_err(ProviderError::io(format!("write {}", dir.display())))?;
        self.start(&dir, &fresh).await
    }

    async fn size_slugs(&self, _region: &str) -> Result<Option<Vec<String>>, ProviderError> {
        // Every local droplet is the same kind of process; sizes are recorded, not enforced.
        Ok(None)
    }

    async fn wait_ready(
        &self,
        droplet: &ObservedDroplet,
    ) -> Result<ObservedDroplet, ProviderError> {
        // Local droplets are running by the time `create` returns; there is nothing to wait for.
        Ok(droplet.clone())
    }

    async fn check_access(&self) -> Result<String, ProviderError> {
        let count = self.manifests()?.len();
        Ok(format!(
            "local cloud in {} ({}), {count} droplet(s)",
            self.root.display(),
            self.address_range()
        ))
    }

    async fn register_ssh_key(
        &self,
        _public_key: &str,
    ) -> Result<Option<SshKeyRecord>, ProviderError> {
        // Local droplets are processes on this machine; nobody logs into them over SSH.
        Ok(None)
    }

    async fn stale_ssh_keys(
        &self,
        _current: Option<&str>,
    ) -> Result<Vec<SshKeyRecord>, ProviderError> {
        Ok(Vec::new())
    }

    async fn delete_ssh_key(&self, key: &SshKeyRecord) -> Result<(), ProviderError> {
        Err(ProviderError::Setup(format!("the local cloud holds no SSH key {}", key.name)))
    }

    async fn apply_firewall(
        &self,
        _policy: &FirewallPolicy,
    ) -> Result<Option<String>, ProviderError> {
        // Loopback addresses are reachable from this machine only; there is no firewall to set.
        Ok(None)
    }
}

/// A new droplet or snapshot id: creation time first, so ids sort oldest first.
fn new_id() -> String {
    let millis = jiff::Timestamp::now().as_millisecond();
    let mut random = [0u8; 3];
    getrandom::fill(&mut random).expect("the system has a random source");
    format!("{millis}{}", random.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
