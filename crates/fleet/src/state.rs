//! `infrastructure.json`: what the fleet is, as last applied.
//!
//! The state is derived: `--orchestrate` rebuilds it from the CSV and what the cloud reports,
//! so hand edits are overwritten. Its shape follows the product description: droplets by
//! name, projects keyed `project-environment` holding their services, heartbeat settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{self, DropletStatus, MASTER, Role, ServiceKind};
use crate::{ports, topology};

/// The version of the state file's shape.
pub const SCHEMA: u32 = 1;

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default = "schema")]
    pub schema: u32,
    /// The provider the droplets came from.
    #[serde(default)]
    pub provider: String,
    /// The fleet's name at the provider (`fleet_name`).
    #[serde(default)]
    pub fleet: String,
    #[serde(default)]
    pub droplets: BTreeMap<String, DropletRecord>,
    /// Services of each project-environment (`hostomatic-prod`) by service name.
    #[serde(default)]
    pub projects: BTreeMap<String, BTreeMap<String, ServiceRecord>>,
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    /// The port of each infrastructure instance on master (`redis hostomatic-prod`), kept so
    /// an instance never moves when others come or go.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub infrastructure: BTreeMap<String, u16>,
    /// The administrator's address (`--update-ip`, `ADMIN_IP`), as a CIDR block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_ip: Option<String>,
    /// Whether `--update-ip` set the address, which then wins over `ADMIN_IP` in `.env`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin_ip_pinned: bool,
    /// Further addresses allowed in (`ADDITIONAL_IPS`), as CIDR blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_ips: Vec<String>,
    /// When the state was last written (RFC 3339), by whom it was written is in the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// One droplet of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletRecord {
    /// The provider's identifier.
    pub id: String,
    pub ip: String,
    pub role: Role,
    pub size: String,
    pub region: String,
    /// The droplets this one watches.
    #[serde(default)]
    pub monitors: Vec<String>,
    pub agent_port: u16,
    pub status: DropletStatus,
}

/// One service of a project-environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Absent for workers, which listen on nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub assigned_droplets: Vec<String>,
    #[serde(rename = "type", default)]
    pub kind: ServiceKind,
}

/// Who sends the "all is well" emails, and how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatConfig {
    pub primary_sender: Option<String>,
    #[serde(default)]
    pub backup_senders: Vec<String>,
    pub interval_minutes: u32,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig { primary_sender: None, backup_senders: Vec::new(), interval_minutes: 15 }
    }
}

/// Counts for a one-line overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub droplets: usize,
    pub web_droplets: usize,
    pub active_droplets: usize,
    pub project_environments: usize,
    pub services: usize,
    pub issues: usize,
}

fn schema() -> u32 {
    SCHEMA
}

impl Default for State {
    fn default() -> Self {
        State {
            schema: SCHEMA,
            provider: String::new(),
            fleet: String::new(),
            droplets: BTreeMap::new(),
            projects: BTreeMap::new(),
            heartbeat: HeartbeatConfig::default(),
            infrastructure: BTreeMap::new(),
            admin_ip: None,
            admin_ip_pinned: false,
            additional_ips: Vec::new(),
            updated_at: None,
        }
    }
}

impl State {
    /// Adds or replaces a droplet.
    pub fn add_droplet(&mut self, name: &str, record: DropletRecord) {
        self.droplets.insert(name.to_string(), record);
    }

    /// Records a droplet's new address; false if there is no such droplet.
    pub fn update_droplet_ip(&mut self, name: &str, ip: &str) -> bool {
        match self.droplets.get_mut(name) {
            Some(droplet) => {
                droplet.ip = ip.to_string();
                true
            }
            None => false,
        }
    }

    /// Removes a droplet and returns what it was.
    pub fn remove_droplet(&mut self, name: &str) -> Option<DropletRecord> {
        self.droplets.remove(name)
    }

    pub fn droplet(&self, name: &str) -> Option<&DropletRecord> {
        self.droplets.get(name)
    }

