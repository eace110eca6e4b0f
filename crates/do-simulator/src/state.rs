//! The simulated account: Droplets, actions, keys, snapshots, tags and firewalls.
//!
//! Time-driven changes (a Droplet becoming active, an action completing) are not run by
//! timers: each action records when it is due, and [`Store::advance`] settles every due
//! action before the store is read. That keeps the simulator deterministic and free of
//! background tasks, and a zero latency simply means "done by the next request".

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::firewalls::{InboundRule, OutboundRule};
use crate::inspect::{DropletInfo, DropletStatus, FirewallInfo, KeyInfo, SnapshotInfo};

/// Formats a time the way the API does: ISO 8601, UTC, whole seconds.
pub(crate) fn api_time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn later(ts: Timestamp, by: Duration) -> Timestamp {
    SignedDuration::try_from(by).ok().and_then(|d| ts.checked_add(d).ok()).unwrap_or(ts)
}

/// A Droplet.
#[derive(Debug, Clone)]
pub(crate) struct Droplet {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) region: &'static str,
    pub(crate) size: &'static str,
    pub(crate) disk: u32,
    /// The image object to embed, fixed at creation.
    pub(crate) image: Value,
    pub(crate) status: DropletStatus,
    pub(crate) created_at: Timestamp,
    pub(crate) tags: Vec<String>,
    pub(crate) ipv6: bool,
    pub(crate) monitoring: bool,
    pub(crate) backups: bool,
    pub(crate) vpc_uuid: String,
    pub(crate) public_v4: Ipv4Addr,
    pub(crate) private_v4: Ipv4Addr,
    pub(crate) ssh_key_ids: Vec<u64>,
    pub(crate) user_data: Option<String>,
    pub(crate) snapshot_ids: Vec<u64>,
    /// The action in progress, if any; the API runs one event per Droplet at a time.
    pub(crate) pending_action: Option<u64>,
}

impl Droplet {
    /// The image slug, or the snapshot id it was restored from.
    fn image_label(&self) -> String {
        match &self.image["slug"] {
            Value::String(slug) => slug.clone(),
            _ => self.image["id"].to_string(),
        }
    }

    pub(crate) fn info(&self) -> DropletInfo {
        DropletInfo {
            id: self.id,
            name: self.name.clone(),
            region: self.region.to_owned(),
            size: self.size.to_owned(),
            disk: self.disk,
            status: self.status,
            tags: self.tags.clone(),
            image: self.image_label(),
            public_ipv4: self.public_v4,
            private_ipv4: self.private_v4,
            ssh_key_ids: self.ssh_key_ids.clone(),
            user_data: self.user_data.clone(),
            snapshot_ids: self.snapshot_ids.clone(),
            vpc_uuid: self.vpc_uuid.clone(),
        }
    }
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionStatus {
    InProgress,
    Completed,
    Errored,
}

impl ActionStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Errored => "errored",
        }
    }
}

/// What a completed action does to its Droplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    Boot,
    PowerOff,
    PowerOn,
    Resize { size: &'static str, disk: bool },
    Snapshot { name: String },
    Rename { name: String },
    EnableIpv6,
    Backups(bool),
}

/// A Droplet action (including the `create` action of every new Droplet).
#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub(crate) id: u64,
    pub(crate) kind: String,
    pub(crate) droplet_id: u64,
    pub(crate) region: &'static str,
    pub(crate) status: ActionStatus,
    pub(crate) started_at: Timestamp,
    pub(crate) completed_at: Option<Timestamp>,
    due: Instant,
    finishes_at: Timestamp,
    errors: bool,
    effect: Effect,
}

/// An SSH key.
#[derive(Debug, Clone)]
pub(crate) struct SshKey {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) public_key: String,
    pub(crate) fingerprint: String,
}

impl SshKey {
    pub(crate) fn info(&self) -> KeyInfo {
        KeyInfo {
            id: self.id,
            name: self.name.clone(),
            fingerprint: self.fingerprint.clone(),
            public_key: self.public_key.clone(),
        }
    }
}

/// A Droplet snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) droplet_id: u64,
    pub(crate) region: &'static str,
    pub(crate) created_at: Timestamp,
    pub(crate) min_disk_size: u32,
    pub(crate) size_gigabytes: f64,
    pub(crate) distribution: String,
}

impl Snapshot {
    pub(crate) fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            id: self.id,
            name: self.name.clone(),
            droplet_id: self.droplet_id,
            region: self.region.to_owned(),
            min_disk_size: self.min_disk_size,
        }
    }
}

