//! The messages of the agent's API, shared by the agent and the command line.

use fleet::State;
use serde::{Deserialize, Serialize};

use super::events::Event;
use crate::lb::health::Health;
use crate::notify::NotifySettings;

/// `POST /v1/fleet`: the fleet as the command line last applied it, for every agent's replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetUpdate {
    /// Never holds a secret.
    pub state: State,
    pub load_balancer: LbSettings,
    /// Where alerts and heartbeats go; its secrets are sealed with the fleet key.
    #[serde(default)]
    pub notify: Option<NotifySettings>,
    /// The release each project-environment serves (`hostomatic-prod` → `v1.2.3-uat-…`).
    #[serde(default)]
    pub releases: std::collections::BTreeMap<String, String>,
}

/// How the master runs the load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbSettings {
    pub port: u16,
    /// The nginx configuration template (Jinja syntax), from `templates/nginx.conf.j2`.
    pub template: String,
}

/// The answer to a fleet update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetUpdateAnswer {
    pub droplet: String,
    /// Only the master runs a load balancer.
    pub load_balancer: Option<LbReport>,
}

/// The load balancer's condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbReport {
    pub url: String,
    pub nginx_installed: bool,
    pub nginx_running: bool,
    /// When the configuration now serving was installed (RFC 3339).
    pub config_applied_at: Option<String>,
    /// Why the newest configuration was not installed, or why nginx does not run.
    pub error: Option<String>,
}

/// `GET /lb-status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LbStatus {
    pub load_balancer: LbReport,
    pub upstreams: Vec<UpstreamStatus>,
    pub droplets: Vec<DropletHealth>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamStatus {
    pub name: String,
    pub route: String,
    pub project: String,
    pub environment: String,
    pub service: String,
    pub targets: Vec<TargetStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetStatus {
    pub droplet: String,
    pub address: String,
    pub port: u16,
    pub health: Health,
    /// Whether nginx sends it traffic.
    pub in_rotation: bool,
    pub last_error: Option<String>,
}

/// A droplet's agent health as the master sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DropletHealth {
    pub name: String,
    pub role: String,
    pub address: String,
    pub health: String,
}
