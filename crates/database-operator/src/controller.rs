//! The controller: which watches trigger a reconcile of which Database, and what happens
//! after an error.
//!
//! - Databases themselves (wrapped in `DeserializeGuard`, so one malformed object cannot
//!   break the watch), cached without their managed fields (`runtime::cache`).
//! - The owned Secret, Services and StatefulSet, through their controller owner reference;
//!   the watches select `app.kubernetes.io/managed-by=database-operator`, so nothing else
//!   is streamed.
//! - PostgreSQL Pods and data claims, by their Database label: container failures (an image
//!   that cannot be pulled) and volume growth change neither the StatefulSet nor the
//!   Database, yet change the Database's status.
//! - The client Service's EndpointSlices, mapped to their Database: a Database is Ready only
//!   once the Service routes to its primary Pod, which happens after the Pod turned ready.
//!   EndpointSlices carry their Service's labels, so the same `managed-by` selector applies,
//!   and the Services' [`api::names::LABEL_SERVICE`] leaves out the slices of the other three
//!   Services, which no reconcile reads (they were three quarters of the cached slices).
//! - Backups, mapped to the Databases whose `backupRef` names them, so a Database waiting
//!   for its Backup moves on the moment the Backup becomes ready.
//! - Restores, mapped to the Database an initial restore fills.
//!
//! Every watch fills a cache ([`crate::caches`]) before it wakes the controller, and a
//! reconcile reads what it needs from the caches (`gather`): an unchanged Database costs no
//! request at all. At most `--concurrent-reconciles` run at once.
//!
//! A Database is reconciled when something it depends on changes, after a transient error
//! with a per-object exponential backoff, and otherwise only by the long, jittered safety net
//! of `runtime::resync`. The Databases themselves come through `runtime::controller::cached`,
//! so a relist never hands the controller an object its store does not hold yet.

use std::sync::Arc;

use api::{Backup, Database, Restore, names};
use futures::channel::oneshot;
use futures::{Future, Stream, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use runtime::cache::everything;
use runtime::controller::reflected;
use runtime::packed::{Packed, found_by_name};
use runtime::{Health, Process, ReconcileMetrics, Reconciles};

use crate::builders::{client_slices_selector, managed_selector};
use crate::caches::{Caches, Stores, keep_pod_status, keep_selector_labels, keep_slice_labels};
use crate::endpoint_slices::SERVICE_NAME_LABEL;
use crate::metrics::DatabaseStore;
use crate::reconcile::{self, Context};

type Guarded = DeserializeGuard<Database>;

/// The Controller with every watch wired, not yet running. Each `()` from `nudge` makes it
/// look at every Database again (see [`track_readiness`]).
pub fn controller(
    process: &Process,
    nudge: impl Stream<Item = ()> + Send + 'static,
) -> (Controller<Guarded>, Arc<Caches>) {
    let managed = || watcher::Config::default().labels(&managed_selector());
    let all = watcher::Config::default;
    // The Secret, Services and StatefulSet are read by name and mapped by owner reference.
    let (secrets, secret_changes) =
        reflected(process.api::<Packed<Secret>>(), managed(), found_by_name);
    let (services, service_changes) =
        reflected(process.api::<Packed<Service>>(), managed(), found_by_name);
    let (statefulsets, statefulset_changes) = reflected(
        process.api::<Packed<StatefulSet>>(),
        managed(),
        found_by_name,
    );
    let (pods, pod_changes) = reflected(process.api::<Packed<Pod>>(), managed(), keep_pod_status);
    let (claims, claim_changes) = reflected(
        process.api::<Packed<PersistentVolumeClaim>>(),
        managed(),
        keep_selector_labels,
    );
    let client_slices = watcher::Config::default().labels(&client_slices_selector());
    let (slices, slice_changes) = reflected(
        process.api::<Packed<EndpointSlice>>(),
        client_slices,
        keep_slice_labels,
    );
    let (backups, backup_changes) = reflected(process.api::<Packed<Backup>>(), all(), everything);
    let (restores, restore_changes) = reflected(
        process.api::<DeserializeGuard<Restore>>(),
        all(),
        everything,
    );
    let caches = Caches::new(Stores {
        secrets,
        services,
        statefulsets,
        pods,
        claims,
        slices,
        backups,
        restores,
    });

    let controller = runtime::controller::cached(
        process.api::<Guarded>(),
        all(),
        process.concurrent_reconciles,
    );
    let databases = controller.store();
    let controller = controller
        .owns_stream(secret_changes)
        .owns_stream(service_changes)
        .owns_stream(statefulset_changes)
        .watches_stream(pod_changes, |pod| by_label(&pod))
        .watches_stream(claim_changes, |claim| by_label(&claim))
        .watches_stream(slice_changes, |slice| database_of_client_slice(&slice))
        .watches_stream(backup_changes, move |backup| {
            databases_using_backup(&databases, &backup)
        })
        .watches_stream(restore_changes, |restore| {
            database_of_initial_restore(&restore)
        })
        .reconcile_all_on(nudge);
    (controller, caches)
}

/// Marks the process synced once the controller's cache of Databases and every cache the
/// reconciles read have synced, then nudges the controller once: the store's readiness wakes
/// only the waiter that polled it last, and when that was this task, the controller might
/// otherwise sleep until its next watch event.
pub async fn track_readiness(
    store: DatabaseStore,
    caches: Arc<Caches>,
    health: Arc<Health>,
    nudge: oneshot::Sender<()>,
) {
    let databases =
        runtime::readiness::caches_synced(|| async { store.wait_until_ready().await.is_ok() });
    if databases.await && caches.synced().await {
        health.set_synced();
        let _ = nudge.send(());
    }
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

/// The Database whose client Service `slice` belongs to. Other Services' slices are left out
/// (the watch delivers them only while their Service predates [`names::LABEL_SERVICE`]): the
/// headless Service publishes endpoints before they are ready, and no status depends on the
/// read-only Services.
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

/// The `controller` label of this operator's metrics.
pub const CONTROLLER: &str = "database";

/// Runs the controller until `shutdown` resolves and in-flight reconciles finish.
pub async fn run(
    controller: Controller<Guarded>,
    context: Arc<Context>,
    metrics: Arc<ReconcileMetrics>,
    resync: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    Reconciles::new(CONTROLLER, metrics, resync)
        .run(
            controller,
            |db, ctx| async move { reconcile::reconcile(&db, &ctx).await },
            context,
            shutdown,
        )
        .await;
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
        use crate::endpoint_slices::fixtures::slice;
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

    #[test]
    fn pods_and_claims_map_by_label() {
        let sts = crate::builders::statefulset(
            &database("shop"),
            vec![],
            &crate::builders::fixtures::settings(),
            None,
        );
        assert_eq!(by_label(&sts), Some(ObjectRef::new("shop").within("prod")));
        assert_eq!(by_label(&Pod::default()), None);
    }
}
