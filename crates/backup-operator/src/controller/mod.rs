//! The `run` subcommand: three controllers and an HTTP server in one process.
//!
//! - Backups: runs on schedule, one Job per run, status from verified results.
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
//! Each controller's objects come through `leader::relist`, so a relist never hands one over
//! before the cache holds it, and every object no event touched is looked at again after
//! `--resync-seconds` (`leader::resync`), in case an event was lost.
//!
//! With `--leader-election`, the HTTP server runs from the start and the controllers once
//! this replica holds the leader Lease (see the `leader` crate), and in any case once the
//! API server serves every kind they watch; until then `/readyz` says not ready.

mod args;
mod artifacts;
mod backup;
mod context;
mod error;
#[cfg(test)]
mod fixtures;
mod initial_restore;
mod invalid;
mod job_runs;
mod mappers;
mod metrics;
mod pod_template;
mod restore;
mod server;
mod time;

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use api::names::LABEL_MANAGED_BY;
use api::{Backup, Database, Restore, cache};
use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ApiResource;
use kube::core::{DeserializeGuard, PartialObjectMeta as Meta};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Config, watcher};
use kube::runtime::{WatchStreamExt as _, reflector};
use kube::{Api, Client, Resource, ResourceExt as _};
use leader::Election;
use leader::watch_backoff::WatchBackoff;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use args::{LogFormat, RunArgs};
pub use backup::FINALIZER;

use context::Context;
use error::Error;
use metrics::Metrics;
use pod_template::{JobSettings, LABEL_COMPONENT, MANAGER};
use server::ServerState;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let lease = args.leader.settings(MANAGER)?;
    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration found: set KUBECONFIG or run inside a Pod")?;
    let scope = Scope {
        client: client.clone(),
        namespace: args.namespace().map(str::to_owned),
    };
    let metrics = Arc::new(Metrics::new());
    let settings = JobSettings {
        image: args.backup_image.clone(),
        active_deadline_seconds: args.job_deadline_seconds,
    };
    let ctx = Arc::new(Context::new(
        client,
        settings,
        metrics.clone(),
        Arc::new(chrono::Utc::now),
    ));
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    tracing::info!(namespace = ?scope.namespace, image = %args.backup_image, "starting controllers");

    let resync = Duration::from_secs(args.resync_seconds);
    let managed = format!("{LABEL_MANAGED_BY}={MANAGER}");
    let component = |c: &str| Config::default().labels(&format!("{managed},{LABEL_COMPONENT}={c}"));

    let backups = cached_controller(scope.api::<DeserializeGuard<Backup>>());
    let backup_store = backups.store();
    let store = backup_store.clone();
    let backups = backups
        .owns(scope.api::<Job>(), component(backup::COMPONENT_BACKUP))
        .owns(
            scope.api::<PersistentVolumeClaim>(),
            Config::default().labels(&managed),
        )
        // Clean-up Jobs have no owner reference; they name their Backup in a label.
        .watches(
            scope.api::<Meta<Job>>(),
            component(backup::COMPONENT_CLEANUP),
            |job| mappers::backup_of_job(&job),
        )
        .watches(scope.api::<Database>(), Config::default(), move |db| {
            mappers::backups_for_database(&store.state(), &db)
        })
        .trigger_backoff(WatchBackoff::default())
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(
            move |o, ctx| resynced(backup::reconcile(o.clone(), ctx), resync, o),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_result);

    let restores = cached_controller(scope.api::<DeserializeGuard<Restore>>());
    let restore_store = restores.store();
    let (by_backup, by_database) = (restore_store.clone(), restore_store.clone());
    let restores = restores
        .owns(scope.api::<Job>(), component(restore::COMPONENT_RESTORE))
        .watches(scope.api::<Meta<Backup>>(), Config::default(), move |b| {
            mappers::restores_for_backup(&by_backup.state(), &b)
        })
        .watches(
            scope.api::<Meta<Database>>(),
            Config::default(),
            move |db| mappers::restores_for_database(&by_database.state(), &db),
        )
        .trigger_backoff(WatchBackoff::default())
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(
            move |o, ctx| resynced(restore::reconcile(o.clone(), ctx), resync, o),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_result);

    let initial = cached_controller(scope.api::<Database>());
    let database_store = initial.store();
    let store = database_store.clone();
    let initial = initial
        .owns(scope.api::<Restore>(), Config::default().labels(&managed))
        .watches(scope.api::<Meta<Backup>>(), Config::default(), move |b| {
            mappers::databases_for_backup(&store.state(), &b)
        })
        .trigger_backoff(WatchBackoff::default())
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(
            move |o, ctx| resynced(initial_restore::reconcile(o.clone(), ctx), resync, o),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_result);

    let state = Arc::new(ServerState {
        metrics: metrics.clone(),
        ready: false.into(),
        leading: false.into(),
        backups: backup_store.clone(),
    });
    let ready = state.clone();
    tokio::spawn(async move {
        // A store's readiness wakes only the task that polled it last, and each controller
        // polls its own before it reconciles, later than this task when it first waited for
        // the leader Lease. So look again every second instead of waiting for a wake-up.
        let synced = loop {
            let all = async {
                tokio::try_join!(
                    backup_store.wait_until_ready(),
                    restore_store.wait_until_ready(),
                    database_store.wait_until_ready(),
                )
            };
            if let Ok(synced) = tokio::time::timeout(Duration::from_secs(1), all).await {
                break synced;
            }
        };
        if synced.is_ok() {
            tracing::info!("caches synced");
            ready.ready.store(true, Ordering::Relaxed);
        }
    });
    let server = tokio::spawn(server::serve(
        args.metrics_address,
        state.clone(),
        shutdown.clone().cancelled_owned(),
    ));
    let on_leading = move || {
        state.leading.store(true, Ordering::Relaxed);
        metrics.leader.set(1);
    };
    let watched = [
        ApiResource::erase::<Backup>(&()),
        ApiResource::erase::<Restore>(&()),
        ApiResource::erase::<Database>(&()),
    ];
    let work = async {
        // Not ready meanwhile: the caches cannot sync before the controllers start.
        let served =
            leader::crds::wait_until_served(&scope.client, scope.namespace.as_deref(), &watched);
        tokio::select! {
            () = served => {}
            () = shutdown.cancelled() => return,
        }
        tokio::join!(backups, restores, initial);
    };
    let elected = Election::new(&scope.client, lease)
        .run(shutdown.cancelled(), on_leading, work)
        .await;
    // The controllers end on shutdown, or when they cannot continue: stop the server too.
    shutdown.cancel();
    if let Err(error) = elected {
        // Lost the Lease (or cannot ever get it): exit non-zero at once, so the kubelet
        // restarts this replica as a follower.
        tracing::error!(%error, "stopping");
        return Err(error.into());
    }
    server.await.context("the HTTP server panicked")??;
    tracing::info!("stopped");
    Ok(())
}

