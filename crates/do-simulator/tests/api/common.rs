//! A small JSON client for the simulator.

use std::time::{Duration, Instant};

use do_simulator::{SimConfig, SimHandle, Simulator};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// One answer: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A simulator and a client authenticated against it.
pub struct Api {
    pub sim: SimHandle,
    client: reqwest::Client,
}

pub fn start(config: SimConfig) -> Api {
    // reqwest is built without a default TLS provider; plain http still wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client with default settings builds");
    Api { sim: Simulator::start(config), client }
}

/// A simulator with rate limits out of the way.
pub fn start_default() -> Api {
    start(SimConfig::new("test-token").with_rate_limit(do_simulator::RateLimitConfig::UNLIMITED))
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.sim.base_url())
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the simulator answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the body is readable");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("every body is JSON")
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, Some(self.sim.token())).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body), Some(self.sim.token())).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body), Some(self.sim.token())).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, Some(self.sim.token())).await
    }

    /// Creates a Droplet and returns the `droplet` object of the 202 answer.
    pub async fn create_droplet(&self, name: &str, extra: Value) -> Value {
        let mut body = json!({
            "name": name,
            "region": "nyc3",
            "size": "s-1vcpu-1gb",
            "image": "ubuntu-24-04-x64",
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let reply = self.post("/v2/droplets", body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
        reply.body["droplet"].clone()
    }

    /// Starts an action and returns the `action` object of the 201 answer.
    pub async fn act(&self, droplet_id: u64, body: Value) -> Value {
        let reply = self.post(&format!("/v2/droplets/{droplet_id}/actions"), body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["action"].clone()
    }

    /// Polls an action until it is no longer in progress (at most 5 s).
    pub async fn settle(&self, action_id: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let reply = self.get(&format!("/v2/actions/{action_id}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            if reply.body["action"]["status"] != "in-progress" {
                return reply.body["action"].clone();
            }
            assert!(Instant::now() < deadline, "action {action_id} never settled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn droplet(&self, id: u64) -> Value {
        let reply = self.get(&format!("/v2/droplets/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["droplet"].clone()
    }
}

pub fn id_of(value: &Value) -> u64 {
    value["id"].as_u64().expect("an integer id")
}

/// Asserts a documented error body.
pub fn assert_error(reply: &Reply, status: StatusCode, id: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.body["id"], id, "{:?}", reply.body);
    assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(reply.body["request_id"].as_str().is_some_and(|r| !r.is_empty()));
}
