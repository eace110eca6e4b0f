//! What the load balancer's configuration says: upstreams, targets and routes, derived from
//! the fleet state and the targets' health. Pure, so it is tested without nginx.

use std::collections::BTreeMap;

use fleet::{DropletStatus, ServiceKind, State, model};
use serde::Serialize;

/// The values the nginx template is rendered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LbContext {
    pub listen_address: String,
    pub listen_port: u16,
    /// Where nginx keeps its pid, logs and temporary files.
    pub runtime_dir: String,
    /// The master agent, which serves `/lb-status` and the dashboard.
    pub agent_url: String,
    /// `root` when nginx runs as root, so its workers can use the runtime directory.
    pub user: Option<String>,
    pub upstreams: Vec<Upstream>,
    pub routes: Vec<Route>,
}

/// One service of one project-environment and where it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upstream {
    /// `hostomatic--prod--backend`: names never hold `--`, so this cannot clash.
    pub name: String,
    pub project: String,
    pub environment: String,
    pub service: String,
    pub targets: Vec<Target>,
}

/// One droplet a service runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub droplet: String,
    pub address: String,
    pub port: u16,
    /// Taken out of rotation: the droplet is declared failed or its checks fail.
    pub down: bool,
}

/// `/{project}/{environment}/{service}/` to an upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub path: String,
    pub upstream: String,
}

/// The upstreams and routes for `state`; `is_down(droplet, port)` says whether a target's
/// active checks have taken it out.
pub fn upstreams(
    state: &State,
    is_down: impl Fn(&str, u16) -> bool,
) -> (Vec<Upstream>, Vec<Route>) {
    let mut upstreams = Vec::new();
    let mut routes = Vec::new();
    for (project_env, services) in &state.projects {
        let Some((project, environment)) = model::split_project_env(project_env) else {
            continue;
        };
        for (service, record) in services {
            let Some(port) = record.port.filter(|_| record.kind == ServiceKind::Web) else {
                continue;
            };
            let targets: Vec<Target> = record
                .assigned_droplets
                .iter()
                .filter_map(|name| {
                    let droplet = state.droplets.get(name)?;
                    Some(Target {
                        droplet: name.clone(),
                        address: droplet.ip.clone(),
                        port,
                        down: droplet.status != DropletStatus::Active || is_down(name, port),
                    })
                })
                .collect();
            if targets.is_empty() {
                continue;
            }
            let name = format!("{project}--{environment}--{service}");
            routes.push(Route {
                path: format!("/{project}/{environment}/{service}/"),
                upstream: name.clone(),
            });
            upstreams.push(Upstream {
                name,
                project: project.to_string(),
                environment: environment.to_string(),
                service: service.clone(),
                targets,
            });
        }
    }
    (upstreams, routes)
}

/// Every `droplet:port` the load balancer sends traffic to, for the health checker.
pub fn targets(state: &State) -> BTreeMap<(String, u16), String> {
    let (upstreams, _) = upstreams(state, |_, _| false);
    upstreams
        .into_iter()
        .flat_map(|u| u.targets)
        .map(|t| ((t.droplet, t.port), t.address))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet::Role;
    use fleet::state::{DropletRecord, ServiceRecord};

    fn state() -> State {
        let mut state = State::default();
        for (name, ip, role) in [
            ("master", "10.0.0.1", Role::Master),
            ("web1", "10.0.0.2", Role::Web),
            ("web2", "10.0.0.3", Role::Web),
        ] {
            state.add_droplet(
                name,
                DropletRecord {
                    id: name.into(),
                    ip: ip.into(),
                    role,
                    size: "s-1vcpu-1gb".into(),
                    region: "local".into(),
                    monitors: vec![],
                    agent_port: 7700,
                    status: DropletStatus::Active,
                },
            );
        }
        let on = |port, kind, droplets: &[&str]| ServiceRecord {
            port,
            assigned_droplets: droplets.iter().map(|d| d.to_string()).collect(),
            kind,
        };
        state.add_project_service(
            "hostomatic-prod",
            "backend",
            on(Some(8001), ServiceKind::Web, &["web1", "web2"]),
        );
        state.add_project_service(
            "hostomatic-prod",
            "worker_email",
            on(None, ServiceKind::Worker, &["web1", "web2"]),
        );
        state.add_project_service(
            "digitalpixo-uat",
            "frontend",
            on(Some(9002), ServiceKind::Web, &["master"]),
        );
        state
    }

    #[test]
    fn web_services_get_an_upstream_and_a_route_workers_do_not() {
        let (upstreams, routes) = upstreams(&state(), |_, _| false);
        let names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["digitalpixo--uat--frontend", "hostomatic--prod--backend"]);
        assert_eq!(
            routes[1],
            Route {
                path: "/hostomatic/prod/backend/".into(),
                upstream: "hostomatic--prod--backend".into()
            }
        );
        let targets: Vec<String> =
            upstreams[1].targets.iter().map(|t| format!("{}:{}", t.address, t.port)).collect();
        assert_eq!(targets, ["10.0.0.2:8001", "10.0.0.3:8001"]);
    }

    #[test]
    fn failed_droplets_and_failing_targets_are_taken_out() {
        let mut state = state();
        state.droplets.get_mut("web1").expect("web1").status = DropletStatus::Off;
        let (upstreams, _) = upstreams(&state, |droplet, port| droplet == "web2" && port == 8001);
        let backend = &upstreams[1];
        assert!(backend.targets.iter().all(|t| t.down));
        assert!(!upstreams[0].targets[0].down);
    }

    #[test]
    fn a_service_on_no_existing_droplet_gets_no_route() {
        let mut state = state();
        state.remove_droplet("master");
        let (upstreams, routes) = upstreams(&state, |_, _| false);
        assert_eq!(upstreams.len(), 1);
        assert_eq!(routes.len(), 1);
    }
}