/// Reconciles each controller runs at once. Unbounded, the burst of 1,000 new Backups ran
/// hundreds at once, each with its own API connection; sixteen per controller keep the
/// operator's peak flat and still outpace the API server (docs/performance.md).
const CONCURRENT_RECONCILES: u16 = 16;

/// A Controller over `api`'s objects whose cache leaves out what no reconcile reads
/// ([`api::cache`]): managed fields are most of a cached Backup's memory.
fn cached_controller<K>(api: Api<K>) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let events = watcher(api, Config::default().any_semantic())
        .modify(cache::slim)
        .reflect(writer);
    let objects = leader::relist::objects_in_store(events, store.clone());
    Controller::for_stream(objects, store)
        .with_config(controller::Config::default().concurrency(CONCURRENT_RECONCILES))
}

/// A reconcile's result with the safety net of [`leader::resync`]: where it would wait for a
/// change, it looks at the object again after `interval` anyway.
async fn resynced<K: Resource>(
    reconcile: impl std::future::Future<Output = Result<Action, Error>>,
    interval: Duration,
    object: Arc<K>,
) -> Result<Action, Error> {
    let action = reconcile.await?;
    Ok(leader::resync::or_resync(
        action,
        interval,
        object.meta().uid.as_deref(),
    ))
}

/// The namespace (or all of them) every watch and request is made in.
struct Scope {
    client: Client,
    namespace: Option<String>,
}

impl Scope {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }
}

/// Counts and logs a failed reconcile, then retries after a delay that suits its kind, or,
/// when retrying cannot help, waits for the object to change.
fn error_policy<K>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[error.category()])
        .inc();
    tracing::warn!(
        kind = %K::kind(&()),
        name = %object.name_any(),
        namespace = ?object.namespace(),
        category = error.category(),
        error = %crate::error_chain::describe(error),
        "reconcile failed"
    );
    if error.is_permanent() {
        Action::await_change()
    } else {
        Action::requeue(error.retry_after())
    }
}

async fn log_result<K, E>(
    result: Result<(ObjectRef<K>, Action), controller::Error<E, watcher::Error>>,
) where
    K: Resource + Debug,
    E: std::error::Error + 'static,
{
    match result {
        Ok((object, _)) => tracing::debug!(%object, "reconciled"),
        // Already logged by error_policy.
        Err(controller::Error::ReconcilerFailed(_, object)) => {
            tracing::debug!(%object, "reconcile failed")
        }
        Err(error) => tracing::warn!(error = %crate::error_chain::describe(&error), "controller"),
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        tracing::error!("cannot listen for SIGTERM");
        return;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: finishing reconciles in flight");
    shutdown.cancel();
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
