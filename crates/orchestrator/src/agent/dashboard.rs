//! The fleet dashboard: one server-rendered HTML page, readable without JavaScript, that
//! refreshes itself.

use serde::Serialize;

use super::api::LbStatus;
use fleet::State;

const TEMPLATE: &str = include_str!("../../assets/dashboard.html.j2");

#[derive(Serialize)]
struct Page {
    generated_at: String,
    lb: crate::agent::api::LbReport,
    droplets: Vec<DropletRow>,
    services: Vec<ServiceRow>,
    infrastructure: Vec<super::services::infra::InfraView>,
    events: Vec<super::events::Event>,
}

#[derive(Serialize)]
struct DropletRow {
    name: String,
    role: String,
    address: String,
    health: String,
    watches: Vec<String>,
    watched_by: Vec<String>,
}

#[derive(Serialize)]
struct ServiceRow {
    project_env: String,
    service: String,
    kind: String,
    port: Option<u16>,
    droplets: Vec<String>,
    route: Option<String>,
    targets: Vec<crate::agent::api::TargetStatus>,
    release: Option<String>,
}

/// Renders the dashboard from the load balancer's view and the fleet state.
pub fn render(
    status: &LbStatus,
    state: Option<&State>,
    releases: &std::collections::BTreeMap<String, String>,
    infrastructure: Vec<super::services::infra::InfraView>,
) -> String {
    let droplets = status
        .droplets
        .iter()
        .map(|d| DropletRow {
            name: d.name.clone(),
            role: d.role.clone(),
            address: d.address.clone(),
            health: d.health.clone(),
            watches: state
                .and_then(|s| s.droplet(&d.name))
                .map(|r| r.monitors.clone())
                .unwrap_or_default(),
            watched_by: state.map(|s| s.monitored_by(&d.name)).unwrap_or_default(),
        })
        .collect();
    let mut services = Vec::new();
    for (project_env, records) in state.map(|s| &s.projects).into_iter().flatten() {
        for (service, record) in records {
            let upstream = status.upstreams.iter().find(|u| {
                format!("{}-{}", u.project, u.environment) == *project_env && u.service == *service
            });
            services.push(ServiceRow {
                project_env: project_env.clone(),
                service: service.clone(),
                kind: format!("{:?}", record.kind).to_lowercase(),
                port: record.port,
                droplets: record.assigned_droplets.clone(),
                route: upstream.map(|u| u.route.clone()),
                targets: upstream.map(|u| u.targets.clone()).unwrap_or_default(),
                release: releases.get(project_env).cloned(),
            });
        }
    }
    let page = Page {
        generated_at: crate::clock::now_rfc3339(),
        lb: status.load_balancer.clone(),
        droplets,
        services,
        infrastructure,
        events: status.events.clone(),
    };
    let mut environment = minijinja::Environment::new();
    // The name's extension turns on HTML escaping of every value.
    environment.add_template("dashboard.html", TEMPLATE).expect("the dashboard template is valid");
    environment
        .get_template("dashboard.html")
        .and_then(|template| template.render(minijinja::value::Serde(&page)))
        .unwrap_or_else(|err| format!("<p>the dashboard could not be rendered: {err}</p>"))
}
