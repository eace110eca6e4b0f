//! Infrastructure services on master: which instances there are and on which ports.
//!
//! Each project-environment that uses an infrastructure service gets an instance of its own,
//! on a port derived from a base per kind and a hash of the project-environment, so the port
//! is known without a registry and stays the same as projects come and go. The defaults lie
//! above the range application ports and the system's ephemeral ports use.

use std::collections::BTreeMap;

use crate::DeploymentConfig;
use crate::State;
use crate::deploy_config::{InfraConfig, InfraKind};
use crate::model::project_env;
use crate::ports::hash_port;

/// How far above its base an instance's port may land.
pub const RANGE: u16 = 500;

/// One instance: `redis` for `hostomatic-prod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub kind: InfraKind,
    pub project: String,
    pub environment: String,
    pub project_env: String,
    pub port: u16,
}

/// Where a kind's ports start when the configuration does not say.
pub fn default_base_port(kind: InfraKind) -> u16 {
    match kind {
        InfraKind::Database => 61000,
        InfraKind::Cache => 62000,
        InfraKind::Vault => 63000,
        InfraKind::Search => 64000,
        InfraKind::Other => 64500,
    }
}

/// The projects an infrastructure service serves.
pub fn projects_of<'a>(config: &'a DeploymentConfig, infra: &'a InfraConfig) -> Vec<&'a str> {
    match &infra.projects {
        Some(projects) => projects.iter().map(String::as_str).collect(),
        None => config.projects.keys().map(String::as_str).collect(),
    }
}

/// Every instance the configuration asks for, sorted by name and project-environment, on the
/// ports `state` records for them. An instance not recorded yet gets the port its hash gives,
/// probing upwards past every port that is taken: another instance's, the agents', the load
/// balancer's and the services'. A recorded port is kept while it lies in the instance's
/// range (or just past it, where probing led), so `base_port` can still move it.
pub fn instances(config: &DeploymentConfig, state: &State) -> Vec<Instance> {
    let mut taken: Vec<u16> = vec![config.agent_port, config.load_balancer_port()];
    taken.extend(
        state.projects.values().flat_map(|services| services.values()).filter_map(|s| s.port),
    );
    let mut all = Vec::new();
    for (name, infra) in &config.infrastructure {
        let base = infra.base_port.unwrap_or_else(|| default_base_port(infra.kind));
        for project in projects_of(config, infra) {
            for environment in config.environments_of(project) {
                let project_env = project_env(project, environment);
                let recorded = state.infrastructure.get(&format!("{name} {project_env}"));
                // Probing may have carried it past its range; twice the range still counts.
                let reach = base.saturating_add(RANGE.saturating_mul(2));
                let port = recorded.copied().filter(|port| (base..reach).contains(port));
                all.push((
                    port,
                    Instance {
                        name: name.clone(),
                        kind: infra.kind,
                        project: project.to_string(),
                        environment: environment.clone(),
                        project_env,
                        port: port.unwrap_or(base),
                    },
                ));
            }
        }
    }
    // Recorded ports first, so a new instance never displaces one.
    for (recorded, instance) in &mut all {
        if let Some(port) = *recorded {
            if taken.contains(&port) {
                *recorded = None;
            } else {
                taken.push(port);
                instance.port = port;
            }
        }
    }
    for (recorded, instance) in &mut all {
        if recorded.is_none() {
            let base = instance.port;
            let mut port = hash_port(
                &instance.project,
                &format!("{}:{}", instance.environment, instance.name),
                base,
                RANGE,
            );
            while taken.contains(&port) {
                port = port.checked_add(1).unwrap_or(base);
            }
            taken.push(port);
            instance.port = port;
        }
    }
    all.into_iter().map(|(_, instance)| instance).collect()
}

/// What `state` records of the instances that run: each one's port by `name project-env`,
/// from (name, project-environment, port).
pub fn running_ports<'a>(
    running: impl Iterator<Item = (&'a str, &'a str, u16)>,
) -> BTreeMap<String, u16> {
    running.map(|(name, project_env, port)| (format!("{name} {project_env}"), port)).collect()
}

