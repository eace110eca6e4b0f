//! What tests can read back from a running simulator, without going through the API.

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::firewalls::{InboundRule, OutboundRule};

/// A Droplet's power state as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DropletStatus {
    /// Being created: no networks yet, actions are refused.
    New,
    /// Running.
    Active,
    /// Powered off.
    Off,
}

impl DropletStatus {
    /// The string the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Active => "active",
            Self::Off => "off",
        }
    }
}

/// A Droplet as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DropletInfo {
    /// The Droplet id.
    pub id: u64,
    /// Its name (names need not be unique, as in the real API).
    pub name: String,
    /// Region slug.
    pub region: String,
    /// Size slug.
    pub size: String,
    /// Disk in GB (stays at the old size after a resize without `disk: true`).
    pub disk: u32,
    /// Power state.
    pub status: DropletStatus,
    /// Tags, in canonical capitalisation.
    pub tags: Vec<String>,
    /// The image slug, or the id of the snapshot it was restored from.
    pub image: String,
    /// The public address, allocated at creation and shown by the API once active.
    pub public_ipv4: Ipv4Addr,
    /// The private (VPC) address.
    pub private_ipv4: Ipv4Addr,
    /// Ids of the SSH keys installed at creation.
    pub ssh_key_ids: Vec<u64>,
    /// The `user_data` sent at creation.
    pub user_data: Option<String>,
    /// Snapshots taken of this Droplet that still exist.
    pub snapshot_ids: Vec<u64>,
    /// The VPC it was placed in.
    pub vpc_uuid: String,
}

/// A Droplet snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    /// The snapshot (image) id; `/v2/snapshots` shows it as a string.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The Droplet it was taken from (which may since have been destroyed).
    pub droplet_id: u64,
    /// The region it is stored in.
    pub region: String,
    /// The smallest disk, in GB, a Droplet restored from it needs.
    pub min_disk_size: u32,
}

/// An SSH key of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// MD5 fingerprint, colon-separated hex.
    pub fingerprint: String,
    /// The public key as uploaded.
    pub public_key: String,
}

/// A cloud firewall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallInfo {
    /// The firewall id (a UUID).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Droplets it applies to directly.
    pub droplet_ids: Vec<u64>,
    /// Tags whose Droplets it applies to.
    pub tags: Vec<String>,
    /// Inbound rules.
    pub inbound_rules: Vec<InboundRule>,
    /// Outbound rules.
    pub outbound_rules: Vec<OutboundRule>,
}

/// One API request as the simulator answered it. Headers are never recorded, so the log
/// cannot leak the bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The status answered.
    pub status: u16,
}
