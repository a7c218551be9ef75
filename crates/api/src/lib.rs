//! Custom resource types shared by the database-operator and the backup-operator.
//!
//! This crate does no I/O. It holds the CRDs with their schema rules, the names of the
//! objects each operator owns, helpers for conditions and for reading quantities, so both
//! operators agree on them from one place. The two operators never call each other: they meet only through the
//! status conditions defined here.

pub mod backup;
pub mod conditions;
pub mod crds;
pub mod database;
pub mod names;
pub mod quantity;
pub mod recovery;
pub mod restore;

pub use backup::{
    ArchiveSpec, ArchiveStatus, Backup, BackupCompression, BackupDestination, BackupMethod,
    BackupPhase, BackupRecord, BackupSource, BackupSpec, BackupStatus, CompressionAlgorithm,
    DeletionPolicy, LastVerification, PvcDestination, RUN_NOW_ANNOTATION, RecoverabilityWindow,
    RunNowRecord, S3Destination, VerificationResult, VerificationSpec,
};
pub use database::{
    Database, DatabasePhase, DatabaseSpec, DatabaseStatus, FailoverReport, InstanceStatus,
    ObjectReference, RecoveryReport, RecoveryState, RecoveryStatus, ReplicationReport,
    SpreadDomain, SpreadSpec, StandbyReport, StorageSpec,
};
pub use restore::{Restore, RestorePhase, RestoreSpec, RestoreStatus};
/// Lives in its own kube-free crate, which the backup data path uses too.
pub use secret::SecretString;

/// Re-exported so both operators build against the same Kubernetes and kube versions.
pub use k8s_openapi;
pub use kube;
