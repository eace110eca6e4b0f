//! The fleet's two cloud firewalls, made or rewritten from a [`FirewallPolicy`].

use serde_json::json;

use super::api;
use super::client::{DoClient, Idempotence};
use crate::provider::ProviderError;
use crate::provider::firewall::FirewallPolicy;

/// Makes `{fleet}-fleet` (every droplet) and `{fleet}-master` say what `policy` says, creating
/// them where missing; returns a sentence saying what they allow.
pub async fn apply(
    client: &DoClient,
    fleet: &str,
    fleet_tag: &str,
    policy: &FirewallPolicy,
) -> Result<String, ProviderError> {
    let existing: Vec<api::Firewall> = client.list("/v2/firewalls", "firewalls").await?;
    let fleet_tag = fleet_tag.to_string();
    let everywhere = json!({"addresses": ["0.0.0.0/0", "::/0"]});
    let outbound = json!([
        {"protocol": "tcp", "ports": "all", "destinations": everywhere},
        {"protocol": "udp", "ports": "all", "destinations": everywhere},
        {"protocol": "icmp", "destinations": everywhere}
    ]);
    let mut fleet_rules = vec![
        json!({"protocol": "tcp", "ports": "22", "sources": {"addresses": policy.admin_sources}}),
    ];
    fleet_rules.push(json!({
        "protocol": "tcp",
        "ports": policy.agent_port.to_string(),
        "sources": {"addresses": policy.admin_sources, "tags": [fleet_tag]}
    }));
    for port in policy.fleet_ports.iter().filter(|p| **p != policy.agent_port) {
        fleet_rules.push(
            json!({"protocol": "tcp", "ports": port.to_string(), "sources": {"tags": [fleet_tag]}}),
        );
    }
    let master_rules: Vec<serde_json::Value> = policy
        .public_ports_on_master
        .iter()
        .map(|port| json!({"protocol": "tcp", "ports": port.to_string(), "sources": everywhere}))
        .collect();
    let wanted = [
        (format!("{}-fleet", fleet), fleet_rules, fleet_tag.clone()),
        (format!("{}-master", fleet), master_rules, format!("{fleet_tag}:master")),
    ];
    for (name, inbound, tag) in wanted {
        let body = json!({"name": name, "inbound_rules": inbound, "outbound_rules": outbound, "tags": [tag]});
        match existing.iter().find(|f| f.name == name) {
            Some(firewall) => {
                let _: api::Firewall = client
                    .put(&format!("/v2/firewalls/{}", firewall.id), &body, "firewall")
                    .await?;
            }
            None => {
                let _: api::Firewall =
                    client.post("/v2/firewalls", &body, "firewall", Idempotence::Once).await?;
            }
        }
    }
    let public: Vec<String> = policy.public_ports_on_master.iter().map(u16::to_string).collect();
    let admins = if policy.admin_sources.is_empty() {
        "nobody".to_string()
    } else {
        policy.admin_sources.join(", ")
    };
    Ok(format!(
        "firewalls {fleet}-fleet and {fleet}-master: SSH from {admins}; ports {} open on master; \
         agent and service ports between fleet droplets",
        public.join(", ")
    ))
}
