//! Handing the applied fleet to every droplet's agent: each keeps a replica of the state, and
//! master's agent reconfigures the load balancer from it.

use std::time::Duration;

use fleet::{DeploymentConfig, DropletStatus, State};
use tokio::task::JoinSet;

use super::Context;
use super::setup::TEMPLATE_NGINX;
use crate::agent::api::{FleetUpdate, FleetUpdateAnswer, LbReport, LbSettings};
use crate::control::{AgentClient, FleetKey};
use crate::environment::Environment;
use crate::notify::{self, NotifySettings};

/// What came of handing the fleet out.
#[derive(Debug, Default)]
pub struct Published {
    /// Droplets whose agent took the update.
    pub reached: Vec<String>,
    /// Droplets whose agent could not be reached or refused, with why.
    pub missed: Vec<(String, String)>,
    /// The load balancer's answer, if master was reached.
    pub load_balancer: Option<LbReport>,
    /// Where alerts go, or why a configured channel is off.
    pub notifications: Vec<String>,
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
    let env = Environment::load(&context.workspace.env_file())?;
    let names: Vec<String> = state.droplet_names().into_iter().map(str::to_string).collect();
    let (notify, off) = notify::settings(&context.workspace, &env, key, &names)?;
    let update = FleetUpdate {
        state: state.clone(),
        load_balancer: LbSettings { port: deploy.load_balancer_port(), template },
        notify: notify.clone(),
        releases: crate::release::Records::all(context.workspace.config_dir())?
            .into_iter()
            .filter_map(|(project_env, releases)| {
                releases.current().map(|r| (project_env, r.version.clone()))
            })
            .collect(),
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
    let mut published =
        Published { notifications: describe(notify.as_ref()), ..Published::default() };
    published.notifications.extend(off);
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

/// One line per channel that is on: who gets what.
pub fn describe(notify: Option<&NotifySettings>) -> Vec<String> {
    let Some(notify) = notify else { return Vec::new() };
    let mut lines = Vec::new();
    if let Some(email) = &notify.email {
        let mut line = format!("alerts by email to {}", email.to.join(", "));
        if email.security == crate::notify::Security::None {
            line.push_str(" (without TLS: the mail and the password travel in the clear)");
        }
        if let Some(heartbeat) = &notify.heartbeat {
            let seconds = heartbeat.interval_ms as f64 / 1000.0;
            let every = if seconds >= 60.0 {
                format!("{} min", seconds / 60.0)
            } else {
                format!("{seconds} s")
            };
            line.push_str(&format!(
                "; a heartbeat every {every} from {}",
                heartbeat.senders.join(", then ")
            ));
        }
        lines.push(line);
    }
    if let Some(sms) = &notify.sms {
        lines.push(format!("alerts by SMS to {}", sms.to.join(", ")));
    }
    lines
}
