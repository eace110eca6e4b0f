//! Droplets: create (one at a time), list with filters, show, destroy, destroy by tag.

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

use crate::catalog::{self, Region, Size};
use crate::errors::{ApiError, ApiResult, parse_body};
use crate::ids;
use crate::inspect::DropletStatus;
use crate::pagination::{Page, list_body};
use crate::server::Shared;
use crate::snapshots::snapshot_image_json;
use crate::state::{Droplet, Effect, PRIVATE_POOL, PUBLIC_POOL, Store, api_time};
use crate::tags::valid_tag_name;

/// The most `user_data` the API accepts.
const MAX_USER_DATA: usize = 64 * 1024;

/// Reads a numeric id from the path; anything else names no resource, hence 404.
pub(crate) fn parse_id(text: &str) -> ApiResult<u64> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// Letters, digits, dots and dashes, as hostnames allow.
pub(crate) fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

pub(crate) const HOSTNAME_RULE: &str =
    "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)";

/// The Droplet object as the API shows it.
pub(crate) fn droplet_json(droplet: &Droplet) -> Value {
    let size = catalog::size(droplet.size);
    let mut features = vec!["private_networking"];
    if droplet.backups {
        features.push("backups");
    }
    if droplet.ipv6 {
        features.push("ipv6");
    }
    if droplet.monitoring {
        features.push("monitoring");
    }
    // A Droplet being created has no networks yet, exactly like the real one.
    let v4 = if droplet.status == DropletStatus::New {
        json!([])
    } else {
        json!([
            {
                "ip_address": droplet.private_v4.to_string(),
                "netmask": "255.255.0.0",
                "gateway": format!("127.{PRIVATE_POOL}.0.1"),
                "type": "private",
            },
            {
                "ip_address": droplet.public_v4.to_string(),
                "netmask": "255.255.0.0",
                "gateway": format!("127.{PUBLIC_POOL}.0.1"),
                "type": "public",
            },
        ])
    };
    json!({
        "id": droplet.id,
        "name": droplet.name,
        "memory": size.map(|s| s.memory),
        "vcpus": size.map(|s| s.vcpus),
        "disk": droplet.disk,
        "locked": false,
        "status": droplet.status.as_str(),
        "kernel": null,
        "created_at": api_time(droplet.created_at),
        "features": features,
        "backup_ids": [],
        "next_backup_window": null,
        "snapshot_ids": droplet.snapshot_ids,
        "image": droplet.image,
        "volume_ids": [],
        "size": size.map(catalog::size_json),
        "size_slug": droplet.size,
        // IPv6 is reported as a feature but no v6 address is handed out: the only IPv6
        // loopback address is ::1, and this simulator only hands out loopback addresses.
        "networks": { "v4": v4, "v6": [] },
        "region": catalog::region(droplet.region).map(catalog::region_json),
        "tags": droplet.tags,
        "vpc_uuid": droplet.vpc_uuid,
    })
}

/// The fields of a create request the simulator looks at; others are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateRequest {
    name: Option<String>,
    names: Option<Vec<String>>,
    region: Option<String>,
    size: Option<String>,
    image: Option<Value>,
    ssh_keys: Option<Vec<Value>>,
    backups: Option<bool>,
    ipv6: Option<bool>,
    monitoring: Option<bool>,
    tags: Option<Vec<String>>,
    user_data: Option<String>,
    vpc_uuid: Option<String>,
}

fn invalid_region() -> ApiError {
    ApiError::unprocessable("You specified an invalid region for Droplet creation.")
}

fn invalid_image() -> ApiError {
    ApiError::unprocessable("You specified an invalid image for Droplet creation.")
}

fn pick_region(slug: Option<&str>) -> ApiResult<&'static Region> {
    let region = slug.and_then(catalog::region).ok_or_else(invalid_region)?;
    if region.available { Ok(region) } else { Err(invalid_region()) }
}

