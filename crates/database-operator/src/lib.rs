//! The database-operator: turns each `Database` into a credentials Secret, two Services and
//! a PostgreSQL StatefulSet, and reports what it sees in the Database's status.
//!
//! One reconcile is a pipeline, one module per step:
//! [`gather`] (read what the Database depends on) → [`validate`] (pure: may we provision?) →
//! [`builders`] (pure: the desired objects) → [`apply`] (server-side apply, only what
//! changed) → [`status`] (pure: conditions from what was observed and applied) →
//! [`events`]. [`reconcile`] strings them together; [`controller`] wires the watches. The
//! shared `runtime` crate runs it: the HTTP server, leader election, the wait for the CRDs,
//! retries with backoff and the reconcile metrics.

pub mod apply;
pub mod builders;
pub mod caches;
pub mod controller;
pub mod credentials_secret;
pub mod drift;
pub mod endpoint_slices;
pub mod error;
pub mod events;
pub mod gather;
pub mod instance_actions;
pub mod instance_rbac;
pub mod metrics;
pub mod pods;
pub mod reconcile;
pub mod recovery;
pub mod replication;
pub mod rollout;
pub mod scale_down;
pub mod status;
pub mod validate;
pub mod volumes;

/// Field manager of every server-side apply, and the reporting controller of Events.
pub const MANAGER: &str = "database-operator";
