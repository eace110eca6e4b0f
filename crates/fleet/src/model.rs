//! The words the fleet is described in, shared by configuration, plan, state and providers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a droplet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The one droplet with nginx, the infrastructure services and single-server projects.
    Master,
    /// `web1 … webK`: application services of projects with more than one server.
    Web,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Web => "web",
        }
    }

    /// The role a droplet name implies: `master`, or `webN` for N ≥ 1.
    pub fn of_name(name: &str) -> Option<Role> {
        if name == MASTER {
            return Some(Role::Master);
        }
        let index = name.strip_prefix("web")?;
        let valid = !index.starts_with('0') && index.parse::<u32>().is_ok_and(|n| n >= 1);
        valid.then_some(Role::Web)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of the master droplet.
pub const MASTER: &str = "master";

/// The name of the `index`th web droplet, counting from 1.
pub fn web_name(index: u32) -> String {
    format!("web{index}")
}

/// The position of a web droplet in the ring (`web3` → 3), for ordering.
pub fn web_index(name: &str) -> Option<u32> {
    name.strip_prefix("web")?.parse().ok()
}

/// Orders droplet names as an operator reads them: master, then web1, web2, … web10.
pub fn droplet_order(name: &str) -> (u32, u32, &str) {
    match (name == MASTER, web_index(name)) {
        (true, _) => (0, 0, name),
        (false, Some(index)) => (1, index, name),
        (false, None) => (2, 0, name),
    }
}

/// Whether a service answers requests or works in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// Listens on a port and gets a load-balancer route.
    #[default]
    Web,
    /// Runs in the background: no port, no route.
    Worker,
}

/// Whether a droplet the cloud reports is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropletStatus {
    /// Being created; no address yet.
    New,
    Active,
    /// Exists but is not running (powered off, or its agent process is gone).
    Off,
}

impl fmt::Display for DropletStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropletStatus::New => "new",
            DropletStatus::Active => "active",
            DropletStatus::Off => "off",
        })
    }
}

/// A droplet as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedDroplet {
    /// The provider's identifier.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub size: String,
    pub region: String,
    /// The address the fleet reaches it on, once it has one.
    pub ip: Option<String>,
    /// The port its agent listens on.
    pub agent_port: u16,
    pub status: DropletStatus,
}

/// Identifies one service of one project-environment: `hostomatic`, `prod`, `backend`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub project: String,
    pub environment: String,
    pub service: String,
}

impl ServiceKey {
    /// The project-environment, the unit that owns ports, secrets and releases.
    pub fn project_env(&self) -> String {
        project_env(&self.project, &self.environment)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}/{}", self.project, self.environment, self.service)
    }
}

/// `hostomatic` and `prod` give `hostomatic-prod`.
pub fn project_env(project: &str, environment: &str) -> String {
    format!("{project}-{environment}")
}

/// Splits `hostomatic-prod` at its last hyphen; environments hold no hyphen.
pub fn split_project_env(key: &str) -> Option<(&str, &str)> {
    key.rsplit_once('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn droplet_names_imply_roles() {
        assert_eq!(Role::of_name("master"), Some(Role::Master));
        assert_eq!(Role::of_name("web12"), Some(Role::Web));
        assert_eq!(Role::of_name("web0"), None);
        assert_eq!(Role::of_name("web01"), None);
        assert_eq!(Role::of_name("db1"), None);
    }

    #[test]
    fn droplets_sort_as_an_operator_reads_them() {
        let mut names = vec!["web10", "web2", "master", "web1"];
        names.sort_by_key(|n| droplet_order(n));
        assert_eq!(names, ["master", "web1", "web2", "web10"]);
    }
}