/// A tag; its name keeps the capitalisation it was created with.
#[derive(Debug, Clone)]
pub(crate) struct Tag {
    pub(crate) name: String,
    pub(crate) last_tagged_droplet: Option<u64>,
}

/// A cloud firewall.
#[derive(Debug, Clone)]
pub(crate) struct Firewall {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created_at: Timestamp,
    pub(crate) droplet_ids: Vec<u64>,
    pub(crate) tags: Vec<String>,
    pub(crate) inbound: Vec<InboundRule>,
    pub(crate) outbound: Vec<OutboundRule>,
}

impl Firewall {
    pub(crate) fn info(&self) -> FirewallInfo {
        FirewallInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            droplet_ids: self.droplet_ids.clone(),
            tags: self.tags.clone(),
            inbound_rules: self.inbound.clone(),
            outbound_rules: self.outbound.clone(),
        }
    }
}

/// Hosts per /24 block handed out: .2 to .254 (.0, .1 and .255 are left alone).
const HOSTS_PER_BLOCK: u32 = 253;

/// The `n`-th address of a 127.x.0.0/16 pool.
///
/// Deviation from the real API, on purpose: Droplet addresses come from the loopback
/// ranges 127.210.0.0/16 (public) and 127.211.0.0/16 (private), never from routable or
/// private-network space, because tests on this machine may only send traffic to loopback.
/// A client that connects to a simulated Droplet therefore reaches this machine, where a
/// test can listen on that address.
fn pool_address(second_octet: u8, n: u32) -> Option<Ipv4Addr> {
    let block = u8::try_from(n / HOSTS_PER_BLOCK).ok()?;
    let host = u8::try_from(n % HOSTS_PER_BLOCK + 2).ok()?;
    Some(Ipv4Addr::new(127, second_octet, block, host))
}

/// Second octet of the public pool (127.210.0.0/16).
pub(crate) const PUBLIC_POOL: u8 = 210;
/// Second octet of the private pool (127.211.0.0/16).
pub(crate) const PRIVATE_POOL: u8 = 211;