    /// Droplet names in operator order: master, web1, web2, …
    pub fn droplet_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.droplets.keys().map(String::as_str).collect();
        names.sort_by_key(|name| model::droplet_order(name));
        names
    }

    pub fn droplets_by_role(&self, role: Role) -> Vec<(&str, &DropletRecord)> {
        self.droplet_names()
            .into_iter()
            .filter_map(|name| Some((name, self.droplets.get(name)?)))
            .filter(|(_, droplet)| droplet.role == role)
            .collect()
    }

    pub fn master(&self) -> Option<&DropletRecord> {
        self.droplets.get(MASTER)
    }

    pub fn web_droplets(&self) -> Vec<(&str, &DropletRecord)> {
        self.droplets_by_role(Role::Web)
    }

    /// Adds or replaces a service of a project-environment.
    pub fn add_project_service(&mut self, project_env: &str, service: &str, record: ServiceRecord) {
        self.projects
            .entry(project_env.to_string())
            .or_default()
            .insert(service.to_string(), record);
    }

    /// Removes a service; a project-environment left with no service is removed too.
    pub fn remove_project_service(
        &mut self,
        project_env: &str,
        service: &str,
    ) -> Option<ServiceRecord> {
        let services = self.projects.get_mut(project_env)?;
        let removed = services.remove(service);
        if services.is_empty() {
            self.projects.remove(project_env);
        }
        removed
    }

    pub fn project_services(&self, project_env: &str) -> Option<&BTreeMap<String, ServiceRecord>> {
        self.projects.get(project_env)
    }

    /// The name a service runs under on a droplet: `hostomatic-prod-backend`.
    pub fn service_name(project_env: &str, service: &str) -> String {
        format!("{project_env}-{service}")
    }

    /// The services that run on a droplet, by their running names.
    pub fn services_on_droplet(&self, droplet: &str) -> Vec<String> {
        self.projects
            .iter()
            .flat_map(|(project_env, services)| {
                services
                    .iter()
                    .filter(|(_, record)| record.assigned_droplets.iter().any(|d| d == droplet))
                    .map(|(service, _)| State::service_name(project_env, service))
            })
            .collect()
    }

    /// `address:port` of every droplet a web service runs on; empty for workers.
    pub fn load_balancer_targets(&self, project_env: &str, service: &str) -> Vec<String> {
        let Some(record) =
            self.projects.get(project_env).and_then(|services| services.get(service))
        else {
            return Vec::new();
        };
        let Some(port) = record.port.filter(|_| record.kind == ServiceKind::Web) else {
            return Vec::new();
        };
        record
            .assigned_droplets
            .iter()
            .filter_map(|name| self.droplets.get(name))
            .map(|droplet| format!("{}:{port}", droplet.ip))
            .collect()
    }

    /// The droplets that watch `droplet`.
    pub fn monitored_by(&self, droplet: &str) -> Vec<String> {
        let monitors =
            self.droplets.iter().map(|(name, d)| (name.clone(), d.monitors.clone())).collect();
        topology::monitored_by(&monitors, droplet)
    }

    /// A short stable hash naming a project-environment's resources.
    pub fn resource_hash(project: &str, environment: &str) -> String {
        ports::resource_hash(project, environment)
    }

    /// The port a project-environment's service gets before collisions are resolved.
    pub fn hash_port(project: &str, environment: &str, base: u16, range: u16) -> u16 {
        ports::hash_port(project, environment, base, range)
    }

    /// Changes the heartbeat settings; `None` leaves a setting as it is.
    pub fn update_heartbeat_config(
        &mut self,
        primary_sender: Option<String>,
        backup_senders: Option<Vec<String>>,
        interval_minutes: Option<u32>,
    ) {
        if let Some(primary) = primary_sender {
            self.heartbeat.primary_sender = Some(primary);
        }
        if let Some(backups) = backup_senders {
            self.heartbeat.backup_senders = backups;
        }
        if let Some(interval) = interval_minutes {
            self.heartbeat.interval_minutes = interval;
        }
    }

    pub fn heartbeat(&self) -> &HeartbeatConfig {
        &self.heartbeat
    }

    /// Everything inconsistent in the state, one sentence each; empty when all is well.
    pub fn validate(&self) -> Vec<String> {
        let mut issues = Vec::new();
        if self.master().is_none() && (!self.droplets.is_empty() || !self.projects.is_empty()) {
            issues.push("the fleet has no master droplet".to_string());
        }
        for name in self.droplet_names() {
            let droplet = &self.droplets[name];
            if droplet.status != DropletStatus::Active {
                issues.push(format!("droplet {name} is {}", droplet.status));
            }
            if droplet.ip.is_empty() {
                issues.push(format!("droplet {name} has no address"));
            }
            for watched in &droplet.monitors {
                if !self.droplets.contains_key(watched) {
                    issues.push(format!(
                        "droplet {name} monitors {watched}, which is not in the fleet"
                    ));
                }
            }
        }
        let mut ports_in_use: BTreeMap<(&str, u16), String> = BTreeMap::new();
        for (project_env, services) in &self.projects {
            for (service, record) in services {
                let full = State::service_name(project_env, service);
                if record.kind == ServiceKind::Web && record.port.is_none() {
                    issues.push(format!("service {full} has no port"));
                }
                for droplet in &record.assigned_droplets {
                    if !self.droplets.contains_key(droplet) {
                        issues.push(format!(
                            "service {full} is assigned to {droplet}, which is not in the fleet"
                        ));
                    }
                    let Some(port) = record.port else { continue };
                    if let Some(other) = ports_in_use.insert((droplet.as_str(), port), full.clone())
                    {
                        issues.push(format!(
                            "services {other} and {full} both use port {port} on {droplet}"
                        ));
                    }
                }
            }
        }
        issues
    }

    pub fn summary(&self) -> Summary {
        Summary {
            droplets: self.droplets.len(),
            web_droplets: self.web_droplets().len(),
            active_droplets: self
                .droplets
                .values()
                .filter(|d| d.status == DropletStatus::Active)
                .count(),
            project_environments: self.projects.len(),
            services: self.projects.values().map(BTreeMap::len).sum(),
            issues: self.validate().len(),
        }
    }
}

#[cfg(test)]
mod tests;
