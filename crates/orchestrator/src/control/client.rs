//! Signed requests from the command line (or one agent) to an agent.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::FleetKey;
use super::signing::{self, NONCE, SENDER, SIGNATURE, TIMESTAMP};

/// A request to an agent failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot reach the agent at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the agent at {url} answered {status}: {body}")]
    Refused { url: String, status: u16, body: String },
    #[error("the agent at {url} gave an answer that cannot be read: {source}")]
    BadAnswer { url: String, source: reqwest::Error },
}

/// Sends signed requests to agents.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    key: FleetKey,
    sender: String,
}

impl AgentClient {
    /// A client that signs as `sender` (`cli`, or a droplet's name).
    pub fn new(key: FleetKey, sender: &str) -> AgentClient {
        AgentClient { http: crate::http::client(), key, sender: sender.to_string() }
    }

    /// A client for a droplet's agent, whose requests leave from the droplet's address.
    pub fn from_droplet(key: FleetKey, sender: &str, address: std::net::IpAddr) -> AgentClient {
        AgentClient {
            http: crate::http::client_from(Some(address)),
            key,
            sender: sender.to_string(),
        }
    }

    /// POSTs `body` as JSON to `path` on the agent at `base` (`http://address:port`).
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<R, ControlError> {
        let body = serde_json::to_vec(body).expect("request bodies always serialise");
        let (url, response) = self.send(base, path, body, "application/json", timeout).await?;
        response.json().await.map_err(|source| ControlError::BadAnswer { url, source })
    }

    /// POSTs raw bytes (an artifact) to `path`; the answer is ignored beyond its status.
    pub async fn post_bytes(
        &self,
        base: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), ControlError> {
        self.send(base, path, body, "application/octet-stream", timeout).await.map(|_| ())
    }

    async fn send(
        &self,
        base: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        timeout: Duration,
    ) -> Result<(String, reqwest::Response), ControlError> {
        let url = format!("{base}{path}");
        let signature = signing::sign(
            &self.key,
            "POST",
            path,
            &body,
            &self.sender,
            jiff::Timestamp::now().as_second(),
        );
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(TIMESTAMP, signature.timestamp.to_string())
            .header(NONCE, &signature.nonce)
            .header(SENDER, &signature.sender)
            .header(SIGNATURE, &signature.signature)
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|source| ControlError::Unreachable { url: url.clone(), source })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ControlError::Refused { url, status: status.as_u16(), body });
        }
        Ok((url, response))
    }
}