/// The whole account.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) droplets: BTreeMap<u64, Droplet>,
    pub(crate) actions: BTreeMap<u64, Action>,
    pub(crate) keys: BTreeMap<u64, SshKey>,
    pub(crate) snapshots: BTreeMap<u64, Snapshot>,
    pub(crate) tags: Vec<Tag>,
    pub(crate) firewalls: Vec<Firewall>,
    next_droplet: u64,
    next_action: u64,
    next_key: u64,
    next_snapshot: u64,
    next_address: u32,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty account. Ids start at realistic magnitudes (action ids above 2^31, as in
    /// production) so that clients storing them in too small an integer fail here too.
    pub(crate) fn new() -> Self {
        Self {
            droplets: BTreeMap::new(),
            actions: BTreeMap::new(),
            keys: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            tags: Vec::new(),
            firewalls: Vec::new(),
            next_droplet: 410_000_001,
            next_action: 2_400_000_001,
            next_key: 41_000_001,
            next_snapshot: 180_000_001,
            next_address: 0,
        }
    }

    pub(crate) fn take_droplet_id(&mut self) -> u64 {
        let id = self.next_droplet;
        self.next_droplet += 1;
        id
    }

    pub(crate) fn take_key_id(&mut self) -> u64 {
        let id = self.next_key;
        self.next_key += 1;
        id
    }

    /// A public and a private address for a new Droplet; `None` once a pool is exhausted.
    pub(crate) fn allocate_addresses(&mut self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        let n = self.next_address;
        let public = pool_address(PUBLIC_POOL, n)?;
        let private = pool_address(PRIVATE_POOL, n)?;
        self.next_address += 1;
        Some((public, private))
    }

    /// Starts an action on `droplet_id`, locking the Droplet until it settles.
    #[expect(clippy::too_many_arguments, reason = "each argument is a distinct fact")]
    pub(crate) fn start_action(
        &mut self,
        kind: &str,
        droplet_id: u64,
        region: &'static str,
        now: Instant,
        latency: Duration,
        errors: bool,
        effect: Effect,
    ) -> u64 {
        let id = self.next_action;
        self.next_action += 1;
        let started_at = Timestamp::now();
        self.actions.insert(
            id,
            Action {
                id,
                kind: kind.to_owned(),
                droplet_id,
                region,
                status: ActionStatus::InProgress,
                started_at,
                completed_at: None,
                due: now + latency,
                finishes_at: later(started_at, latency),
                errors,
                effect,
            },
        );
        if let Some(droplet) = self.droplets.get_mut(&droplet_id) {
            droplet.pending_action = Some(id);
        }
        id
    }

    /// Settles every action due by `now`, oldest due first.
    pub(crate) fn advance(&mut self, now: Instant) {
        let mut due: Vec<(Instant, u64)> = self
            .actions
            .values()
            .filter(|a| a.status == ActionStatus::InProgress && a.due <= now)
            .map(|a| (a.due, a.id))
            .collect();
        due.sort_unstable();
        for (_, id) in due {
            self.settle(id);
        }
    }

    fn settle(&mut self, id: u64) {
        let Some(action) = self.actions.get_mut(&id) else { return };
        action.status = if action.errors { ActionStatus::Errored } else { ActionStatus::Completed };
        action.completed_at = Some(action.finishes_at);
        let (droplet_id, errors, effect, at) =
            (action.droplet_id, action.errors, action.effect.clone(), action.finishes_at);
        let Some(droplet) = self.droplets.get_mut(&droplet_id) else { return };
        if droplet.pending_action == Some(id) {
            droplet.pending_action = None;
        }
        if errors {
            // An errored action changes nothing; an errored create leaves the Droplet `new`.
            return;
        }
        match effect {
            Effect::Boot | Effect::PowerOn => droplet.status = DropletStatus::Active,
            Effect::PowerOff => droplet.status = DropletStatus::Off,
            Effect::Resize { size, disk } => {
                droplet.size = size;
                if disk {
                    droplet.disk = crate::catalog::size(size).map_or(droplet.disk, |s| s.disk);
                }
            }
            Effect::Rename { name } => droplet.name = name,
            Effect::EnableIpv6 => droplet.ipv6 = true,
            Effect::Backups(on) => droplet.backups = on,
            Effect::Snapshot { name } => {
                let snapshot_id = self.next_snapshot;
                self.next_snapshot += 1;
                droplet.snapshot_ids.push(snapshot_id);
                let image_gb = droplet.image["size_gigabytes"].as_f64().unwrap_or(2.0);
                let snapshot = Snapshot {
                    id: snapshot_id,
                    name,
                    droplet_id,
                    region: droplet.region,
                    created_at: at,
                    min_disk_size: droplet.disk,
                    // A used disk holds a little more than the bare image.
                    size_gigabytes: (image_gb * 100.0 + 37.0).round() / 100.0,
                    distribution: droplet.image["distribution"]
                        .as_str()
                        .unwrap_or("Unknown")
                        .to_owned(),
                };
                self.snapshots.insert(snapshot_id, snapshot);
            }
        }
    }

    /// Destroys a Droplet and detaches it from firewalls; its snapshots stay.
    pub(crate) fn remove_droplet(&mut self, id: u64) -> bool {
        if self.droplets.remove(&id).is_none() {
            return false;
        }
        for firewall in &mut self.firewalls {
            firewall.droplet_ids.retain(|d| *d != id);
        }
        true
    }

    /// The tag whose name equals `name` ignoring case.
    pub(crate) fn tag_like(&self, name: &str) -> Option<&Tag> {
        self.tags.iter().find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// The canonical name of `name`, creating the tag if it does not exist yet.
    pub(crate) fn ensure_tag(&mut self, name: &str) -> String {
        if let Some(tag) = self.tag_like(name) {
            return tag.name.clone();
        }
        self.tags.push(Tag { name: name.to_owned(), last_tagged_droplet: None });
        name.to_owned()
    }

    /// Records that `droplet_id` was just tagged with the canonical tag `name`.
    pub(crate) fn note_tagged(&mut self, name: &str, droplet_id: u64) {
        if let Some(tag) = self.tags.iter_mut().find(|t| t.name == name) {
            tag.last_tagged_droplet = Some(droplet_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_their_loopback_pools() {
        let mut store = Store::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..600 {
            let (public, private) = store.allocate_addresses().expect("pool not exhausted");
            assert_eq!(public.octets()[..2], [127, 210]);
            assert_eq!(private.octets()[..2], [127, 211]);
            assert!(!matches!(public.octets()[3], 0 | 1 | 255), "{public}");
            assert!(seen.insert(public), "{public} handed out twice");
        }
        assert_eq!(pool_address(PUBLIC_POOL, 253), Some(Ipv4Addr::new(127, 210, 1, 2)));
        assert_eq!(pool_address(PUBLIC_POOL, 256 * HOSTS_PER_BLOCK), None);
    }
}
