//! The `/_sim` admin endpoints, for clients in another process.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::start_default;

#[tokio::test]
async fn admin_endpoints_drive_faults_and_show_state() {
    let api = start_default();
    let no_token = None;
    let fault = json!({"count": 1, "status": 503, "path_prefix": "/v2/account"});
    let set = api.send(Method::POST, "/_sim/faults/server_error", Some(fault), no_token).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/v2/account").await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.get("/v2/account").await.status, StatusCode::OK);

    let limited = json!({"count": 1, "method": "GET"});
    api.send(Method::POST, "/_sim/faults/rate_limited", Some(limited), no_token).await;
    assert_eq!(api.get("/v2/regions").await.status, StatusCode::TOO_MANY_REQUESTS);

    api.send(Method::POST, "/_sim/faults/create_error", Some(json!({"count": 1})), no_token).await;
    let body = json!({
        "name": "via-admin", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
    });
    assert_eq!(api.post("/v2/droplets", body).await.status, StatusCode::INTERNAL_SERVER_ERROR);

    let state = api.send(Method::GET, "/_sim/state", None, no_token).await;
    assert_eq!(state.body["droplets"][0]["name"], "via-admin");
    assert_eq!(state.body["droplets"][0]["status"], "active");

    let timing = json!({"create_latency_ms": 60_000});
    assert_eq!(
        api.send(Method::PUT, "/_sim/timing", Some(timing), no_token).await.status,
        StatusCode::NO_CONTENT
    );
    api.send(Method::POST, "/_sim/faults/action_error", Some(json!({"type": "reboot"})), no_token)
        .await;

    let log = api.send(Method::GET, "/_sim/requests", None, no_token).await;
    let paths: Vec<&str> = log.body["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    assert!(paths.iter().all(|p| p.starts_with("/v2/")), "admin calls are not logged: {paths:?}");

    let reset = api.send(Method::POST, "/_sim/reset?all=true", None, no_token).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    assert!(api.sim.droplets().is_empty());
    assert!(api.sim.requests().is_empty());
    let bad = api
        .send(
            Method::POST,
            "/_sim/faults/server_error",
            Some(json!({"count": 1, "status": 404})),
            no_token,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let api = start_default();
    let missing = api.get("/v2/nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["id"], "not_found");
    let wrong = api.send(Method::PATCH, "/v2/droplets", None, Some("test-token")).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.body["id"], "method_not_allowed");
}
