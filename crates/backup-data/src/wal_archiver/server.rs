//! `/status` (JSON) and `/metrics` (Prometheus) for the operator and for scraping.

use super::status::ArchiverStatus;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub type SharedStatus = Arc<Mutex<ArchiverStatus>>;

/// Serves until `cancel`; bind the listener first so the caller knows the address.
pub async fn serve(
    listener: TcpListener,
    status: SharedStatus,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/status", get(status_json))
        .route("/metrics", get(metrics))
        .with_state(status);
    axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

async fn status_json(State(status): State<SharedStatus>) -> impl IntoResponse {
    let body = serde_json::to_string(&*status.lock().expect("status lock")).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics(State(status): State<SharedStatus>) -> impl IntoResponse {
    let body = status.lock().expect("status lock").metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
