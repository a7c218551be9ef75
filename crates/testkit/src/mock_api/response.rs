//! Responses as the API server shapes them.

use http::StatusCode;
use kube::client::Body;
use serde_json::{Value, json};

pub(super) fn json(code: u16, body: &Value) -> http::Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = http::Response::new(Body::from(bytes));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// A `Status` failure, which kube turns into `Error::Api` with this code and reason.
pub(super) fn status(code: u16, reason: &str, message: &str) -> http::Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    json(code, &body)
}

/// The reason the API server gives with `code`.
pub(super) fn reason(code: u16) -> &'static str {
    match code {
        404 => "NotFound",
        409 => "AlreadyExists",
        _ => "InternalError",
    }
}