/// The port `instance` runs on as `state` records it, else the one it is to start on.
pub fn wired_port(state: &State, instance: &Instance) -> u16 {
    let key = format!("{} {}", instance.name, instance.project_env);
    state.infrastructure.get(&key).copied().unwrap_or(instance.port)
}

/// The instances a project-environment's services connect to.
pub fn used_by<'a>(instances: &'a [Instance], project_env: &str) -> Vec<&'a Instance> {
    instances.iter().filter(|i| i.project_env == project_env).collect()
}

/// The environment-variable prefix of an infrastructure service: `redis` gives `REDIS`.
pub fn variable_prefix(name: &str) -> String {
    crate::names::env_prefix(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DeploymentConfig {
        serde_json::from_str(json).expect("valid")
    }

    #[test]
    fn each_project_environment_gets_its_own_stable_port() {
        let config = config(
            r#"{"provider": "local", "environments": ["prod", "uat"],
                "projects": {"a": {}, "b": {}},
                "infrastructure": {
                    "redis": {"kind": "cache", "projects": ["a"], "process": {"command": "redis-server"}},
                    "pg": {"kind": "database", "process": {"command": "postgres"}}}}"#,
        );
        let all = instances(&config, &State::default());
        let names: Vec<String> =
            all.iter().map(|i| format!("{} {}", i.name, i.project_env)).collect();
        assert_eq!(
            names,
            ["pg a-prod", "pg a-uat", "pg b-prod", "pg b-uat", "redis a-prod", "redis a-uat"]
        );
        for instance in &all {
            let base = default_base_port(instance.kind);
            assert!((base..base + RANGE + 4).contains(&instance.port), "{instance:?}");
        }
        let mut ports: Vec<u16> = all.iter().map(|i| i.port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), all.len(), "no two instances share a port");
        assert_eq!(instances(&config, &State::default()), all, "the same every time");

        // Another project leaves the existing ports alone.
        let more = self::config(
            r#"{"provider": "local", "environments": ["prod", "uat"],
                "projects": {"a": {}, "b": {}, "c": {}},
                "infrastructure": {
                    "redis": {"kind": "cache", "projects": ["a"], "process": {"command": "redis-server"}},
                    "pg": {"kind": "database", "process": {"command": "postgres"}}}}"#,
        );
        let redis_a = |all: &[Instance]| {
            all.iter().find(|i| i.name == "redis" && i.project_env == "a-prod").map(|i| i.port)
        };
        assert_eq!(redis_a(&instances(&more, &State::default())), redis_a(&all));
        assert_eq!(used_by(&all, "a-uat").len(), 2);

        // A recorded port stays, even where a newcomer's hash lands on it.
        let running = all.iter().map(|i| (i.name.as_str(), i.project_env.as_str(), i.port));
        let mut state = State { infrastructure: running_ports(running), ..State::default() };
        let first = all[0].clone();
        state
            .infrastructure
            .insert(format!("{} {}", first.name, first.project_env), first.port + 7);
        let kept = instances(&config, &state);
        assert_eq!(kept[0].port, first.port + 7);
        assert!(kept[1..].iter().all(|i| i.port != first.port + 7));
        assert_eq!(variable_prefix("search-engine"), "SEARCH_ENGINE");
    }

    #[test]
    fn no_instance_lands_on_the_agents_the_load_balancers_or_a_services_port() {
        let mut config = config(
            r#"{"provider": "local", "projects": {"a": {}},
                "infrastructure": {"redis": {"kind": "cache", "process": {"command": "redis-server"}}}}"#,
        );
        let mut state = State::default();
        let free = instances(&config, &state);
        // Bases that put the first instance exactly on a port that is taken.
        for taken in [config.agent_port, config.load_balancer_port(), 8123] {
            let offset = free[0].port - default_base_port(InfraKind::Cache);
            config.infrastructure.get_mut("redis").expect("there").base_port = Some(taken - offset);
            state.projects.insert(
                "a-prod".into(),
                BTreeMap::from([(
                    "api".to_string(),
                    crate::state::ServiceRecord {
                        port: Some(8123),
                        assigned_droplets: vec!["web1".into()],
                        kind: crate::ServiceKind::Web,
                    },
                )]),
            );
            let all = instances(&config, &state);
            assert!(all.iter().all(|i| i.port != taken), "{taken}: {all:?}");
        }
    }
}
