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
}

// Two workers whatever the node: the operator waits on the API server, not on the CPU, and
// tokio's default of one worker per core gives each its own stack and malloc arena. With 16,
// the 1,000-Database benchmark peaked 7 MiB higher (docs/performance.md).
#[tokio::main(worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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
