//! The backup data path, which runs inside the backup-operator's Jobs: `pg_dump` streamed
//! into a directory or an S3-compatible bucket with a manifest that marks it complete,
//! restore that verifies before it touches the target, retention and purge.
//!
//! Nothing here talks to Kubernetes: the Job's settings arrive as the environment named in
//! `backup_job::env`, and the result leaves as a `backup_job::report::RunSummary`.

pub mod base_backup;
pub mod compression;
pub mod digest;
pub mod drill;
pub mod dump;
pub mod dump_plan;
pub mod hashed_read;
pub mod pg;
pub mod physical_retention;
pub mod purge;
pub mod readable;
pub mod recovery_prepare;
pub mod restore;
pub mod row_counts;
pub mod run_summary;
pub mod storage;
pub mod tar_stream;
pub mod wal;
pub mod wal_archiver;
pub mod wal_store;
