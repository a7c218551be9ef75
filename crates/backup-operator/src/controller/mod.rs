//! The `run` subcommand: three controllers and an HTTP server in one process.
//!
//! - Backups: runs on schedule, one Job per run, status from verified results; restore
//!   drills (`spec.verification`), one Job per drill, deleted once recorded.
//! - Restores: one Job per Restore, never two.
//! - Initial restores: a Database created with a `backupRef` gets its Restore.
//!
//! Each controller caches only its own kind (Backups, Restores, Databases), without managed
//! fields. Backups and Restores are watched as `DeserializeGuard`s, so one that does not
//! decode is reported on its own ([`invalid`]) instead of stalling its whole watch. Owned
//! objects are watched through label-filtered watchers, as metadata only, so nothing of
//! other Jobs and claims in the cluster is streamed. The other kinds a controller
//! follows are watched as metadata too, except the Databases the Backup controller watches,
//! whose `backupRef` its mapper reads.
//!
//! Each controller's objects come through `runtime::controller::cached`, so a relist never
//! hands one over before the cache holds it, and every object no event touched is looked at
//! again after `--resync-seconds` (`runtime::resync`), in case an event was lost.
//!
//! The shared `runtime` crate runs them: the HTTP server, leader election (the controllers
//! start once this replica holds the leader Lease, and once the API server serves every kind
//! they watch; until then `/readyz` says not ready), retries with backoff, the reconcile
//! metrics and the resync safety net.

mod archiver;
mod args;
mod artifacts;
mod backup;
mod caches;
mod context;
mod error;
mod finalizers;
#[cfg(test)]
mod fixtures;
mod initial_restore;
mod job_runs;
mod mappers;
mod metrics;
mod pod_template;
mod restore;
mod scratch;
mod time;

use std::sync::Arc;

use api::names::LABEL_MANAGED_BY;
use api::{Backup, Database, Restore};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ApiResource;
use kube::core::{DeserializeGuard, PartialObjectMeta as Meta};
use kube::runtime::controller::Controller;
use kube::runtime::watcher::Config;
use runtime::cache::everything;
use runtime::controller::reflected;
use runtime::packed::Packed;
use runtime::{Process, Reconciles};

pub use args::RunArgs;
pub use backup::FINALIZER;

use caches::{Caches, Stores};
use context::Context;
use metrics::Metrics;
use pod_template::{JobSettings, LABEL_COMPONENT, MANAGER};

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let process = Process::start(MANAGER, &args.runtime).await?;
    let metrics = Arc::new(Metrics::new());
    let settings = JobSettings {
        image: args.backup_image.clone(),
        active_deadline_seconds: args.job_deadline_seconds,
    };
    tracing::info!(image = %args.backup_image, "Job image");

    let managed = format!("{LABEL_MANAGED_BY}={MANAGER}");
    let component = |c: &str| Config::default().labels(&format!("{managed},{LABEL_COMPONENT}={c}"));
    let reconciles = |name| Reconciles::new(name, metrics.reconciles.clone(), process.resync);
    let shutdown = || process.shutdown.clone().cancelled_owned();
    let [backup_label, restore_label, initial_label] = metrics::CONTROLLERS;
    let jobs = |c| reflected(process.api::<Packed<Job>>(), component(c), everything);
    let (backup_jobs, backup_job_changes) = jobs(backup::COMPONENT_BACKUP);
    let (restore_jobs, restore_job_changes) = jobs(restore::COMPONENT_RESTORE);
    let (cleanup_jobs, cleanup_job_changes) = jobs(backup::COMPONENT_CLEANUP);
    let (verify_jobs, verify_job_changes) = jobs(backup::COMPONENT_VERIFY);
    let (databases, database_changes) = reflected(
        process.api::<DeserializeGuard<Database>>(),
        Config::default(),
        everything,
    );

    let backups = cached(
        process.api::<DeserializeGuard<Backup>>(),
        process.concurrent_reconciles,
    );
    let backup_store = backups.store();
    let store = backup_store.clone();
    let backups = backups
        .owns_stream(backup_job_changes)
        .owns_stream(verify_job_changes)
        .owns(
            process.api::<PersistentVolumeClaim>(),
            Config::default().labels(&managed),
        )
        // Clean-up Jobs have no owner reference; they name their Backup in a label.
        .watches_stream(cleanup_job_changes, |job| mappers::backup_of_job(&job))
        .watches_stream(database_changes, move |db| {
            mappers::backups_for_database(&store.state(), &db)
        });

    let restores = cached(
        process.api::<DeserializeGuard<Restore>>(),
        process.concurrent_reconciles,
    );
    let restore_store = restores.store();
    let (by_backup, by_database) = (restore_store.clone(), restore_store.clone());
    let restores = restores
        .owns_stream(restore_job_changes)
        .watches(process.api::<Meta<Backup>>(), Config::default(), move |b| {
            mappers::restores_for_backup(&by_backup.state(), &b)
        })
        .watches(
            process.api::<Meta<Database>>(),
            Config::default(),
            move |db| mappers::restores_for_database(&by_database.state(), &db),
        );

    let initial = cached(
        process.api::<DeserializeGuard<Database>>(),
        process.concurrent_reconciles,
    );
    let database_store = initial.store();
    let store = database_store.clone();
    let initial = initial
        .owns(process.api::<Restore>(), Config::default().labels(&managed))
        .watches(process.api::<Meta<Backup>>(), Config::default(), move |b| {
            mappers::databases_for_backup(&store.state(), &b)
        });

    let caches = Caches::new(Stores {
        databases,
        backups: backup_store.clone(),
        restores: restore_store,
        backup_jobs,
        restore_jobs,
        cleanup_jobs,
        verify_jobs,
    });
    let ctx = Arc::new(Context::new(
        process.client.clone(),
        process.recorder(),
        settings,
        metrics.clone(),
        caches.clone(),
        Arc::new(chrono::Utc::now),
    ));
    let backups = reconciles(backup_label).run(backups, backup::reconcile, ctx.clone(), shutdown());
    let restores =
        reconciles(restore_label).run(restores, restore::reconcile, ctx.clone(), shutdown());
    let initial =
        reconciles(initial_label).run(initial, initial_restore::reconcile, ctx.clone(), shutdown());

    let health = process.health.clone();
    let backups_for_metrics = backup_store.clone();
    tokio::spawn(async move {
        let initial_synced = runtime::readiness::caches_synced(|| async {
            database_store.wait_until_ready().await.is_ok()
        });
        if initial_synced.await && caches.synced().await {
            health.set_synced();
        }
    });
    let render = {
        let metrics = metrics.clone();
        Arc::new(move || {
            let backups = backups_for_metrics.state();
            // A Backup that did not decode has no readable last success.
            metrics.render(backups.iter().filter_map(|b| b.0.as_ref().ok()))
        })
    };
    let watched = [
        ApiResource::erase::<Backup>(&()),
        ApiResource::erase::<Restore>(&()),
        ApiResource::erase::<Database>(&()),
    ];
    let controllers = async {
        tokio::join!(backups, restores, initial);
    };
    let reconcile_metrics = metrics.reconciles.clone();
    process
        .run(&watched, render, reconcile_metrics, controllers)
        .await
}

/// A controller over `api`'s objects, cached and slimmed by the runtime.
fn cached<K>(api: kube::Api<K>, concurrency: u16) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let config = Config::default().any_semantic();
    runtime::controller::cached(api, config, concurrency)
}
