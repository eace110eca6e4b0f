//! Cloud firewalls: create, list, show, replace and delete, with rule validation.
//!
//! Rules follow the documented model: `protocol` is `tcp`, `udp` or `icmp`; `ports` is a
//! single port, a range `"8000-9000"`, or `"0"` for all (`"all"` is accepted and shown as
//! `"0"`; ICMP rules always show `"0"`). Inbound rules name `sources`, outbound rules
//! `destinations`. Invalid input is answered 400, as the API documents for firewalls.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult, parse_body};
use crate::ids;
use crate::pagination::{Page, list_body};
use crate::server::Shared;
use crate::state::{Firewall, api_time};
use crate::tags::valid_tag_name;

/// Reads `null` as the type's default, since clients send either.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Where a rule's traffic comes from (inbound) or goes to (outbound).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTargets {
    /// IPv4/IPv6 addresses and CIDR blocks.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Droplet ids.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub droplet_ids: Vec<u64>,
    /// Load balancer ids.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_uids: Vec<String>,
    /// Kubernetes cluster ids.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_ids: Vec<String>,
    /// Tag names.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl RuleTargets {
    fn is_empty(&self) -> bool {
        self.addresses.is_empty()
            && self.droplet_ids.is_empty()
            && self.load_balancer_uids.is_empty()
            && self.kubernetes_ids.is_empty()
            && self.tags.is_empty()
    }
}

/// A rule admitting traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRule {
    /// `tcp`, `udp` or `icmp`.
    pub protocol: String,
    /// A port, a range, or `"0"` for all.
    #[serde(default, deserialize_with = "nullable")]
    pub ports: String,
    /// `allow` or `deny`; shown only when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Where the traffic may come from.
    #[serde(default, deserialize_with = "nullable")]
    pub sources: RuleTargets,
}

/// A rule letting traffic out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRule {
    /// `tcp`, `udp` or `icmp`.
    pub protocol: String,
    /// A port, a range, or `"0"` for all.
    #[serde(default, deserialize_with = "nullable")]
    pub ports: String,
    /// `allow` or `deny`; shown only when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Where the traffic may go.
    #[serde(default, deserialize_with = "nullable")]
    pub destinations: RuleTargets,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FirewallRequest {
    name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    inbound_rules: Vec<InboundRule>,
    #[serde(deserialize_with = "nullable")]
    outbound_rules: Vec<OutboundRule>,
    #[serde(deserialize_with = "nullable")]
    droplet_ids: Vec<u64>,
    #[serde(deserialize_with = "nullable")]
    tags: Vec<String>,
}

/// The documented name pattern: `^[a-zA-Z0-9][a-zA-Z0-9\.-]+$`.
fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && bytes.len() <= 255
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
}

/// Checks `ports` for `protocol` and returns the value to store.
fn normalise_ports(protocol: &str, ports: &str) -> Result<String, String> {
    match protocol {
        "icmp" => Ok("0".to_owned()),
        "tcp" | "udp" => {
            let ports = ports.trim();
            if ports == "0" || ports.eq_ignore_ascii_case("all") {
                return Ok("0".to_owned());
            }
            if ports.is_empty() {
                return Err(format!("ports is required for {protocol} rules"));
            }
            let (low, high) = ports.split_once('-').unwrap_or((ports, ports));
            let bad = || format!("ports \"{ports}\" is invalid: use a port, a range or \"0\"");
            let low: u16 = low.trim().parse().map_err(|_| bad())?;
            let high: u16 = high.trim().parse().map_err(|_| bad())?;
            if low == 0 || low > high {
                return Err(bad());
            }
            Ok(ports.to_owned())
        }
        other => Err(format!("protocol \"{other}\" is invalid: use tcp, udp or icmp")),
    }
}

/// An IPv4 or IPv6 address, optionally with a prefix length.
fn valid_address(text: &str) -> bool {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (text, None),
    };
    let Ok(ip) = ip.parse::<IpAddr>() else { return false };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

fn check_action(action: Option<&str>) -> Result<(), String> {
    match action {
        None | Some("allow" | "deny") => Ok(()),
        Some(other) => Err(format!("action \"{other}\" is invalid: use allow or deny")),
    }
}

fn check_targets(targets: &RuleTargets, field: &str) -> Result<(), String> {
    if targets.is_empty() {
        return Err(format!("every rule needs at least one entry in {field}"));
    }
    if let Some(bad) = targets.addresses.iter().find(|a| !valid_address(a)) {
        return Err(format!("address \"{bad}\" is not an IP address or CIDR block"));
    }
    if let Some(bad) = targets.tags.iter().find(|t| !valid_tag_name(t)) {
        return Err(format!("tag \"{bad}\" is not a valid tag name"));
    }
    Ok(())
}

