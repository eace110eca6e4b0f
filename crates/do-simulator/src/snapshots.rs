//! Droplet snapshots: `/v2/snapshots` (ids as strings, as documented there) and
//! `/v2/droplets/{id}/snapshots` (ids as integers, as documented there).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::droplets::parse_id;
use crate::errors::{ApiError, ApiResult};
use crate::pagination::{Page, list_body};
use crate::server::Shared;
use crate::state::{Snapshot, api_time};

/// The snapshot object of `/v2/snapshots`.
fn snapshot_json(snapshot: &Snapshot) -> Value {
    json!({
        "id": snapshot.id.to_string(),
        "name": snapshot.name,
        "created_at": api_time(snapshot.created_at),
        "regions": [snapshot.region],
        "resource_id": snapshot.droplet_id.to_string(),
        "resource_type": "droplet",
        "min_disk_size": snapshot.min_disk_size,
        "size_gigabytes": snapshot.size_gigabytes,
        "tags": [],
    })
}

/// The snapshot as an image: embedded in Droplets restored from it, and listed by
/// `/v2/droplets/{id}/snapshots`.
pub(crate) fn snapshot_image_json(snapshot: &Snapshot) -> Value {
    json!({
        "id": snapshot.id,
        "name": snapshot.name,
        "distribution": snapshot.distribution,
        "slug": null,
        "public": false,
        "regions": [snapshot.region],
        "created_at": api_time(snapshot.created_at),
        "type": "snapshot",
        "min_disk_size": snapshot.min_disk_size,
        "size_gigabytes": snapshot.size_gigabytes,
        "description": "",
        "tags": [],
        "status": "available",
        "error_message": "",
    })
}

/// `GET /v2/snapshots`, optionally `?resource_type=droplet|volume`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let kind = query.get("resource_type").map(String::as_str);
    // Only Droplet snapshots exist here, so a volume listing is always empty.
    let items = match kind {
        None | Some("droplet") => shared.store().snapshots.values().map(snapshot_json).collect(),
        Some(_) => Vec::new(),
    };
    let filters: Vec<(&str, &str)> = kind.map(|k| ("resource_type", k)).into_iter().collect();
    let page = Page::from_query(&query);
    Json(list_body("snapshots", items, page, &shared.base_url, "/v2/snapshots", &filters))
}

/// `GET /v2/snapshots/{id}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let store = shared.store();
    let snapshot = store.snapshots.get(&id).ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "snapshot": snapshot_json(snapshot) })))
}

/// `DELETE /v2/snapshots/{id}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let mut store = shared.store();
    let snapshot = store.snapshots.remove(&id).ok_or_else(ApiError::not_found)?;
    if let Some(droplet) = store.droplets.get_mut(&snapshot.droplet_id) {
        droplet.snapshot_ids.retain(|s| *s != id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/droplets/{id}/snapshots`.
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
    let items =
        store.snapshots.values().filter(|s| s.droplet_id == id).map(snapshot_image_json).collect();
    let path = format!("/v2/droplets/{id}/snapshots");
    let page = Page::from_query(&query);
    Ok(Json(list_body("snapshots", items, page, &shared.base_url, &path, &[])))
}
