//! The backup data path of the backup-operator: `pg_dump` streamed into a
//! directory or an S3-compatible bucket with a manifest that marks it complete,
//! restore that verifies before it touches the target, retention, and the cron
//! schedule arithmetic the controller uses to decide when a run is due.
//!
//! The binary wraps [`dump::dump`] and [`restore::restore`] as subcommands; the
//! controller builds Jobs that run them with the environment named in [`env`].

pub mod controller;
pub mod digest;
pub mod dump;
pub mod env;
pub mod error_chain;
pub mod pg;
pub mod purge;
pub mod report;
pub mod restore;
pub mod schedule;
pub mod storage;
