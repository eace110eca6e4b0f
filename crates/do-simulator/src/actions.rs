//! Droplet actions: starting them, and reading them back per Droplet or by id.
//!
//! An action is `in-progress` for the configured action latency, then `completed` (or
//! `errored` when a fault says so), and only then does its effect apply. As on the real
//! API, a Droplet runs one event at a time: while one is pending (including the `create`
//! of a new Droplet) further actions are refused with 422.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog;
use crate::droplets::{HOSTNAME_RULE, parse_id, valid_hostname};
use crate::errors::{ApiError, ApiResult, parse_body};
use crate::inspect::DropletStatus;
use crate::pagination::{Page, list_body};
use crate::server::Shared;
use crate::state::{Action, Droplet, Effect, api_time};

/// The action object as the API shows it.
pub(crate) fn action_json(action: &Action) -> Value {
    json!({
        "id": action.id,
        "status": action.status.as_str(),
        "type": action.kind,
        "started_at": api_time(action.started_at),
        "completed_at": action.completed_at.map(api_time),
        "resource_id": action.droplet_id,
        "resource_type": "droplet",
        "region": catalog::region(action.region).map(catalog::region_json),
        "region_slug": action.region,
    })
}

/// The fields an action request may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActionRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    size: Option<String>,
    disk: Option<bool>,
    name: Option<String>,
}

/// Documented action types the simulator does not model.
const UNMODELLED: &[&str] = &["restore", "password_reset", "rebuild", "change_kernel"];

/// Checks an action against the Droplet's state and works out its effect.
fn plan(droplet: &Droplet, request: &ActionRequest, kind: &str) -> ApiResult<Effect> {
    let off = droplet.status == DropletStatus::Off;
    match kind {
        "power_off" | "shutdown" if off => {
            Err(ApiError::unprocessable("The droplet is already off."))
        }
        "power_off" | "shutdown" => Ok(Effect::PowerOff),
        "power_on" | "power_cycle" | "reboot" => Ok(Effect::PowerOn),
        "resize" => plan_resize(droplet, request),
        "snapshot" => {
            let name = match request.name.as_deref() {
                Some(name) if !name.trim().is_empty() => name.to_owned(),
                _ => format!("{}-{}", droplet.name, Timestamp::now().as_second()),
            };
            Ok(Effect::Snapshot { name })
        }
        "rename" => match request.name.as_deref() {
            Some(name) if valid_hostname(name) => Ok(Effect::Rename { name: name.to_owned() }),
            _ => Err(ApiError::unprocessable(HOSTNAME_RULE)),
        },
        "enable_ipv6" => Ok(Effect::EnableIpv6),
        "enable_backups" => Ok(Effect::Backups(true)),
        "disable_backups" => Ok(Effect::Backups(false)),
        other if UNMODELLED.contains(&other) => Err(ApiError::unprocessable(format!(
            "The {other} action is not supported by the simulator."
        ))),
        other => Err(ApiError::unprocessable(format!("{other} is not a valid action type."))),
    }
}

fn plan_resize(droplet: &Droplet, request: &ActionRequest) -> ApiResult<Effect> {
    let size = request.size.as_deref().and_then(catalog::size).ok_or_else(|| {
        ApiError::unprocessable("You specified an invalid size for Droplet resize.")
    })?;
    if droplet.status != DropletStatus::Off {
        return Err(ApiError::unprocessable(
            "Droplet is currently on. Please power it off to run this event.",
        ));
    }
    let region = catalog::region(droplet.region).ok_or_else(ApiError::not_found)?;
    if !catalog::offered_in(size, region) {
        return Err(ApiError::unprocessable("Size is not available in this region."));
    }
    let disk = request.disk.unwrap_or(false);
    if size.slug == droplet.size && (!disk || size.disk == droplet.disk) {
        return Err(ApiError::unprocessable("The droplet is already set to this size."));
    }
    // A disk can grow but never shrink, so a plan with a smaller disk is out of reach.
    if size.disk < droplet.disk {
        return Err(ApiError::unprocessable(format!(
            "The size {} has a smaller disk ({} GB) than the Droplet ({} GB).",
            size.slug, size.disk, droplet.disk
        )));
    }
    Ok(Effect::Resize { size: size.slug, disk })
}

/// `POST /v2/droplets/{id}/actions`.
pub(crate) async fn start(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = parse_id(&id)?;
    let mut store = shared.store();
    let droplet = store.droplets.get(&id).ok_or_else(ApiError::not_found)?;
    let request: ActionRequest = parse_body(&body)?;
    let kind = request
        .kind
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::unprocessable("An action type is required."))?;
    if droplet.pending_action.is_some() {
        return Err(ApiError::unprocessable("Droplet already has a pending event."));
    }
    let effect = plan(droplet, &request, &kind)?;
    let region = droplet.region;
    let (latency, errors) = {
        let mut faults = shared.faults();
        (faults.action_latency, faults.take_action_error(&kind))
    };
    let action_id = store.start_action(&kind, id, region, Instant::now(), latency, errors, effect);
    let action = store.actions.get(&action_id).ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, Json(json!({ "action": action_json(action) }))))
}

/// `GET /v2/droplets/{id}/actions`.
pub(crate) async fn list_for_droplet(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let store = shared.store();
    if !store.droplets.contains_key(&id) {
        return Err(ApiError::not_found());
    }
    let items = store.actions.values().filter(|a| a.droplet_id == id).map(action_json).collect();
    let path = format!("/v2/droplets/{id}/actions");
    let page = Page::from_query(&query);
    Ok(Json(list_body("actions", items, page, &shared.base_url, &path, &[])))
}

/// `GET /v2/droplets/{id}/actions/{action_id}`.
pub(crate) async fn get_for_droplet(
    State(shared): State<Arc<Shared>>,
    Path((id, action_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (id, action_id) = (parse_id(&id)?, parse_id(&action_id)?);
    let store = shared.store();
    let action = store
        .actions
        .get(&action_id)
        .filter(|a| a.droplet_id == id)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "action": action_json(action) })))
}

/// `GET /v2/actions`.
pub(crate) async fn list_all(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let items = shared.store().actions.values().map(action_json).collect();
    let page = Page::from_query(&query);
    Json(list_body("actions", items, page, &shared.base_url, "/v2/actions", &[]))
}

/// `GET /v2/actions/{id}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let store = shared.store();
    let action = store.actions.get(&id).ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "action": action_json(action) })))
}
