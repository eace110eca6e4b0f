//! The error body every failing request gets.
//!
//! The API documents one shape for all 4xx and 5xx answers:
//! `{"id": "...", "message": "...", "request_id": "..."}`, where `id` names the status
//! (`not_found`, `unprocessable_entity`, ...). The fixed messages below are the ones the
//! real service sends, so that clients matching on them behave as they would in production.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ids;

/// An API error: a status, the short error id and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) id: &'static str,
    pub(crate) message: String,
}

/// What most handlers return.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> Self {
        Self { status, id, message: message.into() }
    }

    /// 401, for a missing or wrong bearer token.
    pub(crate) fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unable to authenticate you.")
    }

    /// 404, for an unknown resource or path.
    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The resource you were accessing could not be found.",
        )
    }

    /// 422, for a well-formed request the API refuses to carry out.
    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity", message)
    }

    /// 400, for a request the API cannot read or whose fields are malformed.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 429, once the rate limit is used up (or a fault says so).
    pub(crate) fn too_many_requests() -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", "API Rate limit exceeded.")
    }

    /// 405, for a known path with a method it does not serve.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "The method is not allowed for the requested URL.",
        )
    }

    /// A server-side failure with the given 5xx status, as injected by faults.
    pub(crate) fn server_side(status: StatusCode) -> Self {
        let (id, message) = match status.as_u16() {
            502 => ("bad_gateway", "Bad gateway, please try again later."),
            503 => ("service_unavailable", "The service is temporarily unavailable."),
            504 => ("gateway_timeout", "The server did not answer in time."),
            _ => ("server_error", "Unexpected server-side error"),
        };
        Self::new(status, id, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = ids::fresh_uuid();
        let body = json!({ "id": self.id, "message": self.message, "request_id": request_id });
        let mut response = (self.status, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
}

/// Parses a JSON request body, answering 400 as the API does when it cannot.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("The request body is empty; a JSON object is required."));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))
}
