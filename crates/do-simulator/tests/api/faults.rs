//! Injected failures: the duplicate trap, 5xx without effect, added latency.

use std::time::{Duration, Instant};

use do_simulator::RequestMatcher;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{assert_error, start_default};

fn create_body(name: &str) -> serde_json::Value {
    json!({"name": name, "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-22-04-x64"})
}

#[tokio::test]
async fn a_500_after_create_still_creates_the_droplet() {
    let api = start_default();
    api.sim.fail_creates_after_commit(1);
    let failed = api.post("/v2/droplets", create_body("dup")).await;
    assert_error(&failed, StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    assert!(failed.header("ratelimit-remaining").is_some());
    let droplets = api.sim.droplets();
    assert_eq!(droplets.len(), 1, "the Droplet exists despite the 500");
    assert_eq!(droplets[0].name, "dup");
    let listed = api.get("/v2/droplets?name=dup").await;
    assert_eq!(listed.body["meta"]["total"], 1);

    // A naive retry now makes a second Droplet of the same name: the trap to avoid.
    assert_eq!(api.post("/v2/droplets", create_body("dup")).await.status, StatusCode::ACCEPTED);
    assert_eq!(api.sim.droplets().len(), 2);
}

#[tokio::test]
async fn the_create_fault_waits_for_a_create_that_succeeds() {
    let api = start_default();
    api.sim.fail_creates_after_commit(1);
    let mut invalid = create_body("x");
    invalid["size"] = json!("nope");
    let refused = api.post("/v2/droplets", invalid).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "validation still answers 422");
    assert_eq!(
        api.post("/v2/droplets", create_body("y")).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(api.sim.droplets().len(), 1);
}

#[tokio::test]
async fn forced_5xx_answers_have_no_effect() {
    let api = start_default();
    api.sim.fail_next(2, 503, RequestMatcher::path("/v2/droplets"));
    let first = api.post("/v2/droplets", create_body("a")).await;
    assert_error(&first, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    assert_eq!(api.get("/v2/account").await.status, StatusCode::OK, "other paths are unaffected");
    let second = api.get("/v2/droplets").await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(api.sim.droplets().is_empty());
    assert_eq!(api.post("/v2/droplets", create_body("a")).await.status, StatusCode::ACCEPTED);

    api.sim.fail_next(1, 500, RequestMatcher::any());
    assert_error(&api.get("/v2/sizes").await, StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    assert_eq!(api.get("/v2/sizes").await.status, StatusCode::OK);
}

#[tokio::test]
async fn latency_is_added_per_endpoint_and_reset_removes_it() {
    let api = start_default();
    api.sim.add_latency(RequestMatcher::route("GET", "/v2/regions"), Duration::from_millis(250));
    let started = Instant::now();
    assert_eq!(api.get("/v2/regions").await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(250));
    let started = Instant::now();
    api.get("/v2/sizes").await;
    assert!(started.elapsed() < Duration::from_millis(250));
    api.sim.reset_faults();
    let started = Instant::now();
    api.get("/v2/regions").await;
    assert!(started.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn a_create_can_end_errored() {
    let api = start_default();
    api.sim.fail_next_action("create");
    let reply = api.post("/v2/droplets", create_body("doomed")).await;
    let action_id = reply.body["links"]["actions"][0]["id"].as_u64().expect("an action id");
    assert_eq!(api.settle(action_id).await["status"], "errored");
    let id = reply.body["droplet"]["id"].as_u64().expect("a droplet id");
    assert_eq!(api.droplet(id).await["status"], "new", "a failed build never becomes active");
}