/// Validates a create or update request and turns it into the stored parts.
fn validate(mut request: FirewallRequest) -> Result<FirewallRequest, String> {
    let name = request.name.as_deref().unwrap_or_default();
    if !valid_name(name) {
        return Err(format!(
            "name \"{name}\" is invalid: it must start with a letter or digit and contain \
             only letters, digits, dots and dashes"
        ));
    }
    if request.inbound_rules.is_empty() && request.outbound_rules.is_empty() {
        return Err("a firewall needs at least one inbound or outbound rule".to_owned());
    }
    for rule in &mut request.inbound_rules {
        rule.ports = normalise_ports(&rule.protocol, &rule.ports)?;
        check_action(rule.action.as_deref())?;
        check_targets(&rule.sources, "sources")?;
    }
    for rule in &mut request.outbound_rules {
        rule.ports = normalise_ports(&rule.protocol, &rule.ports)?;
        check_action(rule.action.as_deref())?;
        check_targets(&rule.destinations, "destinations")?;
    }
    if let Some(bad) = request.tags.iter().find(|t| !valid_tag_name(t)) {
        return Err(format!("tag \"{bad}\" is not a valid tag name"));
    }
    request.droplet_ids.dedup();
    Ok(request)
}

fn firewall_json(firewall: &Firewall) -> Value {
    json!({
        "id": firewall.id,
        "name": firewall.name,
        // Changes apply at once here, so there is never anything pending.
        "status": "succeeded",
        "inbound_rules": firewall.inbound,
        "outbound_rules": firewall.outbound,
        "created_at": api_time(firewall.created_at),
        "droplet_ids": firewall.droplet_ids,
        "tags": firewall.tags,
        "pending_changes": [],
    })
}

fn read(body: &[u8]) -> ApiResult<FirewallRequest> {
    validate(parse_body(body)?).map_err(ApiError::bad_request)
}

/// `GET /v2/firewalls`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let items = shared.store().firewalls.iter().map(firewall_json).collect();
    let page = Page::from_query(&query);
    Json(list_body("firewalls", items, page, &shared.base_url, "/v2/firewalls", &[]))
}

/// `POST /v2/firewalls`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = read(&body)?;
    let mut store = shared.store();
    let tags = request.tags.iter().map(|t| store.ensure_tag(t)).collect();
    let firewall = Firewall {
        id: ids::fresh_uuid(),
        name: request.name.unwrap_or_default(),
        created_at: Timestamp::now(),
        droplet_ids: request.droplet_ids,
        tags,
        inbound: request.inbound_rules,
        outbound: request.outbound_rules,
    };
    let shown = firewall_json(&firewall);
    store.firewalls.push(firewall);
    Ok((StatusCode::ACCEPTED, Json(json!({ "firewall": shown }))))
}

/// `GET /v2/firewalls/{id}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = shared.store();
    let firewall = store.firewalls.iter().find(|f| f.id == id).ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "firewall": firewall_json(firewall) })))
}

/// `PUT /v2/firewalls/{id}`: replaces the whole firewall; omitted fields become empty.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let mut store = shared.store();
    if !store.firewalls.iter().any(|f| f.id == id) {
        return Err(ApiError::not_found());
    }
    let request = read(&body)?;
    let tags: Vec<String> = request.tags.iter().map(|t| store.ensure_tag(t)).collect();
    let firewall =
        store.firewalls.iter_mut().find(|f| f.id == id).ok_or_else(ApiError::not_found)?;
    firewall.name = request.name.unwrap_or_default();
    firewall.droplet_ids = request.droplet_ids;
    firewall.tags = tags;
    firewall.inbound = request.inbound_rules;
    firewall.outbound = request.outbound_rules;
    Ok(Json(json!({ "firewall": firewall_json(firewall) })))
}

/// `DELETE /v2/firewalls/{id}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut store = shared.store();
    let index = store.firewalls.iter().position(|f| f.id == id).ok_or_else(ApiError::not_found)?;
    store.firewalls.remove(index);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_by_protocol() {
        assert_eq!(normalise_ports("tcp", "22"), Ok("22".to_owned()));
        assert_eq!(normalise_ports("udp", "8000-9000"), Ok("8000-9000".to_owned()));
        assert_eq!(normalise_ports("tcp", "all"), Ok("0".to_owned()));
        assert_eq!(normalise_ports("icmp", ""), Ok("0".to_owned()));
        assert!(normalise_ports("tcp", "").is_err());
        assert!(normalise_ports("tcp", "9000-8000").is_err());
        assert!(normalise_ports("tcp", "70000").is_err());
        assert!(normalise_ports("tcp", "http").is_err());
        assert!(normalise_ports("sctp", "22").is_err());
    }

    #[test]
    fn addresses_and_names() {
        assert!(valid_address("0.0.0.0/0"));
        assert!(valid_address("::/0"));
        assert!(valid_address("203.0.113.7"));
        assert!(!valid_address("10.0.0.0/33"));
        assert!(!valid_address("example.com"));
        assert!(valid_name("web-fw.1"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("w"));
        assert!(!valid_name("web_fw"));
    }
}
