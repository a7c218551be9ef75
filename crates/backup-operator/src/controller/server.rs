//! The HTTP endpoints: `/metrics` for Prometheus, `/healthz` for liveness, `/readyz` for a
//! follower standing by or a leader whose controllers' caches have synced.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use api::Backup;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;

use super::metrics::Metrics;

pub struct ServerState {
    pub metrics: Arc<Metrics>,
    /// Set once every controller's cache has its first full list.
    pub ready: AtomicBool,
    /// Set once this replica runs the controllers: at once without leader election, else
    /// once it holds the leader Lease.
    pub leading: AtomicBool,
    /// The Backups, for the per-Backup last-success series.
    pub backups: Store<DeserializeGuard<Backup>>,
}

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let backups = state.backups.state();
    // A Backup that did not decode has no readable last success.
    let body = state
        .metrics
        .render(backups.iter().filter_map(|b| b.0.as_ref().ok()));
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body)
}

/// Followers are Ready (standing by), the leader once its caches synced:
/// [`leader::Readiness`] says why.
async fn readyz(State(state): State<Arc<ServerState>>) -> (StatusCode, &'static str) {
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

/// Serves until `shutdown` completes.
pub async fn serve(
    address: SocketAddr,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_and_leaders_with_synced_caches_are_ready() {
        let (backups, _writer) = kube::runtime::reflector::store();
        let state = Arc::new(ServerState {
            metrics: Arc::new(Metrics::new()),
            ready: false.into(),
            leading: false.into(),
            backups,
        });
        let (status, body) = readyz(State(state.clone())).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("standing by"), "{body}");
        state.leading.store(true, Ordering::Relaxed);
        assert_eq!(
            readyz(State(state.clone())).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.ready.store(true, Ordering::Relaxed);
        assert_eq!(readyz(State(state)).await.0, StatusCode::OK);
    }
}
