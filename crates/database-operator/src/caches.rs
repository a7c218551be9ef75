//! What a reconcile reads instead of asking the API server: every object a Database depends
//! on, from the watches that also wake the controller.
//!
//! Each watch selects only what this operator manages (`app.kubernetes.io/managed-by`), except
//! Backups and Restores, which belong to users and the backup-operator. Objects are kept in
//! the smallest form the reconciles read: without managed fields and kubectl's last-applied
//! copy (`runtime::cache`), and Pods without their spec (only their status says anything about
//! the Database). The objects this operator writes are read from [`Written`] until the
//! watch delivers them, so a burst of reconciles of one Database never writes twice.
//!
//! A reconcile waits until every cache has its first full list ([`Caches::synced`]): before,
//! a missing Secret could not be told from one not listed yet.

use std::sync::Arc;

use api::{Backup, Restore};
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use runtime::cached::Cached;
use runtime::readiness::Synced;

/// Every cache a reconcile reads.
pub struct Caches {
    pub secrets: Cached<Secret>,
    pub services: Cached<Service>,
    pub statefulsets: Cached<StatefulSet>,
    pub pods: Store<Pod>,
    pub claims: Store<PersistentVolumeClaim>,
    pub slices: Store<EndpointSlice>,
    pub backups: Store<DeserializeGuard<Backup>>,
    pub restores: Store<DeserializeGuard<Restore>>,
    synced: Shared<BoxFuture<'static, bool>>,
}

/// The stores of [`Caches`], as the controller's watches fill them.
pub struct Stores {
    pub secrets: Store<Secret>,
    pub services: Store<Service>,
    pub statefulsets: Store<StatefulSet>,
    pub pods: Store<Pod>,
    pub claims: Store<PersistentVolumeClaim>,
    pub slices: Store<EndpointSlice>,
    pub backups: Store<DeserializeGuard<Backup>>,
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

/// The objects of `store` in `namespace` that `keep` selects.
pub fn select<K, F>(store: &Store<K>, namespace: &str, keep: F) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone,
    F: Fn(&K) -> bool,
{
    store
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace) && keep(o))
        .map(|o| K::clone(o))
        .collect()
}

/// Drops a Pod's spec: the reconciles read its name, labels and status only, and the spec is
/// most of a Pod's size.
pub fn keep_pod_status(pod: &mut Pod) {
    pod.spec = None;
}
