//! An HTTP client for DigitalOcean's API v2: bearer authentication, pagination, rate limits
//! and retries.
//!
//! Transient failures (a 429, a 5xx, a timeout, a dropped connection) are retried with
//! exponential back-off and jitter, but only where a retry cannot do something twice: a
//! request the API refused outright (429) is always safe to send again; one that may have
//! reached it (a 5xx or a timeout after sending) is retried only when it is idempotent. The
//! provider handles the rest, such as a create that failed ambiguously, by looking first.

use std::sync::Mutex;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::api::{ErrorBody, Links};
use crate::secret::Secret;

/// DigitalOcean's public endpoint; `DO_API_URL` points the client elsewhere.
pub const DEFAULT_API_URL: &str = "https://api.digitalocean.com";

/// Entries per page asked of list calls (the API's maximum).
const PER_PAGE: u32 = 200;

/// The API allows 250 requests in any minute. A burst of 50 plus 200 a minute keeps every
/// sliding minute at or under 250 however requests bunch up.
const BURST: u32 = 50;
const PER_MINUTE: u32 = 200;

/// Whether a request may be sent again after it might have reached the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotence {
    /// Sending it twice does no harm (GET, PUT, DELETE).
    Idempotent,
    /// Sending it twice could do the thing twice (most POSTs): retried only when refused.
    Once,
}

/// A call to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum DoError {
    #[error("DigitalOcean rejected the API token ({message}); check DO_TOKEN")]
    Unauthorized { message: String },
    #[error("DigitalOcean refused {method} {path}: {status} {id}: {message}")]
    Api { method: String, path: String, status: u16, id: String, message: String },
    #[error("DigitalOcean's rate limit stopped {method} {path}")]
    RateLimited { method: String, path: String, retry_after: Option<Duration> },
    #[error("DigitalOcean did not answer {method} {path}: {reason}")]
    Transport { method: String, path: String, reason: String, maybe_sent: bool },
    #[error("DigitalOcean's answer to {method} {path} cannot be read: {reason}")]
    BadAnswer { method: String, path: String, reason: String },
}

impl DoError {
    /// Whether the API did nothing with the request, so it can be sent again as it is.
    pub fn nothing_done(&self) -> bool {
        matches!(self, DoError::RateLimited { .. } | DoError::Transport { maybe_sent: false, .. })
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            DoError::RateLimited { .. } | DoError::Transport { .. } => true,
            DoError::Api { status, .. } => *status >= 500,
            DoError::Unauthorized { .. } | DoError::BadAnswer { .. } => false,
        }
    }

    /// Whether the API said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DoError::Api { status: 404, .. })
    }
}

/// What the rate-limit headers last said.
#[derive(Debug, Default, Clone, Copy)]
struct RateState {
    remaining: Option<u64>,
    reset_at: Option<i64>,
}

/// The client.
pub struct DoClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
    rate: Mutex<RateState>,
    pace: governor::DefaultDirectRateLimiter,
}

impl DoClient {
    /// A client for the API at `base` (`https://api.digitalocean.com`) with `token`.
    pub fn new(base: &str, token: Secret) -> DoClient {
        let quota = governor::Quota::per_minute(PER_MINUTE.try_into().expect("not zero"))
            .allow_burst(BURST.try_into().expect("not zero"));
        DoClient {
            http: crate::http::client(),
            base: base.trim_end_matches('/').to_string(),
            token,
            rate: Mutex::default(),
            pace: governor::RateLimiter::direct(quota),
        }
    }

