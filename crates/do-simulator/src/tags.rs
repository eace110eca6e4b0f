//! Tags: create, list, show, delete, and (un)tagging Droplets.
//!
//! Tag names are "case stable": the capitalisation used at creation is canonical, URLs must
//! use it, and creating a tag that differs only in case returns the existing one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult, parse_body};
use crate::pagination::{Page, list_body};
use crate::server::Shared;
use crate::state::{Store, Tag};

/// Letters, digits, colons, dashes and underscores, at most 255 of them.
pub(crate) fn valid_tag_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_'))
}

fn tag_json(tag: &Tag, store: &Store, base_url: &str) -> Value {
    let droplets = store.droplets.values().filter(|d| d.tags.contains(&tag.name)).count();
    let mut droplet_stats = json!({ "count": droplets });
    let mut resources = json!({
        "count": droplets,
        "images": { "count": 0 },
        "volumes": { "count": 0 },
        "volume_snapshots": { "count": 0 },
        "databases": { "count": 0 },
    });
    let last = tag.last_tagged_droplet.filter(|id| store.droplets.contains_key(id));
    if let Some(id) = last.filter(|_| droplets > 0) {
        let uri = json!(format!("{base_url}/v2/droplets/{id}"));
        droplet_stats["last_tagged_uri"] = uri.clone();
        resources["last_tagged_uri"] = uri;
    }
    resources["droplets"] = droplet_stats;
    json!({ "name": tag.name, "resources": resources })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateRequest {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResourceRef {
    resource_id: Value,
    resource_type: String,
}

#[derive(Debug, Deserialize)]
struct ResourcesRequest {
    resources: Vec<ResourceRef>,
}

/// `GET /v2/tags`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let store = shared.store();
    let items = store.tags.iter().map(|t| tag_json(t, &store, &shared.base_url)).collect();
    let page = Page::from_query(&query);
    Json(list_body("tags", items, page, &shared.base_url, "/v2/tags", &[]))
}

/// `POST /v2/tags`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request: CreateRequest = parse_body(&body)?;
    let name = request.name.unwrap_or_default();
    if !valid_tag_name(&name) {
        return Err(ApiError::bad_request(
            "Tag names may contain letters, numbers, colons, dashes and underscores, \
             up to 255 characters.",
        ));
    }
    let mut store = shared.store();
    let canonical = store.ensure_tag(&name);
    let tag = store.tags.iter().find(|t| t.name == canonical).ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, Json(json!({ "tag": tag_json(tag, &store, &shared.base_url) }))))
}

/// `GET /v2/tags/{name}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = shared.store();
    let tag = store.tags.iter().find(|t| t.name == name).ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "tag": tag_json(tag, &store, &shared.base_url) })))
}

/// `DELETE /v2/tags/{name}`: also untags every resource.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let mut store = shared.store();
    let index = store.tags.iter().position(|t| t.name == name).ok_or_else(ApiError::not_found)?;
    store.tags.remove(index);
    for droplet in store.droplets.values_mut() {
        droplet.tags.retain(|t| *t != name);
    }
    for firewall in &mut store.firewalls {
        firewall.tags.retain(|t| *t != name);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Resolves the Droplet ids of a (un)tagging request; only Droplets are modelled.
fn droplet_ids(store: &Store, body: &[u8]) -> ApiResult<Vec<u64>> {
    let request: ResourcesRequest = parse_body(body)?;
    if request.resources.is_empty() {
        return Err(ApiError::bad_request("At least one resource is required."));
    }
    let mut ids = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        if resource.resource_type != "droplet" {
            return Err(ApiError::unprocessable(format!(
                "Tagging resources of type {} is not supported by the simulator.",
                resource.resource_type
            )));
        }
        let id = match &resource.resource_id {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        let id = id.filter(|id| store.droplets.contains_key(id)).ok_or_else(ApiError::not_found)?;
        ids.push(id);
    }
    Ok(ids)
}

/// `POST /v2/tags/{name}/resources`.
pub(crate) async fn tag_resources(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let mut store = shared.store();
    if !store.tags.iter().any(|t| t.name == name) {
        return Err(ApiError::not_found());
    }
    for id in droplet_ids(&store, &body)? {
        if let Some(droplet) = store.droplets.get_mut(&id)
            && !droplet.tags.contains(&name)
        {
            droplet.tags.push(name.clone());
        }
        store.note_tagged(&name, id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v2/tags/{name}/resources`.
pub(crate) async fn untag_resources(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let mut store = shared.store();
    if !store.tags.iter().any(|t| t.name == name) {
        return Err(ApiError::not_found());
    }
    for id in droplet_ids(&store, &body)? {
        if let Some(droplet) = store.droplets.get_mut(&id) {
            droplet.tags.retain(|t| *t != name);
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names() {
        assert!(valid_tag_name("env:prod"));
        assert!(valid_tag_name("web_1-A"));
        assert!(!valid_tag_name(""));
        assert!(!valid_tag_name("has space"));
        assert!(!valid_tag_name("dot.ted"));
        assert!(!valid_tag_name(&"t".repeat(256)));
    }
}
