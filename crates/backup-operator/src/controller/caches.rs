//! What the reconciles read instead of asking the API server: the Databases, the Backups and
//! the Jobs of each component, from the watches that also wake the controllers.
//!
//! The Jobs this operator creates, and the statuses it writes, are read from
//! `runtime::written` until the watches deliver them, so a reconcile that follows another
//! within milliseconds (a burst of events) sees what the first one did. A reconcile waits
//! until every cache has its first full list ([`Caches::synced`]): before, a missing Database
//! could not be told from one not listed yet.

use std::sync::Arc;

use api::{Backup, Database, Restore};
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::batch::v1::Job;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt as _};
use runtime::written::Written;

use super::error::Error;

/// The Jobs of one component, as cached and as created since.
pub struct Jobs {
    store: Store<Job>,
    written: Written<Job>,
}

impl Jobs {
    pub fn new(store: Store<Job>) -> Jobs {
        Jobs {
            store,
            written: Written::default(),
        }
    }

    /// Job `name` in `namespace`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Job> {
        let key = ObjectRef::new(name).within(namespace);
        let job = self.written.newest(&key, self.store.get(&key))?;
        Some(Job::clone(&job))
    }

    /// The Jobs in `namespace` whose label `key` is `value`.
    pub fn labelled(&self, namespace: &str, key: &str, value: &str) -> Vec<Job> {
        let keep = |job: &Job| {
            job.namespace().as_deref() == Some(namespace)
                && job.labels().get(key).map(String::as_str) == Some(value)
        };
        self.written
            .merged(self.store.state(), keep)
            .iter()
            .map(|job| Job::clone(job))
            .collect()
    }

    /// Remembers a Job this operator created.
    pub fn created(&self, job: Job) {
        self.written.remember(job);
    }

    /// Forgets a Job this operator deleted.
    pub fn deleted(&self, namespace: &str, name: &str) {
        self.written.forget(&ObjectRef::new(name).within(namespace));
    }
}

/// Every cache a reconcile reads.
pub struct Caches {
    pub databases: Store<DeserializeGuard<Database>>,
    pub backups: Store<DeserializeGuard<Backup>>,
    pub backup_jobs: Jobs,
    pub restore_jobs: Jobs,
    pub cleanup_jobs: Jobs,
    /// Backups and Restores as their last status patch left them.
    pub backup_statuses: Written<Backup>,
    pub restore_statuses: Written<Restore>,
    synced: Shared<BoxFuture<'static, bool>>,
}

/// The stores of [`Caches`], as the controllers' watches fill them.
pub struct Stores {
    pub databases: Store<DeserializeGuard<Database>>,
    pub backups: Store<DeserializeGuard<Backup>>,
    pub restores: Store<DeserializeGuard<Restore>>,
    pub backup_jobs: Store<Job>,
    pub restore_jobs: Store<Job>,
    pub cleanup_jobs: Store<Job>,
}

impl Caches {
    pub fn new(stores: Stores) -> Arc<Caches> {
        let s = (
            stores.databases.clone(),
            stores.backups.clone(),
            stores.restores,
            stores.backup_jobs.clone(),
            stores.restore_jobs.clone(),
            stores.cleanup_jobs.clone(),
        );
        let synced = async move {
            runtime::readiness::caches_synced(|| async {
                futures::try_join!(
                    s.0.wait_until_ready(),
                    s.1.wait_until_ready(),
                    s.2.wait_until_ready(),
                    s.3.wait_until_ready(),
                    s.4.wait_until_ready(),
                    s.5.wait_until_ready(),
                )
                .is_ok()
            })
            .await
        }
        .boxed()
        .shared();
        Arc::new(Caches {
            databases: stores.databases,
            backups: stores.backups,
            backup_jobs: Jobs::new(stores.backup_jobs),
            restore_jobs: Jobs::new(stores.restore_jobs),
            cleanup_jobs: Jobs::new(stores.cleanup_jobs),
            backup_statuses: Written::default(),
            restore_statuses: Written::default(),
            synced,
        })
    }

    /// True once every cache has its first full list; false when a watch ended for good
    /// (the operator is shutting down).
    pub async fn synced(&self) -> bool {
        self.synced.clone().await
    }

    pub fn database(&self, namespace: &str, name: &str) -> Result<Option<Database>, Error> {
        decoded(&self.databases, namespace, name)
    }

    pub fn backup(&self, namespace: &str, name: &str) -> Result<Option<Backup>, Error> {
        decoded(&self.backups, namespace, name)
    }
}

/// `object` as this operator last wrote it, when the cache does not show that yet.
pub fn newest<K>(written: &Written<K>, object: &K) -> K
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let key = ObjectRef::from_obj(object);
    written
        .newest(&key, Some(Arc::new(object.clone())))
        .map_or_else(|| object.clone(), |o| K::clone(&o))
}

/// Object `name` of a kind cached as `DeserializeGuard`s; one that does not decode is an
/// error (retried: its watch wakes the reconcile when it is corrected).
fn decoded<K>(
    store: &Store<DeserializeGuard<K>>,
    namespace: &str,
    name: &str,
) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
{
    let Some(guard) = store.get(&ObjectRef::new(name).within(namespace)) else {
        return Ok(None);
    };
    match &guard.0 {
        Ok(object) => Ok(Some(object.clone())),
        Err(invalid) => Err(Error::Unreadable(runtime::InvalidObject::new(
            &K::kind(&()),
            name,
            &invalid.error,
        ))),
    }
}
