//! Refuses control requests that are not signed with the fleet key.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Agent;
use crate::control::signing::{NONCE, SENDER, SIGNATURE, Signature, TIMESTAMP};

/// The largest control request body accepted (an artifact is the largest there is).
pub const MAX_BODY: usize = 256 * 1024 * 1024;

/// Checks the request's signature before the handler sees it.
pub async fn require_signature(
    State(agent): State<Arc<Agent>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(verifier) = &agent.verifier else {
        return (StatusCode::SERVICE_UNAVAILABLE, "this droplet has no fleet key").into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let header =
        |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let signature = match (header(TIMESTAMP), header(NONCE), header(SENDER), header(SIGNATURE)) {
        (Some(timestamp), Some(nonce), Some(sender), Some(signature)) => timestamp
            .parse()
            .ok()
            .map(|timestamp| Signature { timestamp, nonce, sender, signature }),
        _ => None,
    };
    let now = jiff::Timestamp::now().as_second();
    let path = parts.uri.path().to_string();
    if let Err(refusal) =
        verifier.verify(parts.method.as_str(), &path, &bytes, signature.as_ref(), now)
    {
        let sender = signature.as_ref().map_or("unknown", |s| s.sender.as_str());
        tracing::warn!(%path, sender, %refusal, "control request refused");
        return (StatusCode::UNAUTHORIZED, refusal.to_string()).into_response();
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    if let Some(signature) = signature {
        request.extensions_mut().insert(Sender(signature.sender));
    }
    next.run(request).await
}

/// Who sent a request whose signature checked out; the name is part of what is signed.
#[derive(Debug, Clone)]
pub struct Sender(pub String);
