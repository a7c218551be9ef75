//! The operators' scenarios on the real test cluster (`crates/testenv`): both operators as
//! separate OS processes, each with only its own ServiceAccount's rights, coordinating
//! through a real kube-apiserver and nothing else.
//!
//! Each test begins with a [`Scenario`], which owns its namespace and the operator processes
//! it starts: on a failure their logs and the namespace's objects are printed, and both are
//! cleaned up when the scenario is dropped, passing or not.
//!
//! [`replication`] holds what the replication tests and the failover benchmark share: a
//! replicated Database, the questions asked of its instances, and a client writing through
//! its read-write Service.
//!
//! ```no_run
//! # async fn example() {
//! use scenarios::{CONVERGE, Scenario, database_ready};
//! let mut scenario = Scenario::new("backup-waits").await;
//! scenario.start_both().await;
//! scenario.apply(&scenarios::sample("seed-database.yaml")).await;
//! scenario.play_kubelet("my-database", 1).await;
//! let databases = scenario.api::<api::Database>();
//! testenv::wait_for(&databases, "my-database", database_ready, CONVERGE)
//!     .await
//!     .unwrap_or_else(|e| scenario.fail(e));
//! scenario.finish().await;
//! # }
//! ```

mod artifacts;
mod backup_run;
mod events;
mod kubectl;
mod kubelet;
mod logs;
mod manifests;
mod pgbench;
pub mod physical;
pub mod pitr;
mod postgres;
pub mod replication;
mod scenario;
mod wait_conditions;

use std::time::Duration;

pub use artifacts::{artifact_bytes, claim_dir, sha256_hex};
pub use backup_run::finish_backup_run;
pub use events::event_notes;
pub use kubectl::kubectl;
pub use kubelet::{play_kubelet, play_kubelet_within, wait_for_pods};
pub use logs::{RECONCILED, log_count, wait_for_more_logs};
pub use manifests::{apply_yaml, sample};
pub use pgbench::Pgbench;
pub use postgres::{POD_START, POSTGRES_IMAGE, connection_env, node_database, psql};
pub use scenario::{Scenario, free_port};
pub use wait_conditions::{
    backup_completed, backup_condition, database_condition, database_ready, has_condition,
    ready_reason, run_in_flight,
};

/// How long a scenario waits for the operators to converge. Convergence takes well under a
/// second; the bound only has to survive a busy two-core machine.
pub const CONVERGE: Duration = Duration::from_secs(60);