fn pick_size(slug: Option<&str>, region: &Region) -> ApiResult<&'static Size> {
    let size = slug.and_then(catalog::size).ok_or_else(|| {
        ApiError::unprocessable("You specified an invalid size for Droplet creation.")
    })?;
    if catalog::offered_in(size, region) {
        Ok(size)
    } else {
        Err(ApiError::unprocessable("Size is not available in this region."))
    }
}

/// Resolves `image` (a slug, or the numeric id of a public image or of a snapshot) to the
/// image object to embed and the smallest disk it needs.
fn pick_image(image: Option<&Value>, region: &Region, store: &Store) -> ApiResult<(Value, u32)> {
    let id = match image {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Some(Value::String(slug)) => {
            let image = catalog::image_by_slug(slug).ok_or_else(invalid_image)?;
            return Ok((catalog::image_json(image), image.min_disk_size));
        }
        _ => return Err(invalid_image()),
    };
    let id = id.ok_or_else(invalid_image)?;
    if let Some(snapshot) = store.snapshots.get(&id) {
        // A snapshot lives in one region; restoring it elsewhere needs a transfer first.
        if snapshot.region != region.slug {
            return Err(ApiError::unprocessable(format!(
                "The image is not available in the {} region.",
                region.slug
            )));
        }
        return Ok((snapshot_image_json(snapshot), snapshot.min_disk_size));
    }
    let image = catalog::image_by_id(id).ok_or_else(invalid_image)?;
    Ok((catalog::image_json(image), image.min_disk_size))
}

