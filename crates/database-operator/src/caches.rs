//! What a reconcile reads instead of asking the API server: every object a Database depends
//! on, from the watches that also wake the controller.
//!
//! Each watch selects only what this operator manages (`app.kubernetes.io/managed-by`), except
//! Backups and Restores, which belong to users and the backup-operator. Objects are kept in
//! the smallest form the reconciles read: as JSON text with only their identifying metadata
//! parsed (`runtime::packed`), unpacked when a reconcile reads them; without managed fields
//! and kubectl's last-applied copy; Pods without their spec (only their status says anything
//! about the Database). Pods, claims and EndpointSlices, found by label, keep parsed only the
//! labels they are found by; the Secret, Services and StatefulSet, found by name and owner,
//! none. Restores, rare and small, stay parsed. The objects this operator
//! writes are read as it wrote them (`runtime::written`) until the watch delivers them, so a
//! burst of reconciles of one Database never writes twice.
//!
//! A reconcile waits until every cache has its first full list ([`Caches::synced`]): before,
//! a missing Secret could not be told from one not listed yet.

use std::sync::Arc;

use api::{Backup, Restore, names};
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use runtime::cached::Cached;
use runtime::packed::{Packed, found_by_labels};
use runtime::readiness::Synced;

use crate::builders::SELECTOR_KEYS;
use crate::endpoint_slices::SERVICE_NAME_LABEL;

/// Every cache a reconcile reads.
pub struct Caches {
    pub secrets: Cached<Secret>,
    pub services: Cached<Service>,
    pub statefulsets: Cached<StatefulSet>,
    pub pods: Store<Packed<Pod>>,
    pub claims: Store<Packed<PersistentVolumeClaim>>,
    pub slices: Store<Packed<EndpointSlice>>,
    pub backups: Store<Packed<Backup>>,
    pub restores: Store<DeserializeGuard<Restore>>,
    synced: Shared<BoxFuture<'static, bool>>,
}

/// The stores of [`Caches`], as the controller's watches fill them.
pub struct Stores {
    pub secrets: Store<Packed<Secret>>,
    pub services: Store<Packed<Service>>,
    pub statefulsets: Store<Packed<StatefulSet>>,
    pub pods: Store<Packed<Pod>>,
    pub claims: Store<Packed<PersistentVolumeClaim>>,
    pub slices: Store<Packed<EndpointSlice>>,
    pub backups: Store<Packed<Backup>>,
    pub restores: Store<DeserializeGuard<Restore>>,
}

impl Caches {
    pub fn new(stores: Stores) -> Arc<Caches> {
        let synced = Synced::default()
            .of(&stores.secrets)
            .of(&stores.services)
            .of(&stores.statefulsets)
            .of(&stores.pods)
            .of(&stores.claims)
            .of(&stores.slices)
            .of(&stores.backups)
            .of(&stores.restores)
            .shared();
        Arc::new(Caches {
            secrets: Cached::new(stores.secrets),
            services: Cached::new(stores.services),
            statefulsets: Cached::new(stores.statefulsets),
            pods: stores.pods,
            claims: stores.claims,
            slices: stores.slices,
            backups: stores.backups,
            restores: stores.restores,
            synced,
        })
    }

    /// True once every cache has its first full list; false when a watch ended for good
    /// (the operator is shutting down).
    pub async fn synced(&self) -> bool {
        self.synced.clone().await
    }
}

/// Drops a Pod's spec: the reconciles read its name, labels and status only, and the spec is
/// most of a Pod's size. Of its metadata only the selector labels stay parsed
/// ([`keep_selector_labels`]).
pub fn keep_pod_status(pod: &mut Packed<Pod>) {
    keep_selector_labels(pod);
    pod.remove("spec");
}

/// For Pods and claims, which the controller maps to their Database by label and a reconcile
/// selects by the Database's selector labels: keeps parsed only those (a Pod carries seven
/// labels and an owner reference, each a few allocations per cached object).
pub fn keep_selector_labels<K>(object: &mut Packed<K>) {
    found_by_labels(object, &SELECTOR_KEYS);
}

/// For EndpointSlices: keeps parsed only the labels that map one to its Database and say
/// which Service it belongs to.
pub fn keep_slice_labels(slice: &mut Packed<EndpointSlice>) {
    found_by_labels(slice, &[names::LABEL_DATABASE, SERVICE_NAME_LABEL]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt as _;
    use kube::runtime::{reflector, watcher};

    #[test]
    fn cached_pods_keep_their_status_only() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop-0", "namespace": "prod", "labels": {
                "database.example.com/database": "shop", "app.kubernetes.io/name": "postgresql",
                "controller-revision-hash": "shop-5d8f7c9b4"}},
            "spec": {"containers": [{"name": "postgres", "image": "postgres:17"}]},
            "status": {"phase": "Pending"},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut packed = Packed::pack(&pod).unwrap_or_else(|e| panic!("{e}"));
        keep_pod_status(&mut packed);
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(packed));
        let cached = runtime::cached::select(&store, "prod", |_| true).unwrap_or_default();
        assert_eq!(cached.len(), 1);
        assert!(cached[0].spec.is_none());
        assert_eq!(cached[0].status, pod.status);
        assert_eq!(
            cached[0].labels(),
            pod.labels(),
            "the text keeps every label"
        );
        let parsed = store.state()[0].labels().len();
        assert_eq!(parsed, 2, "only the selector labels stay parsed");
    }
}
