//! The HTTP server of both operators: `/metrics` for Prometheus, `/healthz` for liveness,
//! `/readyz` for a follower standing by or a leader whose caches have synced
//! ([`Readiness`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::readiness::{Health, Readiness};

/// Renders the operator's metrics in the Prometheus text format at each scrape.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct Served {
    health: Arc<Health>,
    metrics: RenderMetrics,
}

pub fn router(health: Arc<Health>, metrics: RenderMetrics) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Served { health, metrics })
}

async fn metrics_text(State(served): State<Served>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        (served.metrics)(),
    )
}

async fn readyz(State(served): State<Served>) -> (StatusCode, &'static str) {
    let readiness: Readiness = served.health.readiness();
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, readiness.message())
}

/// Serves until `shutdown` resolves. Fails at once when the address cannot be bound.
pub async fn serve(
    address: SocketAddr,
    health: Arc<Health>,
    metrics: RenderMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))?;
    tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router(health, metrics))
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
    async fn followers_stand_by_ready_and_leaders_are_ready_once_synced() {
        let health = Arc::new(Health::default());
        let app = router(health.clone(), Arc::new(|| "op_leader 0\n".to_owned()));
        assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("standing by"), "{body}");
        health.set_leading();
        assert_eq!(
            get(&app, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_synced();
        assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
        assert_eq!(
            get(&app, "/metrics").await,
            (StatusCode::OK, "op_leader 0\n".to_owned())
        );
    }
}
