//! Handing the applied fleet to every droplet's agent: each keeps a replica of the state, and
//! master's agent reconfigures the load balancer from it.

use std::time::Duration;

use fleet::{DeploymentConfig, DropletStatus, State};
use tokio::task::JoinSet;

use super::Context;
use super::setup::TEMPLATE_NGINX;
use crate::agent::api::{FleetUpdate, FleetUpdateAnswer, LbReport, LbSettings};
use crate::control::{AgentClient, FleetKey};

/// What came of handing the fleet out.
#[derive(Debug, Default)]
pub struct Published {
    /// Droplets whose agent took the update.
    pub reached: Vec<String>,
    /// Droplets whose agent could not be reached or refused, with why.
    pub missed: Vec<(String, String)>,
    /// The load balancer's answer, if master was reached.
    pub load_balancer: Option<LbReport>,
}

/// Sends the fleet state and load-balancer settings to every running droplet at once.
pub async fn publish(
    context: &Context,
    deploy: &DeploymentConfig,
    state: &State,
    key: &FleetKey,
) -> anyhow::Result<Published> {
    let template_path = context.workspace.templates_dir().join("nginx.conf.j2");
    let template = match std::fs::read_to_string(&template_path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => TEMPLATE_NGINX.to_string(),
        Err(err) => anyhow::bail!("cannot read {}: {err}", template_path.display()),
    };
    let update = FleetUpdate {
        state: state.clone(),
        load_balancer: LbSettings { port: deploy.load_balancer_port(), template },
    };
    let client = AgentClient::new(key.clone(), "cli");
    let mut sends = JoinSet::new();
    for name in state.droplet_names() {
        let droplet = &state.droplets[name];
        if droplet.status != DropletStatus::Active {
            continue;
        }
        let (client, update, name) = (client.clone(), update.clone(), name.to_string());
        let base = format!("http://{}:{}", droplet.ip, droplet.agent_port);
        sends.spawn(async move {
            let answer = client
                .post::<_, FleetUpdateAnswer>(&base, "/v1/fleet", &update, Duration::from_secs(30))
                .await;
            (name, answer)
        });
    }
    let mut published = Published::default();
    while let Some(joined) = sends.join_next().await {
        let (name, answer) = joined.expect("publishing does not panic");
        match answer {
            Ok(answer) => {
                if answer.load_balancer.is_some() {
                    published.load_balancer = answer.load_balancer;
                }
                published.reached.push(name);
            }
            Err(err) => published.missed.push((name, err.to_string())),
        }
    }
    published.reached.sort();
    Ok(published)
}
