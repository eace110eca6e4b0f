//! Time: creation and action latencies, and the one-event-at-a-time rule.

use std::time::Duration;

use do_simulator::{RateLimitConfig, SimConfig};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{assert_error, id_of, start};

#[tokio::test]
async fn droplets_stay_new_until_the_create_latency_passes() {
    let config = SimConfig::new("test-token")
        .with_rate_limit(RateLimitConfig::UNLIMITED)
        .with_create_latency(Duration::from_millis(300))
        .with_action_latency(Duration::from_millis(200));
    let api = start(config);
    let created = api.create_droplet("slow", json!({})).await;
    let id = id_of(&created);
    let early = api.droplet(id).await;
    assert_eq!(early["status"], "new");
    assert_eq!(early["networks"]["v4"], json!([]));
    let busy = api.post(&format!("/v2/droplets/{id}/actions"), json!({"type": "reboot"})).await;
    assert_error(&busy, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
    assert_eq!(busy.body["message"], "Droplet already has a pending event.");

    tokio::time::sleep(Duration::from_millis(350)).await;
    let ready = api.droplet(id).await;
    assert_eq!(ready["status"], "active");
    assert_eq!(ready["networks"]["v4"].as_array().map(Vec::len), Some(2));

    let action = api.act(id, json!({"type": "shutdown"})).await;
    assert_eq!(action["status"], "in-progress");
    assert!(action["completed_at"].is_null());
    assert_eq!(
        api.get(&format!("/v2/actions/{}", id_of(&action))).await.body["action"]["status"],
        "in-progress"
    );
    assert_eq!(api.droplet(id).await["status"], "active", "effects wait for completion");
    let done = api.settle(id_of(&action)).await;
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].is_string());
    assert_eq!(api.droplet(id).await["status"], "off");
}

#[tokio::test]
async fn latency_can_change_at_run_time() {
    let api = start(SimConfig::new("test-token").with_rate_limit(RateLimitConfig::UNLIMITED));
    api.sim.set_create_latency(Duration::from_secs(60));
    let id = id_of(&api.create_droplet("waiting", json!({})).await);
    assert_eq!(api.droplet(id).await["status"], "new");
    api.sim.set_create_latency(Duration::ZERO);
    let quick = id_of(&api.create_droplet("quick", json!({})).await);
    assert_eq!(api.droplet(quick).await["status"], "active");
    assert_eq!(api.droplet(id).await["status"], "new", "existing Droplets keep their schedule");
}

#[test]
fn works_without_an_async_runtime_and_stops_on_drop() {
    use std::io::{Read, Write};
    let sim = do_simulator::Simulator::start(SimConfig::new("sync-token"));
    let addr = sim.addr();
    let mut stream = std::net::TcpStream::connect(addr).expect("the simulator listens");
    stream
        .write_all(
            b"GET /v2/account HTTP/1.1\r\nHost: x\r\n\
              Authorization: Bearer sync-token\r\nConnection: close\r\n\r\n",
        )
        .expect("the request is sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("the answer is read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("ratelimit-remaining: 4999"), "{answer}");
    drop(sim);
    assert!(std::net::TcpStream::connect(addr).is_err(), "the port is closed after drop");
}
