//! What a reconcile reads instead of asking the API server: every object a Database depends
//! on, from the watches that also wake the controller.
//!
//! Each watch selects only what this operator manages (`app.kubernetes.io/managed-by`), except
//! Backups and Restores, which belong to users and the backup-operator. Objects are kept in
//! the smallest form the reconciles read: without managed fields and kubectl's last-applied
//! copy (`runtime::cache`), Pods without their spec (only their status says anything about
//! the Database), and StatefulSets with their Pod template packed as text. The objects this operator writes are read from [`Written`] until the
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
use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
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

/// Annotation of a cached StatefulSet holding its Pod template as JSON text; it exists only
/// in this process's memory (cached objects are never written back).
const PACKED_TEMPLATE: &str = "database.example.com/cached-pod-template";

/// Keeps a StatefulSet's Pod template as JSON text instead of typed fields: parsed, the
/// template (containers, probes, volumes, the server's defaults) is most of a StatefulSet's
/// memory, about 40 KiB against its 8 KiB of text, and only the drift check of the
/// Database's own reconcile reads it ([`unpack_statefulset`]).
pub fn pack_statefulset(sts: &mut StatefulSet) {
    let Some(spec) = sts.spec.as_mut() else {
        return;
    };
    let template = std::mem::take(&mut spec.template);
    match serde_json::to_string(&template) {
        Ok(text) => {
            sts.annotations_mut()
                .insert(PACKED_TEMPLATE.to_owned(), text);
        }
        // Cannot happen for a type that came from JSON; keep it whole if it does.
        Err(_) => spec.template = template,
    }
}

/// The StatefulSet as the API server holds it, from what [`pack_statefulset`] kept.
pub fn unpack_statefulset(mut sts: StatefulSet) -> StatefulSet {
    let annotations = &mut sts.metadata.annotations;
    let packed = annotations.as_mut().and_then(|a| a.remove(PACKED_TEMPLATE));
    if annotations.as_ref().is_some_and(|a| a.is_empty()) {
        *annotations = None;
    }
    if let (Some(text), Some(spec)) = (packed, sts.spec.as_mut())
        && let Ok(template) = serde_json::from_str(&text)
    {
        spec.template = template;
    }
    sts
}

/// Drops a Pod's spec: the reconciles read its name, labels and status only, and the spec is
/// most of a Pod's size.
pub fn keep_pod_status(pod: &mut Pod) {
    pod.spec = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;
    use crate::builders::{claim_templates, statefulset};

    #[test]
    fn a_packed_statefulset_unpacks_to_what_was_cached() {
        let db = database("shop");
        let sts = statefulset(&db, claim_templates(&db, None));
        let mut packed = sts.clone();
        pack_statefulset(&mut packed);
        let template = packed.spec.as_ref().map(|s| s.template.clone());
        assert_eq!(
            template,
            Some(Default::default()),
            "the typed template is dropped"
        );
        assert!(packed.annotations().contains_key(PACKED_TEMPLATE));
        assert_eq!(unpack_statefulset(packed), sts);
    }
}
