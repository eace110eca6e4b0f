//! The URL map: every API endpoint, the admin endpoints, and the JSON 404/405 answers.

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::errors::ApiError;
use crate::server::Shared;
use crate::{account, actions, admin, catalog, droplets, firewalls, gate, keys, snapshots, tags};

async fn not_found() -> Response {
    ApiError::not_found().into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::method_not_allowed().into_response()
}

/// Builds the application for one simulator.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v2/account", get(account::get_account))
        .route("/v2/regions", get(catalog::list_regions))
        .route("/v2/sizes", get(catalog::list_sizes))
        .route("/v2/account/keys", get(keys::list).post(keys::create))
        .route("/v2/account/keys/{key}", get(keys::get).put(keys::update).delete(keys::delete))
        .route(
            "/v2/droplets",
            get(droplets::list).post(droplets::create).delete(droplets::delete_by_tag),
        )
        .route("/v2/droplets/{id}", get(droplets::get).delete(droplets::delete))
        .route("/v2/droplets/{id}/actions", get(actions::list_for_droplet).post(actions::start))
        .route("/v2/droplets/{id}/actions/{action_id}", get(actions::get_for_droplet))
        .route("/v2/droplets/{id}/snapshots", get(snapshots::list_for_droplet))
        .route("/v2/actions", get(actions::list_all))
        .route("/v2/actions/{id}", get(actions::get))
        .route("/v2/snapshots", get(snapshots::list))
        .route("/v2/snapshots/{id}", get(snapshots::get).delete(snapshots::delete))
        .route("/v2/tags", get(tags::list).post(tags::create))
        .route("/v2/tags/{name}", get(tags::get).delete(tags::delete))
        .route("/v2/tags/{name}/resources", post(tags::tag_resources).delete(tags::untag_resources))
        .route("/v2/firewalls", get(firewalls::list).post(firewalls::create))
        .route(
            "/v2/firewalls/{id}",
            get(firewalls::get).put(firewalls::update).delete(firewalls::delete),
        );

    let admin = Router::new()
        .route("/_sim/state", get(admin::state))
        .route("/_sim/requests", get(admin::requests).delete(admin::clear_requests))
        .route("/_sim/reset", post(admin::reset))
        .route("/_sim/timing", put(admin::timing))
        .route("/_sim/rate_limit", put(admin::rate_limit))
        .route("/_sim/faults/latency", post(admin::add_latency))
        .route("/_sim/faults/rate_limited", post(admin::rate_limited))
        .route("/_sim/faults/server_error", post(admin::server_error))
        .route("/_sim/faults/create_error", post(admin::create_error))
        .route("/_sim/faults/action_error", post(admin::action_error));

    api.merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), gate::gate))
        .with_state(shared)
}
