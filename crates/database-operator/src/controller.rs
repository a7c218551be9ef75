//! The controller: which watches trigger a reconcile of which Database, and what happens
//! after an error.
//!
//! - Databases themselves (wrapped in `DeserializeGuard`, so one malformed object cannot
//!   break the watch), cached without their managed fields ([`api::cache`]).
//! - The owned Secret, Services and StatefulSet, through their controller owner reference;
//!   the watches select `app.kubernetes.io/managed-by=database-operator`, so nothing else
//!   is streamed.
//! - PostgreSQL Pods and data claims, by their Database label: container failures (an image
//!   that cannot be pulled) and volume growth change neither the StatefulSet nor the
//!   Database, yet change the Database's status.
//! - The client Service's EndpointSlices, mapped to their Database: a Database is Ready only
//!   once the Service routes to its primary Pod, which happens after the Pod turned ready.
//!   EndpointSlices carry their Service's labels, so the same `managed-by` selector applies.
//! - Backups, mapped to the Databases whose `backupRef` names them, so a Database waiting
//!   for its Backup moves on the moment the Backup becomes ready.
//! - Restores, mapped to the Database an initial restore fills.
//!
//! Only the Databases are cached. Restores are watched whole (their mapper reads the spec);
//! everything else as metadata only (the owned objects by kube's `owns`, and the Pods,
//! claims, EndpointSlices and Backups here): their mappers read names and labels, and a
//! change to a status still arrives as an event. A reconcile reads what it needs itself
//! (`gather`), and at most [`CONCURRENT_RECONCILES`] run at once.
//!
//! A Database is reconciled when something it depends on changes, after a transient error
//! with a per-object exponential backoff, and otherwise only by the long, jittered safety net
//! of [`leader::resync`]. The Databases themselves come through [`leader::relist`], so a relist
//! never hands the controller an object its store does not hold yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use api::{Backup, Database, Restore, cache, names};
use futures::channel::oneshot;
use futures::{Future, Stream, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::DeserializeGuard;
use kube::core::PartialObjectMeta as Meta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use leader::watch_backoff::WatchBackoff;
use serde::de::DeserializeOwned;

use crate::backoff::Backoff;
use crate::builders::managed_selector;
use crate::error::Error;
use crate::metrics::DatabaseStore;
use crate::reconcile::{self, Context};
use crate::routes::SERVICE_NAME_LABEL;

type Guarded = DeserializeGuard<Database>;

/// An Api over `namespace`, or over all namespaces.
fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reconciles running at once. Each one holds an API connection per request in flight and
/// the objects it read; unbounded, the burst of 1,000 new Databases ran some 900 at once,
/// most of the operator's 90 MiB peak, and drew 429s from the API server. Sixteen keep the
/// peak under 30 MiB and converge as fast: the API server, not the operator, sets the pace.
pub const CONCURRENT_RECONCILES: u16 = 16;

/// The Controller with every watch wired, not yet running. Each `()` from `nudge` makes it
/// look at every Database again (see [`track_readiness`]).
pub fn controller(
    client: &Client,
    namespace: Option<&str>,
    nudge: impl Stream<Item = ()> + Send + 'static,
) -> Controller<Guarded> {
    let managed = || watcher::Config::default().labels(&managed_selector());
    let (store, writer) = reflector::store();
    let databases = leader::relist::objects_in_store(
        watcher(
            api::<Guarded>(client, namespace),
            watcher::Config::default(),
        )
        .modify(cache::slim)
        .reflect(writer),
        store.clone(),
    );
    let backups_store = store.clone();
    Controller::for_stream(databases, store)
        .with_config(controller::Config::default().concurrency(CONCURRENT_RECONCILES))
        .owns(api::<Secret>(client, namespace), managed())
        .owns(api::<Service>(client, namespace), managed())
        .owns(api::<StatefulSet>(client, namespace), managed())
        .watches(api::<Meta<Pod>>(client, namespace), managed(), |pod| {
            by_label(&pod)
        })
        .watches(
            api::<Meta<PersistentVolumeClaim>>(client, namespace),
            managed(),
            |claim| by_label(&claim),
        )
        .watches(
            api::<Meta<EndpointSlice>>(client, namespace),
            managed(),
            |slice| database_of_client_slice(&slice),
        )
        .watches(
            api::<Meta<Backup>>(client, namespace),
            watcher::Config::default(),
            move |backup| databases_using_backup(&backups_store, &backup),
        )
        .watches(
            api::<DeserializeGuard<Restore>>(client, namespace),
            watcher::Config::default(),
            |restore| database_of_initial_restore(&restore),
        )
        .reconcile_all_on(nudge)
        .trigger_backoff(WatchBackoff::default())
}

/// Sets `ready` once the controller's cache of Databases has synced, then nudges the
/// controller once.
///
/// The store's readiness is a oneshot that wakes only the waiter that polled it last, and the
/// controller itself waits on it before it starts reconciling. So this never blocks on it
/// alone: it polls with a short timeout (so it notices readiness even when the controller
/// got the wake-up), and when it got the wake-up itself it nudges the controller, which
/// otherwise might sleep until its next watch event.
pub async fn track_readiness(
    store: DatabaseStore,
    ready: Arc<AtomicBool>,
    nudge: oneshot::Sender<()>,
) {
    loop {
        match tokio::time::timeout(Duration::from_secs(1), store.wait_until_ready()).await {
            Ok(Ok(())) => break,
            Ok(Err(_)) => return,
            Err(_) => {}
        }
    }
    tracing::info!("Database cache synced");
    ready.store(true, Ordering::Relaxed);
    let _ = nudge.send(());
}

/// A stream of one `()` when `nudge` fires, for [`controller`].
pub fn nudges(nudge: oneshot::Receiver<()>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::once(nudge).filter_map(|r| std::future::ready(r.ok()))
}

/// The Database an object names in its [`names::LABEL_DATABASE`] label.
fn by_label<K: Resource>(object: &K) -> Option<ObjectRef<Guarded>> {
    let database = object.labels().get(names::LABEL_DATABASE)?;
    Some(ObjectRef::new(database).within(&object.namespace()?))
}

/// The Database whose client Service `slice` belongs to. The headless Service's slices are
/// left out: its endpoints are published before they are ready and no status depends on them.
fn database_of_client_slice(slice: &impl Resource) -> Option<ObjectRef<Guarded>> {
    let database = by_label(slice)?;
    let service = slice.labels().get(SERVICE_NAME_LABEL)?;
    (*service == names::client_service(&database.name)).then_some(database)
}

/// The Databases in the Backup's namespace whose `backupRef` names it.
pub fn databases_using_backup(
    store: &DatabaseStore,
    backup: &impl Resource,
) -> Vec<ObjectRef<Guarded>> {
    let (Some(namespace), name) = (backup.namespace(), backup.name_any()) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|g| g.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|g| {
            g.0.as_ref()
                .ok()
                .and_then(|db| db.spec.backup_ref.as_ref())
                .is_some_and(|r| r.name == name)
        })
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

/// The Database an initial Restore fills (other Restores do not affect a Database's status).
pub fn database_of_initial_restore(
    restore: &DeserializeGuard<Restore>,
) -> Option<ObjectRef<Guarded>> {
    let spec = &restore.0.as_ref().ok()?.spec;
    let database = &spec.database_ref.name;
    if restore.name_any() != names::initial_restore(database) {
        return None;
    }
    Some(ObjectRef::new(database).within(&restore.namespace()?))
}

/// Runs the controller until `shutdown` resolves and in-flight reconciles finish.
pub async fn run(
    controller: Controller<Guarded>,
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ctx = Arc::clone(&context);
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile_timed, error_policy, context)
        .for_each(move |result| {
            forget_deleted(&result, &ctx.backoff);
            async move {
                match result {
                    Ok((object, _)) => tracing::debug!(%object, "reconciled"),
                    Err(controller::Error::ReconcilerFailed(error, object)) => {
                        tracing::warn!(%object, category = error.category(), %error, "reconcile failed");
                    }
                    Err(controller::Error::ObjectNotFound(object)) => {
                        tracing::debug!(%object, "gone before its retry");
                    }
                    Err(error) => tracing::warn!(%error, "controller error"),
                }
            }
        })
        .await;
}