/// Resolves `ssh_keys` entries (ids or fingerprints) to key ids.
fn pick_keys(entries: &[Value], store: &Store) -> ApiResult<Vec<u64>> {
    let invalid =
        || ApiError::unprocessable("You specified an invalid SSH key for Droplet creation.");
    let mut ids = Vec::with_capacity(entries.len());
    for entry in entries {
        let found = match entry {
            Value::Number(n) => n.as_u64().filter(|id| store.keys.contains_key(id)),
            Value::String(s) => match s.parse::<u64>() {
                Ok(id) => Some(id).filter(|id| store.keys.contains_key(id)),
                Err(_) => store.keys.values().find(|k| k.fingerprint == *s).map(|k| k.id),
            },
            _ => None,
        };
        let id = found.ok_or_else(invalid)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// A stable per-region default VPC, as every account has one per region.
fn default_vpc(region: &str) -> String {
    let seed = region.bytes().fold(0x5EED_u64, |h, b| h.rotate_left(7) ^ u64::from(b));
    ids::uuid_from(seed)
}

/// `POST /v2/droplets`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request: CreateRequest = parse_body(&body)?;
    let Some(name) = request.name else {
        return Err(if request.names.is_some() {
            ApiError::unprocessable(
                "The simulator creates one Droplet per request; send `name`, not `names`.",
            )
        } else {
            ApiError::unprocessable("Name is required.")
        });
    };
    if !valid_hostname(&name) {
        return Err(ApiError::unprocessable(HOSTNAME_RULE));
    }
    let region = pick_region(request.region.as_deref())?;
    let size = pick_size(request.size.as_deref(), region)?;
    let tags = request.tags.unwrap_or_default();
    if let Some(bad) = tags.iter().find(|t| !valid_tag_name(t)) {
        return Err(ApiError::unprocessable(format!(
            "Tag \"{bad}\" is invalid: tags may contain letters, numbers, colons, dashes and \
             underscores, up to 255 characters."
        )));
    }
    if request.user_data.as_ref().is_some_and(|u| u.len() > MAX_USER_DATA) {
        return Err(ApiError::unprocessable("user_data must be at most 64 KiB."));
    }

    let mut store = shared.store();
    let (image, min_disk) = pick_image(request.image.as_ref(), region, &store)?;
    if size.disk < min_disk {
        return Err(ApiError::unprocessable(format!(
            "The size {} has a smaller disk than the image requires ({min_disk} GB).",
            size.slug
        )));
    }
    let ssh_key_ids = pick_keys(request.ssh_keys.as_deref().unwrap_or_default(), &store)?;
    let limit = usize::try_from(shared.config.droplet_limit).unwrap_or(usize::MAX);
    if store.droplets.len() >= limit {
        return Err(ApiError::unprocessable(
            "creating this/these droplet(s) will exceed your droplet limit",
        ));
    }
    let (public_v4, private_v4) = store
        .allocate_addresses()
        .ok_or_else(|| ApiError::unprocessable("The simulator has no addresses left."))?;
    let tags: Vec<String> = tags.iter().map(|t| store.ensure_tag(t)).collect();

    let id = store.take_droplet_id();
    let droplet = Droplet {
        id,
        name,
        region: region.slug,
        size: size.slug,
        disk: size.disk,
        image,
        status: DropletStatus::New,
        created_at: Timestamp::now(),
        tags: tags.clone(),
        ipv6: request.ipv6.unwrap_or(false),
        monitoring: request.monitoring.unwrap_or(false),
        backups: request.backups.unwrap_or(false),
        vpc_uuid: request.vpc_uuid.unwrap_or_else(|| default_vpc(region.slug)),
        public_v4,
        private_v4,
        ssh_key_ids,
        user_data: request.user_data,
        snapshot_ids: Vec::new(),
        pending_action: None,
    };
    let shown = droplet_json(&droplet);
    store.droplets.insert(id, droplet);
    for tag in &tags {
        store.note_tagged(tag, id);
    }
    let (latency, errors) = {
        let mut faults = shared.faults();
        (faults.create_latency, faults.take_action_error("create"))
    };
    let action_id = store.start_action(
        "create",
        id,
        region.slug,
        Instant::now(),
        latency,
        errors,
        Effect::Boot,
    );
    let base = &shared.base_url;
    let body = json!({
        "droplet": shown,
        "links": {
            "actions": [{
                "id": action_id,
                "rel": "create",
                "href": format!("{base}/v2/actions/{action_id}"),
            }],
        },
    });
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// `GET /v2/droplets`, optionally filtered by `tag_name` or `name`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let tag = query.get("tag_name").map(String::as_str);
    let name = query.get("name").map(String::as_str);
    let items: Vec<Value> = shared
        .store()
        .droplets
        .values()
        .filter(|d| tag.is_none_or(|t| d.tags.iter().any(|dt| dt == t)))
        .filter(|d| name.is_none_or(|n| d.name == n))
        .map(droplet_json)
        .collect();
    let mut filters = Vec::new();
    if let Some(tag) = tag {
        filters.push(("tag_name", tag));
    }
    if let Some(name) = name {
        filters.push(("name", name));
    }
    let page = Page::from_query(&query);
    Json(list_body("droplets", items, page, &shared.base_url, "/v2/droplets", &filters))
}

/// `GET /v2/droplets/{id}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let store = shared.store();
    let droplet = store.droplets.get(&id).ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "droplet": droplet_json(droplet) })))
}

/// `DELETE /v2/droplets/{id}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    if shared.store().remove_droplet(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// `DELETE /v2/droplets?tag_name=X`: destroys every Droplet with that tag.
pub(crate) async fn delete_by_tag(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let tag = query
        .get("tag_name")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("tag_name is required to delete Droplets by tag."))?;
    let mut store = shared.store();
    let doomed: Vec<u64> =
        store.droplets.values().filter(|d| d.tags.contains(tag)).map(|d| d.id).collect();
    for id in doomed {
        store.remove_droplet(id);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(valid_hostname("web-1.example.com"));
        assert!(!valid_hostname(""));
        assert!(!valid_hostname("web_1"));
        assert!(!valid_hostname("web 1"));
        assert!(!valid_hostname(&"a".repeat(256)));
    }
}
