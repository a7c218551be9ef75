//! The backup-operator's controller: it watches Backups and Restores, starts the Jobs that
//! run the data path (`backup-data`) with the environment the contract names
//! (`backup-job`), and records their results. The binary (`main.rs`) runs either side.

pub mod controller;
/// The controller describes its own errors the way the Jobs describe theirs.
pub mod schedule;