/// What the controller stream yields for each reconcile it ran or skipped.
type Outcome = Result<(ObjectRef<Guarded>, Action), controller::Error<Error, watcher::Error>>;

/// Drops the failure count of a Database that was deleted while it failed. Every count
/// belongs to an object with a retry scheduled (see [`next_attempt`]); when that retry
/// finds the object gone from the cache, the controller reports it as not found, and
/// nothing else would ever remove the count.
fn forget_deleted(outcome: &Outcome, backoff: &Backoff) {
    if let Err(controller::Error::ObjectNotFound(object)) = outcome {
        backoff.reset(&key(object.namespace.as_deref(), &object.name));
    }
}

async fn reconcile_timed(db: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = reconcile::reconcile(&db, &ctx).await;
    ctx.metrics
        .reconciled(start.elapsed(), result.as_ref().err());
    if result.is_ok() {
        ctx.backoff.reset(&key_of(&db));
    }
    result
}

fn error_policy(db: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    next_attempt(error, &key_of(&db), &ctx.backoff)
}

/// Permanent errors wait for a change; transient ones retry with a growing delay.
fn next_attempt(error: &Error, key: &str, backoff: &Backoff) -> Action {
    if error.is_permanent() {
        // No retry is scheduled, so no retry could find the object deleted and clear its
        // count; a corrected spec starts backing off afresh anyway.
        backoff.reset(key);
        Action::await_change()
    } else {
        Action::requeue(backoff.next(key))
    }
}

