//! `--services PROJECT ENVIRONMENT`: where a project-environment's services are, for
//! debugging: each service's port, the droplets it is placed on with the URL that reaches it
//! directly, the load-balancer route, and whether it answers its health check right now.

use std::time::Duration;

use anyhow::bail;
use fleet::ServiceKind;
use serde::Serialize;
use tokio::task::JoinSet;

use super::Context;
use crate::lb::HEALTH_PATH;
use crate::output;

#[derive(Debug, Serialize)]
struct Discovery {
    project_env: String,
    services: Vec<ServiceView>,
}

#[derive(Debug, Serialize)]
struct ServiceView {
    service: String,
    kind: String,
    port: Option<u16>,
    /// Through the load balancer; workers have none.
    route: Option<String>,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Serialize)]
struct Endpoint {
    droplet: String,
    /// The service on that droplet, bypassing the load balancer.
    url: Option<String>,
    /// `healthy`, `unhealthy (HTTP n)`, `not answering`, or `worker` for services without a port.
    health: String,
}

pub async fn run(context: &Context, project: &str, environment: &str) -> anyhow::Result<()> {
    let config = context.load_config()?;
    let state = context.store().load()?;
    let project_env = fleet::model::project_env(project, environment);
    let Some(services) = state.project_services(&project_env) else {
        let known: Vec<&String> = state.projects.keys().collect();
        bail!(
            "{project_env} has no services in {} (it has: {}); check the names, or run --orchestrate",
            context.store().path().display(),
            known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        );
    };
    let lb =
        state.master().map(|m| format!("http://{}:{}", m.ip, config.deploy.load_balancer_port()));

    let http = crate::http::client();
    let mut probes = JoinSet::new();
    for (service, record) in services {
        for droplet in &record.assigned_droplets {
            let url = match (record.port, state.droplet(droplet)) {
                (Some(port), Some(d)) if record.kind == ServiceKind::Web => {
                    Some(format!("http://{}:{port}/", d.ip))
                }
                _ => None,
            };
            let (http, service, droplet) = (http.clone(), service.clone(), droplet.clone());
            probes.spawn(async move {
                let health = match &url {
                    None => "worker".to_string(),
                    Some(url) => {
                        let probe = format!("{}{}", url.trim_end_matches('/'), HEALTH_PATH);
                        match crate::http::probe(&http, &probe, Duration::from_secs(2)).await {
                            Ok(()) => "healthy".to_string(),
                            Err(why) if why.starts_with("HTTP") => format!("unhealthy ({why})"),
                            Err(_) => "not answering".to_string(),
                        }
                    }
                };
                (service, Endpoint { droplet, url, health })
            });
        }
    }
    let mut endpoints: Vec<(String, Endpoint)> = Vec::new();
    while let Some(joined) = probes.join_next().await {
        endpoints.push(joined.expect("probes do not panic"));
    }

    let views: Vec<ServiceView> = services
        .iter()
        .map(|(service, record)| {
            let mut mine: Vec<Endpoint> = endpoints
                .extract_if(.., |(s, _)| s == service)
                .map(|(_, endpoint)| endpoint)
                .collect();
            mine.sort_by(|a, b| {
                fleet::model::droplet_order(&a.droplet)
                    .cmp(&fleet::model::droplet_order(&b.droplet))
            });
            ServiceView {
                service: service.clone(),
                kind: format!("{:?}", record.kind).to_lowercase(),
                port: record.port,
                route: lb
                    .as_ref()
                    .filter(|_| record.kind == ServiceKind::Web)
                    .map(|lb| format!("{lb}/{project}/{environment}/{service}/")),
                endpoints: mine,
            }
        })
        .collect();
    let discovery = Discovery { project_env, services: views };
    if context.json {
        output::print_json(&discovery);
        return Ok(());
    }
    let mut rows = Vec::new();
    for service in &discovery.services {
        for endpoint in &service.endpoints {
            rows.push(vec![
                service.service.clone(),
                service.port.map_or("-".to_string(), |p| p.to_string()),
                endpoint.droplet.clone(),
                endpoint.url.clone().unwrap_or_else(|| "-".into()),
                endpoint.health.clone(),
                service.route.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    crate::say!("Services of {}", discovery.project_env);
    crate::say!(
        "{}",
        output::table(["SERVICE", "PORT", "DROPLET", "DIRECT URL", "HEALTH", "ROUTE"], rows)
    );
    Ok(())
}
