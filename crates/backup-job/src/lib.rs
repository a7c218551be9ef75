//! The contract between the backup-operator's controller and the Jobs it starts: what the
//! controller tells a Job ([`request`], rendered as environment variables named in [`env`])
//! and the one-line result the Job leaves in its termination message for the controller to
//! read back ([`report`]).
//!
//! Both sides build on this crate, so a renamed variable or field fails to compile instead
//! of failing a backup. It knows nothing of Kubernetes or of how a dump is made.

pub mod entry;
pub mod env;
pub mod recovery_report;
pub mod report;
pub mod request;
pub mod verify_report;

pub use entry::{EnvEntry, EnvValue, SecretKey};
pub use request::{
    ArchiveWalJob, BaseBackupJob, Connection, Destination, DumpJob, PrepareRecoveryJob, PurgeJob,
    RestoreJob, S3Destination, Series, VerifyJob,
};