/// The [`Backoff`] key of a Database.
fn key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

fn key_of(db: &Guarded) -> String {
    key(db.namespace().as_deref(), &db.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::{database, database_from_backup};
    use crate::validate::fixtures::{backup, restore};
    use api::RestorePhase;
    use kube::core::PartialObjectMetaExt as _;
    use kube::runtime::reflector::store;

    #[test]
    fn backups_map_to_the_databases_that_use_them() {
        let (reader, mut writer) = store::<Guarded>();
        let mut elsewhere = database_from_backup("other-ns", "seed");
        elsewhere.metadata.namespace = Some("staging".into());
        for db in [
            database_from_backup("a", "seed"),
            database_from_backup("b", "seed"),
            database_from_backup("c", "nightly"),
            database("d"),
            elsewhere,
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(db))));
        }
        // The Backups are watched as metadata only.
        let seed = backup("seed", "x", true)
            .metadata
            .into_response_partial::<Backup>();
        let mut got: Vec<String> = databases_using_backup(&reader, &seed)
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        got.sort();
        assert_eq!(got, ["prod/a", "prod/b"]);
    }

    #[test]
    fn only_initial_restores_map_to_their_database() {
        let initial = restore("shop", RestorePhase::Running, "");
        let got = database_of_initial_restore(&DeserializeGuard(Ok(initial.clone())));
        assert_eq!(got, Some(ObjectRef::new("shop").within("prod")));
        let mut manual = initial;
        manual.metadata.name = Some("again".into());
        assert_eq!(
            database_of_initial_restore(&DeserializeGuard(Ok(manual))),
            None
        );
    }

    #[test]
    fn only_client_service_slices_map_to_their_database() {
        use crate::routes::fixtures::slice;
        let labelled = |service: &str| {
            let mut s = slice(service, &[]);
            let labels = crate::builders::labels(&database("shop"));
            s.labels_mut().extend(labels);
            s
        };
        assert_eq!(
            database_of_client_slice(&labelled("shop")),
            Some(ObjectRef::new("shop").within("prod"))
        );
        assert_eq!(database_of_client_slice(&labelled("shop-headless")), None);
        assert_eq!(database_of_client_slice(&slice("shop", &[])), None);
    }

    /// True when `key` has no failures counted: its next delay is the first one.
    fn forgotten(backoff: &Backoff, key: &str) -> bool {
        backoff.next(key) <= crate::backoff::BASE * 11 / 10
    }

    fn transient() -> Error {
        Error::Status(crate::error::StatusError::Patch {
            name: "shop".into(),
            source: kube::Error::LinesCodecMaxLineLengthExceeded,
        })
    }

    #[test]
    fn a_database_deleted_while_failing_leaves_no_count_behind() {
        let backoff = Backoff::default();
        for _ in 0..3 {
            next_attempt(&transient(), "prod/gone", &backoff);
        }
        next_attempt(&transient(), "prod/kept", &backoff);
        // The retry finds the Database gone from the cache.
        let gone = ObjectRef::<Guarded>::new("gone").within("prod").erase();
        forget_deleted(
            &Err(controller::Error::ObjectNotFound(Box::new(gone))),
            &backoff,
        );
        assert!(forgotten(&backoff, "prod/gone"));
        assert!(!forgotten(&backoff, "prod/kept"));
    }

    #[test]
    fn a_permanent_error_clears_the_count() {
        let backoff = Backoff::default();
        next_attempt(&transient(), "prod/shop", &backoff);
        let invalid = Error::InvalidObject {
            name: "shop".into(),
            message: "spec.replicas: invalid type".into(),
        };
        assert_eq!(
            next_attempt(&invalid, "prod/shop", &backoff),
            Action::await_change()
        );
        assert!(forgotten(&backoff, "prod/shop"));
    }

    #[test]
    fn pods_and_claims_map_by_label() {
        let sts = crate::builders::statefulset(&database("shop"), vec![]);
        assert_eq!(by_label(&sts), Some(ObjectRef::new("shop").within("prod")));
        assert_eq!(by_label(&Pod::default()), None);
    }
}
