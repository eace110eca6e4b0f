//! The `/_sim/...` admin endpoints: the same controls as [`crate::SimHandle`], over HTTP,
//! for clients in other processes. They need no token, are not rate limited and are not
//! logged. Every request body is JSON; every change answers 204.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::RateLimitConfig;
use crate::errors::{ApiError, ApiResult, parse_body};
use crate::faults::RequestMatcher;
use crate::server::{Shared, lock};

/// `GET /_sim/state`: every Droplet, snapshot, key, firewall and tag.
pub(crate) async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "droplets": shared.droplets(),
        "snapshots": shared.snapshots(),
        "keys": shared.keys(),
        "firewalls": shared.firewalls(),
        "tags": shared.tags(),
    }))
}

/// `GET /_sim/requests`: the request log, oldest first.
pub(crate) async fn requests(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "requests": shared.requests() }))
}

/// `DELETE /_sim/requests`.
pub(crate) async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear_requests();
    StatusCode::NO_CONTENT
}

/// `POST /_sim/reset`: faults, latencies and rate-limit history; with `?all=true` also
/// every resource and the request log.
pub(crate) async fn reset(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> StatusCode {
    if query.get("all").is_some_and(|v| v == "true" || v == "1") {
        shared.reset_all();
    } else {
        shared.reset_faults();
    }
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct TimingRequest {
    create_latency_ms: Option<u64>,
    action_latency_ms: Option<u64>,
}

/// `PUT /_sim/timing` `{"create_latency_ms": N, "action_latency_ms": N}` (either optional).
pub(crate) async fn timing(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request: TimingRequest = parse_body(&body)?;
    let mut faults = shared.faults();
    if let Some(ms) = request.create_latency_ms {
        faults.create_latency = Duration::from_millis(ms);
    }
    if let Some(ms) = request.action_latency_ms {
        faults.action_latency = Duration::from_millis(ms);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct RateLimitRequest {
    per_hour: u32,
    per_minute: u32,
    #[serde(default)]
    key_list_per_minute: Option<u32>,
}

/// `PUT /_sim/rate_limit` `{"per_hour": N, "per_minute": N, "key_list_per_minute": N|null}`.
pub(crate) async fn rate_limit(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request: RateLimitRequest = parse_body(&body)?;
    lock(&shared.limiter).reconfigure(RateLimitConfig {
        per_hour: request.per_hour,
        per_minute: request.per_minute,
        key_list_per_minute: request.key_list_per_minute,
    });
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct LatencyRequest {
    #[serde(flatten)]
    matcher: RequestMatcher,
    delay_ms: u64,
}

/// `POST /_sim/faults/latency` `{"method"?, "path_prefix"?, "delay_ms": N}`.
pub(crate) async fn add_latency(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request: LatencyRequest = parse_body(&body)?;
    shared.faults().add_latency(request.matcher, Duration::from_millis(request.delay_ms));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct CountedRequest {
    #[serde(flatten)]
    matcher: RequestMatcher,
    count: u32,
    #[serde(default)]
    status: Option<u16>,
}

/// `POST /_sim/faults/rate_limited` `{"count": N, "method"?, "path_prefix"?}`.
pub(crate) async fn rate_limited(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request: CountedRequest = parse_body(&body)?;
    shared.faults().add_rate_limited(request.matcher, request.count);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_sim/faults/server_error` `{"count": N, "status"?: 500|503|..., "method"?,
/// "path_prefix"?}`: answers without carrying the request out.
pub(crate) async fn server_error(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request: CountedRequest = parse_body(&body)?;
    let status = request.status.unwrap_or(500);
    if !(500..=599).contains(&status) {
        return Err(ApiError::bad_request("status must be a 5xx code"));
    }
    shared.faults().add_failures(request.matcher, request.count, status);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct CreateErrorRequest {
    count: u32,
}

/// `POST /_sim/faults/create_error` `{"count": N}`: the next N successful Droplet creates
/// answer 500 although the Droplet exists.
pub(crate) async fn create_error(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request: CreateErrorRequest = parse_body(&body)?;
    shared.faults().add_create_failures(request.count);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct ActionErrorRequest {
    #[serde(rename = "type")]
    kind: String,
}

/// `POST /_sim/faults/action_error` `{"type": "resize"}`: the next action of that type
/// ends `errored`.
pub(crate) async fn action_error(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request: ActionErrorRequest = parse_body(&body)?;
    shared.faults().add_action_error(request.kind);
    Ok(StatusCode::NO_CONTENT)
}
