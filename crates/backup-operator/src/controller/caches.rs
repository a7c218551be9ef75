//! What the reconciles read instead of asking the API server: the Databases, the Backups and
//! the Jobs of each component, from the watches that also wake the controllers.
//!
//! Jobs are kept as JSON text (`runtime::packed`): a Job's Pod template is most of its size
//! and a reconcile reads the Jobs of one Backup only. The Jobs this operator creates, and the
//! statuses it writes, are read from `runtime::written` until the watches deliver them
//! (`runtime::cached`), so a reconcile that follows another within milliseconds (a burst of
//! events) sees what the first one did. A reconcile waits
//! until every cache has its first full list ([`Caches::synced`]): before, a missing Database
//! could not be told from one not listed yet.

use std::sync::Arc;

use api::{Backup, Database, Restore};
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::batch::v1::Job;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use runtime::cached::{Cached, decoded};
use runtime::packed::Packed;
use runtime::readiness::Synced;
use runtime::written::Written;

use super::error::Error;

/// Every cache a reconcile reads.
pub struct Caches {
    pub databases: Store<DeserializeGuard<Database>>,
    pub backups: Store<DeserializeGuard<Backup>>,
    pub backup_jobs: Cached<Job>,
    pub restore_jobs: Cached<Job>,
    pub cleanup_jobs: Cached<Job>,
    pub verify_jobs: Cached<Job>,
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
    pub backup_jobs: Store<Packed<Job>>,
    pub restore_jobs: Store<Packed<Job>>,
    pub cleanup_jobs: Store<Packed<Job>>,
    pub verify_jobs: Store<Packed<Job>>,
}

impl Caches {
    pub fn new(stores: Stores) -> Arc<Caches> {
        let synced = Synced::default()
            .of(&stores.databases)
            .of(&stores.backups)
            .of(&stores.restores)
            .of(&stores.backup_jobs)
            .of(&stores.restore_jobs)
            .of(&stores.cleanup_jobs)
            .of(&stores.verify_jobs)
            .shared();
        Arc::new(Caches {
            databases: stores.databases,
            backups: stores.backups,
            backup_jobs: Cached::new(stores.backup_jobs),
            restore_jobs: Cached::new(stores.restore_jobs),
            cleanup_jobs: Cached::new(stores.cleanup_jobs),
            verify_jobs: Cached::new(stores.verify_jobs),
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
        decoded(&self.databases, namespace, name).map_err(Error::Unreadable)
    }

    pub fn backup(&self, namespace: &str, name: &str) -> Result<Option<Backup>, Error> {
        decoded(&self.backups, namespace, name).map_err(Error::Unreadable)
    }
}