    /// GETs one resource and takes the field `key` of the answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, key: &str) -> Result<T, DoError> {
        let value: serde_json::Value =
            self.call(Method::GET, path, None::<&()>, Idempotence::Idempotent).await?;
        take(&value, key, "GET", path)
    }

    /// GETs every page of a list and gathers the items under `key`.
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>, DoError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{separator}per_page={PER_PAGE}"));
        let mut items = Vec::new();
        while let Some(page) = next.take() {
            let value: serde_json::Value =
                self.call(Method::GET, &page, None::<&()>, Idempotence::Idempotent).await?;
            let batch: Vec<T> = take(&value, key, "GET", &page)?;
            items.extend(batch);
            let links: Links =
                serde_json::from_value(value.get("links").cloned().unwrap_or_default())
                    .unwrap_or_default();
            next = links.pages.next.and_then(|url| relative(&url));
        }
        Ok(items)
    }

    /// POSTs `body` and takes the field `key` of the answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        key: &str,
        idempotence: Idempotence,
    ) -> Result<T, DoError> {
        let value: serde_json::Value =
            self.call(Method::POST, path, Some(body), idempotence).await?;
        take(&value, key, "POST", path)
    }

    /// POSTs `body` where the API answers with no content.
    pub async fn post_empty<B: Serialize>(&self, path: &str, body: &B) -> Result<(), DoError> {
        self.call::<_, serde_json::Value>(Method::POST, path, Some(body), Idempotence::Idempotent)
            .await
            .map(drop)
    }

    /// PUTs `body` (a whole replacement, so idempotent) and takes the field `key` of the answer.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        key: &str,
    ) -> Result<T, DoError> {
        let value: serde_json::Value =
            self.call(Method::PUT, path, Some(body), Idempotence::Idempotent).await?;
        take(&value, key, "PUT", path)
    }

    /// DELETEs a resource; one already gone counts as deleted.
    pub async fn delete(&self, path: &str) -> Result<(), DoError> {
        match self
            .call::<_, serde_json::Value>(
                Method::DELETE,
                path,
                None::<&()>,
                Idempotence::Idempotent,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.is_not_found() => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotence: Idempotence,
    ) -> Result<T, DoError> {
        let body = body.map(|b| serde_json::to_vec(b).expect("request bodies always serialise"));
        let attempt = || self.attempt(method.clone(), path.to_string(), body.clone());
        let text = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_jitter()
                    .with_min_delay(Duration::from_millis(250))
                    .with_max_delay(Duration::from_secs(10))
                    .with_max_times(6),
            )
            .sleep(tokio::time::sleep)
            .when(|err: &DoError| match idempotence {
                Idempotence::Idempotent => err.is_transient(),
                Idempotence::Once => err.nothing_done(),
            })
            .adjust(|err: &DoError, delay| match err {
                DoError::RateLimited { retry_after: Some(wait), .. } => Some(*wait),
                _ => delay,
            })
            .notify(|err: &DoError, delay| {
                tracing::warn!("{err}; trying again in {:.1}s", delay.as_secs_f64())
            })
            .await?;
        let text = if text.is_empty() { "null".to_string() } else { text };
        serde_json::from_str(&text).map_err(|err| DoError::BadAnswer {
            method: method.to_string(),
            path: path.to_string(),
            reason: err.to_string(),
        })
    }

    /// One request, after waiting out a rate limit the last answer announced.
    async fn attempt(
        &self,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
    ) -> Result<String, DoError> {
        self.wait_for_rate_limit().await;
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|err| DoError::Transport {
            method: method.to_string(),
            path: path.clone(),
            maybe_sent: !err.is_connect(),
            // The message may hold the URL, never the token, which travels in a header.
            reason: err.without_url().to_string(),
        })?;
        self.note_rate_limit(response.headers());
        let status = response.status();
        let retry_after = self.retry_after();
        let text = response.text().await.map_err(|err| DoError::Transport {
            method: method.to_string(),
            path: path.clone(),
            reason: err.without_url().to_string(),
            maybe_sent: true,
        })?;
        if status.is_success() {
            return Ok(text);
        }
        let error: ErrorBody = serde_json::from_str(&text)
            .unwrap_or(ErrorBody { id: String::new(), message: text.clone() });
        Err(match status {
            StatusCode::UNAUTHORIZED => DoError::Unauthorized { message: error.message },
            StatusCode::TOO_MANY_REQUESTS => {
                DoError::RateLimited { method: method.to_string(), path, retry_after }
            }
            _ => DoError::Api {
                method: method.to_string(),
                path,
                status: status.as_u16(),
                id: error.id,
                message: error.message,
            },
        })
    }

    fn note_rate_limit(&self, headers: &reqwest::header::HeaderMap) {
        let number = |name: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok())
        };
        let mut rate = self.rate.lock().expect("the rate state is never poisoned");
        if let Some(remaining) = number("ratelimit-remaining") {
            rate.remaining = u64::try_from(remaining).ok();
        }
        if let Some(reset) = number("ratelimit-reset") {
            rate.reset_at = Some(reset);
        }
    }

    /// How long to wait for the rate limit, when the API says it frees up within a minute.
    ///
    /// `ratelimit-reset` is when the oldest request in the hourly window expires, which can be
    /// an hour away while the per-minute limit frees up in seconds; a far reset is therefore
    /// left to the exponential back-off.
    fn retry_after(&self) -> Option<Duration> {
        let rate = *self.rate.lock().expect("the rate state is never poisoned");
        let now = jiff::Timestamp::now().as_second();
        let seconds = rate.reset_at? - now;
        (0..=60).contains(&seconds).then(|| Duration::from_secs(seconds.max(1) as u64))
    }

    async fn wait_for_rate_limit(&self) {
        self.pace.until_ready().await;
        let rate = *self.rate.lock().expect("the rate state is never poisoned");
        if rate.remaining == Some(0) {
            let wait = self.retry_after().unwrap_or(Duration::from_secs(5));
            tracing::info!(?wait, "DigitalOcean's rate limit is used up; waiting for it to reset");
            tokio::time::sleep(wait).await;
        }
    }
}

/// The path and query of a `links.pages.next` URL: pages are always fetched from the
/// configured endpoint, so the token is never sent to a host a response names.
fn relative(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{}{query}", parsed.path()))
}

fn take<T: DeserializeOwned>(
    value: &serde_json::Value,
    key: &str,
    method: &str,
    path: &str,
) -> Result<T, DoError> {
    let field = value.get(key).cloned().unwrap_or(serde_json::Value::Null);
    serde_json::from_value(field).map_err(|err| DoError::BadAnswer {
        method: method.to_string(),
        path: path.to_string(),
        reason: format!("{key}: {err}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_followed_on_the_configured_endpoint_only() {
        assert_eq!(
            relative(
                "https://elsewhere.example/v2/droplets?page=2&per_page=200&tag_name=fleet%3Ax"
            )
            .as_deref(),
            Some("/v2/droplets?page=2&per_page=200&tag_name=fleet%3Ax")
        );
    }

    #[test]
    fn only_refused_requests_count_as_nothing_done() {
        let limited = DoError::RateLimited {
            method: "POST".into(),
            path: "/v2/droplets".into(),
            retry_after: None,
        };
        let server = DoError::Api {
            method: "POST".into(),
            path: "/".into(),
            status: 500,
            id: String::new(),
            message: String::new(),
        };
        assert!(limited.nothing_done());
        assert!(!server.nothing_done());
        assert!(server.is_transient());
    }
}
