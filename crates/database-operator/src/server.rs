//! HTTP endpoints for the kubelet and Prometheus: `/metrics`, `/healthz`, `/readyz`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    /// Set once the controller's cache of Databases has synced.
    pub ready: Arc<AtomicBool>,
    /// Set once this replica reconciles: at once without leader election, else once it
    /// holds the leader Lease.
    pub leading: Arc<AtomicBool>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Followers are Ready (standing by), the leader once its caches synced:
/// [`leader::Readiness`] says why.
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let readiness = leader::Readiness::of(
        state.leading.load(Ordering::Relaxed),
        state.ready.load(Ordering::Relaxed),
    );
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, readiness.message())
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    address: SocketAddr,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))?;
    tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(app: &Router, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap_or_default();
        let response = app
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn endpoints() {
        let metrics = Metrics::new(None)
            .map(Arc::new)
            .unwrap_or_else(|e| panic!("{e}"));
        let ready = Arc::new(AtomicBool::new(false));
        let leading = Arc::new(AtomicBool::new(false));
        let app = router(AppState {
            metrics,
            ready: ready.clone(),
            leading: leading.clone(),
        });
        assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
        // A follower stands by, Ready; a leader is Ready once its caches synced.
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("standing by"), "{body}");
        leading.store(true, Ordering::Relaxed);
        assert_eq!(
            get(&app, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ready.store(true, Ordering::Relaxed);
        assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
        let (status, body) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("database_operator_reconciliations_total"),
            "{body}"
        );
    }
}
