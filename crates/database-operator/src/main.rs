//! The database-operator binary: flags, then the controller wired into the shared runtime
//! (HTTP server from the start; with leader election, the controller once this replica
//! holds the leader Lease).

use std::sync::Arc;

use anyhow::Context as _;
use api::{Backup, Database, Restore};
use clap::Parser;
use database_operator::metrics::Metrics;
use database_operator::reconcile::Context;
use database_operator::{MANAGER, controller};
use kube::api::ApiResource;
use runtime::{Process, RuntimeArgs};

/// Reconciles Database resources into PostgreSQL StatefulSets.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Image the PostgreSQL Pods copy the instance manager from: this operator's own image
    /// (the chart sets it), which holds this binary.
    #[arg(
        long,
        env = "INSTANCE_MANAGER_IMAGE",
        default_value = "pgop/database-operator:dev"
    )]
    instance_manager_image: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The instance manager, inside a PostgreSQL Pod (not for use by hand).
    Instance {
        #[command(subcommand)]
        action: InstanceAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum InstanceAction {
    /// Copy this binary into DIR (the Pod's init container).
    Install { dir: std::path::PathBuf },
    /// Run PostgreSQL as this Pod's instance (the postgres container's command).
    Run,
}

/// The instance manager's own small runtime: logs to stderr, no metrics server, no leader
/// election.
async fn instance(action: InstanceAction) -> anyhow::Result<()> {
    match action {
        InstanceAction::Install { dir } => instance_manager::install(&dir),
        InstanceAction::Run => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_ansi(false)
                .init();
            instance_manager::run(instance_manager::Config::from_env()?).await
        }
    }
}

// Two workers whatever the node: the operator waits on the API server, not on the CPU, and
// tokio's default of one worker per core gives each its own stack and malloc arena. With 16,
// the 1,000-Database benchmark peaked 7 MiB higher (docs/performance.md).
#[tokio::main(worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Instance { action }) = args.command {
        return instance(action).await;
    }
    let process = Process::start(MANAGER, &args.runtime).await?;

    let (nudge, nudged) = futures::channel::oneshot::channel();
    let (controller, caches) = controller::controller(&process, controller::nudges(nudged));
    let store = controller.store();
    let metrics = Arc::new(Metrics::new(Some(store.clone())).context("cannot register metrics")?);
    let health = process.health.clone();
    tokio::spawn(controller::track_readiness(
        store,
        caches.clone(),
        health,
        nudge,
    ));

    let context = Arc::new(Context {
        client: process.client.clone(),
        recorder: process.recorder(),
        caches,
        statuses_written: Default::default(),
        pod_settings: database_operator::builders::PodSettings {
            instance_manager_image: args.instance_manager_image.clone(),
        },
    });
    let reconciles = metrics.reconciles.clone();
    let controllers = controller::run(
        controller,
        context,
        reconciles.clone(),
        process.resync,
        process.shutdown.clone().cancelled_owned(),
    );
    // The controller watches its Databases and, to follow them, Backups and Restores.
    let watched = [
        ApiResource::erase::<Database>(&()),
        ApiResource::erase::<Backup>(&()),
        ApiResource::erase::<Restore>(&()),
    ];
    let render = Arc::new(move || metrics.render());
    process.run(&watched, render, reconciles, controllers).await
}
