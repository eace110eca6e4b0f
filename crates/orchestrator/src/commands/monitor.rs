//! `--monitor NAME`: what droplet NAME's agent sees of the peers it watches.
//!
//! Monitoring itself runs in every agent all the time (on a real droplet the agent is a
//! system service); this command shows it: each watched droplet, the last check and the
//! fleet's verdict, refreshed every second on a terminal until Ctrl-C, printed once otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::Context;
use crate::agent::AgentStatus;
use crate::output;

pub async fn run(context: &Context, name: &str) -> anyhow::Result<()> {
    let config = context.load_config()?;
    let provider = context.provider(&config.deploy, &config.env, None)?;
    let observed = provider.list().await?;
    let Some(droplet) = observed.iter().find(|d| d.name == name) else {
        let names: Vec<&str> = observed.iter().map(|d| d.name.as_str()).collect();
        bail!("there is no droplet {name} (the fleet has {})", names.join(", "));
    };
    let Some(ip) = &droplet.ip else { bail!("{name} has no address yet") };
    let url = format!("http://{ip}:{}/status", droplet.agent_port);
    let follow = !context.json && std::io::stdout().is_terminal();
    let http = crate::http::client();
    loop {
        let status: AgentStatus = http
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .with_context(|| format!("{name}'s agent does not answer at {url}"))?
            .json()
            .await
            .with_context(|| format!("{name}'s agent gave an answer that cannot be read"))?;
        if context.json {
            output::print_json(&status.monitoring);
            return Ok(());
        }
        if follow {
            // Clear the screen and go home, so the view updates in place.
            print!("\u{1b}[2J\u{1b}[H");
        }
        show(name, &status);
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn show(name: &str, status: &AgentStatus) {
    let view = &status.monitoring;
    if view.watches.is_empty() {
        crate::say!("{name} watches nobody (a one-droplet fleet, or no fleet state yet).");
    } else {
        crate::say!("What {name} sees (refused control requests: {}):", status.refused_requests);
        let rows = view
            .watches
            .iter()
            .map(|w| vec![w.target.clone(), w.last_check.clone(), w.verdict.clone()]);
        crate::say!("{}", output::table(["WATCHES", "LAST CHECK", "VERDICT"], rows));
    }
    if view.cut_off {
        crate::say!(
            "Every check of {name} fails: it is likely the one cut off, and holds back its suspicions."
        );
    }
    if !view.held_back.is_empty() {
        crate::say!(
            "Held back (too much of the fleet failed at once): {}",
            view.held_back.join(", ")
        );
    }
}
