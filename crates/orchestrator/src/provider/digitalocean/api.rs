//! The parts of DigitalOcean's API v2 resources the orchestrator reads and writes.
//!
//! Unknown fields are ignored, so the client keeps working as the API grows.

use serde::{Deserialize, Serialize};

/// A droplet as the API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Droplet {
    pub id: u64,
    pub name: String,
    /// `new`, `active`, `off` or `archive`.
    pub status: String,
    #[serde(default)]
    pub size_slug: String,
    pub region: Region,
    #[serde(default)]
    pub networks: Networks,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Networks {
    #[serde(default)]
    pub v4: Vec<Address>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Address {
    pub ip_address: String,
    /// `public` or `private`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Region {
    pub slug: String,
}

impl Droplet {
    /// The public IPv4 address, once the droplet has one.
    pub fn public_ip(&self) -> Option<&str> {
        self.networks.v4.iter().find(|a| a.kind == "public").map(|a| a.ip_address.as_str())
    }
}

/// What `POST /v2/droplets` takes.
#[derive(Debug, Clone, Serialize)]
pub struct CreateDroplet {
    pub name: String,
    pub region: String,
    pub size: String,
    /// A slug (`ubuntu-24-04-x64`) or, to restore, a snapshot's numeric id.
    pub image: serde_json::Value,
    pub ssh_keys: Vec<String>,
    pub tags: Vec<String>,
    pub user_data: String,
    pub monitoring: bool,
    pub ipv6: bool,
}

/// An action on a droplet.
#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    pub id: u64,
    /// `in-progress`, `completed` or `errored`.
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A snapshot of a droplet.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    /// The API gives snapshot ids as strings in `/v2/snapshots`.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default, deserialize_with = "optional_string_or_number")]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub size_gigabytes: f64,
}

/// A droplet size and where it is offered.
#[derive(Debug, Clone, Deserialize)]
pub struct Size {
    pub slug: String,
    #[serde(default)]
    pub available: bool,
    #[serde(default)]
    pub regions: Vec<String>,
}

/// An SSH key registered with the account.
#[derive(Debug, Clone, Deserialize)]
pub struct SshKey {
    pub id: u64,
    pub name: String,
    pub fingerprint: String,
}

/// A cloud firewall.
#[derive(Debug, Clone, Deserialize)]
pub struct Firewall {
    pub id: String,
    pub name: String,
}

/// An error body: `{"id": "...", "message": "..."}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub message: String,
}

/// The `links.pages.next` of a paginated list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub pages: Pages,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pages {
    pub next: Option<String>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(text),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}

fn optional_string_or_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(text) => Ok(Some(text)),
        serde_json::Value::Number(number) => Ok(Some(number.to_string())),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}
