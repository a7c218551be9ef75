//! What a reconcile reads instead of asking the API server: every object a Database depends
//! on, from the watches that also wake the controller.
//!
//! Each watch selects only what this operator manages (`app.kubernetes.io/managed-by`), except
//! Backups and Restores, which belong to users and the backup-operator. Objects are kept in
//! the smallest form the reconciles read: as JSON text with only their identifying metadata
//! parsed (`runtime::packed`), unpacked when a reconcile reads them; without managed fields
//! and kubectl's last-applied copy; Pods without their spec (only their status says anything
//! about the Database). Restores, rare and small, stay parsed. The objects this operator
//! writes are read as it wrote them (`runtime::written`) until the watch delivers them, so a
//! burst of reconciles of one Database never writes twice.
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
use runtime::cached::Cached;
use runtime::packed::Packed;
use runtime::readiness::Synced;

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
/// most of a Pod's size.
pub fn keep_pod_status(pod: &mut Packed<Pod>) {
    pod.remove("spec");
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};

    #[test]
    fn cached_pods_keep_their_status_only() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop-0", "namespace": "prod", "labels": {"app": "shop"}},
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
    }
}
