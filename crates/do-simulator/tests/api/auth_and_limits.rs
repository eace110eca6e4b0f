//! Authentication, rate limiting and its headers.

use do_simulator::{RateLimitConfig, RequestMatcher, SimConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{assert_error, start, start_default};

#[tokio::test]
async fn refuses_missing_or_wrong_tokens_with_the_documented_body() {
    let api = start_default();
    for token in [None, Some("wrong-token")] {
        let reply = api.send(Method::GET, "/v2/account", None, token).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(reply.body["message"], "Unable to authenticate you.");
        assert!(reply.header("ratelimit-limit").is_some());
    }
    let reply = api.get("/v2/account").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["account"]["status"], "active");
}

#[tokio::test]
async fn the_request_log_never_holds_the_token() {
    let api = start_default();
    api.get("/v2/account").await;
    api.send(Method::GET, "/v2/regions", None, Some("leaked-secret")).await;
    let log = api.sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("GET", "/v2/account", 200)
    );
    assert_eq!(log[1].status, 401);
    let dump = serde_json::to_string(&log).expect("the log serialises");
    assert!(!dump.contains("test-token") && !dump.contains("leaked-secret"), "{dump}");
}

#[tokio::test]
async fn burst_limit_answers_429_with_headers() {
    let limits = RateLimitConfig { per_hour: 100, per_minute: 3, key_list_per_minute: None };
    let api = start(SimConfig::new("test-token").with_rate_limit(limits));
    for remaining in ["99", "98", "97"] {
        let reply = api.get("/v2/sizes").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("ratelimit-limit"), Some("100"));
        assert_eq!(reply.header("ratelimit-remaining"), Some(remaining));
    }
    let reply = api.get("/v2/sizes").await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert_eq!(reply.header("ratelimit-limit"), Some("100"));
    assert_eq!(reply.header("ratelimit-remaining"), Some("97"));
    let reset: u64 =
        reply.header("ratelimit-reset").and_then(|r| r.parse().ok()).expect("a number");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(reset > now && reset <= now + 3_601, "reset {reset} vs now {now}");
}

#[tokio::test]
async fn hourly_limit_reaches_zero_remaining() {
    let limits = RateLimitConfig { per_hour: 2, per_minute: 250, key_list_per_minute: None };
    let api = start(SimConfig::new("test-token").with_rate_limit(limits));
    api.get("/v2/regions").await;
    let last = api.get("/v2/regions").await;
    assert_eq!(last.header("ratelimit-remaining"), Some("0"));
    let refused = api.get("/v2/regions").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    api.sim.reset_faults();
    assert_eq!(api.get("/v2/regions").await.status, StatusCode::OK);
}

#[tokio::test]
async fn key_listing_has_the_documented_separate_limit() {
    let api = start(SimConfig::new("test-token"));
    for _ in 0..10 {
        assert_eq!(api.get("/v2/account/keys").await.status, StatusCode::OK);
    }
    assert_eq!(api.get("/v2/account/keys").await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.get("/v2/account").await.status, StatusCode::OK);
}

#[tokio::test]
async fn forced_429_can_target_one_route() {
    let api = start_default();
    api.sim.rate_limit_next(1, RequestMatcher::route("POST", "/v2/droplets"));
    assert_eq!(api.get("/v2/droplets").await.status, StatusCode::OK);
    let body =
        json!({"name": "a", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "debian-12-x64"});
    let refused = api.post("/v2/droplets", body.clone()).await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert!(refused.header("ratelimit-remaining").is_some());
    assert!(api.sim.droplets().is_empty(), "a refused create has no effect");
    assert_eq!(api.post("/v2/droplets", body).await.status, StatusCode::ACCEPTED);
}
