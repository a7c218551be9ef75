//! The database-operator binary: flags, logging, and the controller next to its HTTP server.
//! With leader election, the server runs from the start and the controller once this replica
//! holds the leader Lease.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use api::{Backup, Database, Restore};
use clap::{Parser, ValueEnum};
use database_operator::backoff::Backoff;
use database_operator::metrics::Metrics;
use database_operator::reconcile::Context;
use database_operator::server::{self, AppState};
use database_operator::{MANAGER, controller};
use kube::Client;
use kube::api::ApiResource;
use kube::runtime::events::{Recorder, Reporter};
use leader::{Election, LeaderArgs};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

/// Reconciles Database resources into PostgreSQL StatefulSets.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: SocketAddr,
    /// Namespace to watch; all namespaces when not set.
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Seconds after which an unchanged Database is looked at again without any event (a
    /// safety net for a lost watch event; such a reconcile only reads). Jittered by ±10 %.
    #[arg(long, env = "RESYNC_SECONDS", default_value_t = leader::resync::DEFAULT_SECONDS, value_parser = clap::value_parser!(u64).range(10..))]
    resync_seconds: u64,
    #[command(flatten)]
    leader: LeaderArgs,
}

// Two workers whatever the node: the operator waits on the API server, not on the CPU, and
// tokio's default of one worker per core gives each its own stack and malloc arena. With 16,
// the 1,000-Database benchmark peaked 7 MiB higher (docs/performance.md).
#[tokio::main(worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    // An empty WATCH_NAMESPACE (a common Helm default) means all namespaces.
    let namespace = args.namespace.filter(|ns| !ns.is_empty());

    let lease = args.leader.settings(MANAGER)?;

    let client = Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (no kubeconfig and not in a cluster?)")?;
    let (nudge, nudged) = futures::channel::oneshot::channel();
    let controller =
        controller::controller(&client, namespace.as_deref(), controller::nudges(nudged));
    let store = controller.store();
    let metrics = Arc::new(Metrics::new(Some(store.clone())).context("cannot register metrics")?);
    let ready = Arc::new(AtomicBool::new(false));
    let leading = Arc::new(AtomicBool::new(false));
    tokio::spawn(controller::track_readiness(store, ready.clone(), nudge));

    let reporter = Reporter {
        controller: MANAGER.to_string(),
        // The Pod name, when the Deployment passes it down.
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        metrics: metrics.clone(),
        backoff: Backoff::default(),
        resync: std::time::Duration::from_secs(args.resync_seconds),
    });

    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing reconciles in flight");
            shutdown.cancel();
        }
    });

    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("<all>"),
        leader_election = lease.is_some(),
        "starting"
    );
    let mut server = tokio::spawn(server::serve(
        args.metrics_address,
        AppState {
            metrics: metrics.clone(),
            ready,
            leading: leading.clone(),
        },
        shutdown.clone().cancelled_owned(),
    ));
    let election = Election::new(&client, lease);
    // The controller watches its Databases and, to follow them, Backups and Restores.
    let watched = [
        ApiResource::erase::<Database>(&()),
        ApiResource::erase::<Backup>(&()),
        ApiResource::erase::<Restore>(&()),
    ];
    let work = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = leader::crds::wait_until_served(&client, namespace.as_deref(), &watched) => {}
                () = shutdown.cancelled() => return,
            }
            controller::run(controller, context, shutdown.cancelled_owned()).await;
        }
    };
    let on_leading = || {
        leading.store(true, Ordering::Relaxed);
        metrics.set_leader(true);
    };
    let elected = election.run(shutdown.cancelled(), on_leading, work);
    tokio::pin!(elected);
    tokio::select! {
        // The server ends first only when it cannot start: exit, so the Pod restarts.
        served = &mut server => {
            served.context("metrics server panicked")??;
            (&mut elected).await?;
        }
        elected = &mut elected => {
            if let Err(error) = elected {
                // Lost the Lease (or cannot ever get it): exit non-zero at once, so the
                // kubelet restarts this replica as a follower.
                tracing::error!(%error, "stopping");
                return Err(error.into());
            }
            shutdown.cancel();
            server.await.context("metrics server panicked")??;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Resolves on SIGTERM (the kubelet stopping the Pod) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
