//! What every API request goes through before and after its handler: authentication,
//! injected faults, rate limiting, the rate-limit headers and the request log.
//!
//! Order: auth (401), forced 429s, the rate limiter (429), added latency, forced 5xx
//! answers (without effect), the handler, and finally the "created but answered 500" fault
//! for Droplet creates. Admin paths under `/_sim` skip all of it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::ApiError;
use crate::inspect::LoggedRequest;
use crate::server::{Shared, lock};

/// The axum middleware.
pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let response = guarded(&shared, &method, &path, request, next).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "do-simulator");
    shared.record(LoggedRequest { method, path, query, status: response.status().as_u16() });
    response
}

/// Whether the request carries `Authorization: Bearer <token>`.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = value.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let given = parts.next().unwrap_or_default().trim();
    scheme.eq_ignore_ascii_case("bearer") && !given.is_empty() && given == token
}

async fn guarded(
    shared: &Shared,
    method: &str,
    path: &str,
    request: Request,
    next: Next,
) -> Response {
    let now = Instant::now();
    if !authorized(request.headers(), &shared.token) {
        let verdict = lock(&shared.limiter).peek(now);
        let mut response = ApiError::unauthorized().into_response();
        verdict.stamp(&mut response);
        return response;
    }
    if shared.faults().take_rate_limited(method, path) {
        let verdict = lock(&shared.limiter).peek(now);
        let mut response = ApiError::too_many_requests().into_response();
        verdict.stamp(&mut response);
        return response;
    }
    let key_list = method == "GET" && path == "/v2/account/keys";
    let verdict = lock(&shared.limiter).check(now, key_list);
    if !verdict.allowed {
        let mut response = ApiError::too_many_requests().into_response();
        verdict.stamp(&mut response);
        return response;
    }

    let delay = shared.faults().latency_for(method, path);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let failure = shared.faults().take_failure(method, path);
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = ApiError::server_side(status).into_response();
        verdict.stamp(&mut response);
        return response;
    }

    let creates_droplet = method == "POST" && path == "/v2/droplets";
    let mut response = next.run(request).await;
    if creates_droplet && response.status().is_success() && shared.faults().take_create_failure() {
        response = ApiError::server_side(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    }
    verdict.stamp(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).expect("ascii"));
        headers
    }

    #[test]
    fn only_the_bearer_token_is_accepted() {
        assert!(authorized(&with_auth("Bearer secret"), "secret"));
        assert!(authorized(&with_auth("bearer secret"), "secret"));
        assert!(!authorized(&with_auth("Bearer other"), "secret"));
        assert!(!authorized(&with_auth("Basic secret"), "secret"));
        assert!(!authorized(&with_auth("Bearer "), ""));
        assert!(!authorized(&HeaderMap::new(), "secret"));
    }
}
