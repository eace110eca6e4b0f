//! The fleet the CSV and the deployment configuration ask for, before any cloud is asked.
//!
//! The fleet is shared by every project: one master, and web droplets `web1 … webK` where
//! `K` is the largest `Servers − 1` of any project. A project with `Servers = S > 1` runs its
//! application services on `web1 … web(S−1)`; a project with one server runs on master.

use crate::deploy_config::DeploymentConfig;
use crate::model::{self, MASTER, Role, ServiceKey, ServiceKind};
use crate::ports;
use crate::projects::ProjectRow;
use crate::sizes;

/// A droplet the fleet should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDroplet {
    pub name: String,
    pub role: Role,
    /// The largest size any project asks of this droplet.
    pub size: String,
    pub region: String,
}

/// A service of a project-environment and the droplets it should run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    pub key: ServiceKey,
    pub kind: ServiceKind,
    /// Where its hash-derived port range starts.
    pub base_port: u16,
    pub droplets: Vec<String>,
}

/// Everything the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredFleet {
    /// Master first, then web droplets in ring order.
    pub droplets: Vec<DesiredDroplet>,
    /// Sorted by service key.
    pub services: Vec<DesiredService>,
    /// The port agents listen on, which no service may take.
    pub agent_port: u16,
    /// The load balancer's port on master, which no service may take either.
    pub load_balancer_port: u16,
}

impl DesiredFleet {
    /// Derives the desired fleet from the CSV rows and the deployment configuration.
    pub fn from_config(rows: &[ProjectRow], config: &DeploymentConfig) -> DesiredFleet {
        DesiredFleet {
            droplets: droplets(rows, &config.region),
            services: services(rows, config),
            agent_port: config.agent_port,
            load_balancer_port: config.load_balancer_port(),
        }
    }

    pub fn droplet(&self, name: &str) -> Option<&DesiredDroplet> {
        self.droplets.iter().find(|d| d.name == name)
    }
}

/// The droplets a project's application services run on.
pub fn placement(servers: u32) -> Vec<String> {
    if servers <= 1 {
        vec![MASTER.to_string()]
    } else {
        (1..servers).map(model::web_name).collect()
    }
}

fn droplets(rows: &[ProjectRow], region: &str) -> Vec<DesiredDroplet> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let master_size = rows
        .iter()
        .fold(first.master_spec.as_str(), |size, row| sizes::larger(size, &row.master_spec));
    let mut droplets = vec![DesiredDroplet {
        name: MASTER.to_string(),
        role: Role::Master,
        size: master_size.to_string(),
        region: region.to_string(),
    }];

    let web_count = rows.iter().map(|row| row.servers.saturating_sub(1)).max().unwrap_or(0);
    let mut web_sizes: Vec<Option<&str>> = vec![None; web_count as usize];
    for row in rows {
        for size in web_sizes.iter_mut().take(row.servers.saturating_sub(1) as usize) {
            *size = Some(size.map_or(row.web_spec.as_str(), |s| sizes::larger(s, &row.web_spec)));
        }
    }
    for (index, size) in web_sizes.into_iter().enumerate() {
        droplets.push(DesiredDroplet {
            name: model::web_name(index as u32 + 1),
            role: Role::Web,
            size: size.expect("every web droplet is asked for by some project").to_string(),
            region: region.to_string(),
        });
    }
    droplets
}

fn services(rows: &[ProjectRow], config: &DeploymentConfig) -> Vec<DesiredService> {
    let mut services = Vec::new();
    for row in rows {
        let Some(project) = config.projects.get(&row.name) else {
            continue;
        };
        let droplets = placement(row.servers);
        for environment in config.environments_of(&row.name) {
            for (service, service_config) in &project.services {
                services.push(DesiredService {
                    key: ServiceKey {
                        project: row.name.clone(),
                        environment: environment.clone(),
                        service: service.clone(),
                    },
                    kind: service_config.kind,
                    base_port: service_config
                        .base_port
                        .unwrap_or_else(|| ports::default_base_port(service)),
                    droplets: droplets.clone(),
                });
            }
        }
    }
    services.sort_by(|a, b| a.key.cmp(&b.key));
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy_config;
    use std::path::Path;

    fn row(name: &str, servers: u32, master: &str, web: &str) -> ProjectRow {
        ProjectRow {
            name: name.into(),
            servers,
            master_spec: master.into(),
            web_spec: web.into(),
            line: 2,
        }
    }

    fn config() -> DeploymentConfig {
        let text = r#"{"projects": {"hostomatic": {"services": {"backend": {}, "frontend": {}, "worker_email": {"type": "worker"}}},
                        "digitalpixo": {"services": {"backend": {}}}}}"#;
        deploy_config::parse(Path::new("d.json"), text).expect("valid")
    }

    #[test]
    fn the_example_gives_master_and_two_web_droplets() {
        let rows = [
            row("hostomatic", 3, "s-2vcpu-4gb", "s-2vcpu-4gb"),
            row("digitalpixo", 1, "s-1vcpu-1gb", "s-1vcpu-1gb"),
        ];
        let fleet = DesiredFleet::from_config(&rows, &config());
        let names: Vec<&str> = fleet.droplets.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["master", "web1", "web2"]);
        assert_eq!(fleet.droplets[0].size, "s-2vcpu-4gb");
    }

    #[test]
    fn services_go_to_web_droplets_or_master() {
        let rows = [
            row("hostomatic", 3, "s-2vcpu-4gb", "s-2vcpu-4gb"),
            row("digitalpixo", 1, "s-1vcpu-1gb", "s-1vcpu-1gb"),
        ];
        let fleet = DesiredFleet::from_config(&rows, &config());
        let find = |p: &str, e: &str, s: &str| {
            fleet
                .services
                .iter()
                .find(|d| d.key.project == p && d.key.environment == e && d.key.service == s)
                .expect("placed")
        };
        assert_eq!(find("hostomatic", "prod", "backend").droplets, ["web1", "web2"]);
        assert_eq!(find("hostomatic", "uat", "worker_email").kind, ServiceKind::Worker);
        assert_eq!(find("digitalpixo", "prod", "backend").droplets, ["master"]);
        assert_eq!(fleet.services.len(), 2 * 3 + 2);
    }

    #[test]
    fn each_droplet_gets_the_largest_size_asked_of_it() {
        let rows = [
            row("big", 2, "s-1vcpu-1gb", "s-4vcpu-8gb"),
            row("wide", 4, "s-2vcpu-4gb", "s-1vcpu-2gb"),
        ];
        let fleet = DesiredFleet::from_config(&rows, &config());
        let sizes: Vec<(&str, &str)> =
            fleet.droplets.iter().map(|d| (d.name.as_str(), d.size.as_str())).collect();
        assert_eq!(
            sizes,
            [
                ("master", "s-2vcpu-4gb"),
                ("web1", "s-4vcpu-8gb"),
                ("web2", "s-1vcpu-2gb"),
                ("web3", "s-1vcpu-2gb")
            ]
        );
    }

    #[test]
    fn no_projects_ask_for_no_droplets() {
        assert!(DesiredFleet::from_config(&[], &config()).droplets.is_empty());
    }
}
