//! End to end on the real one-node cluster: PostgreSQL actually runs in a Pod, backups are
//! Jobs that actually dump it, and restores bring the rows back.
//!
//! These tests need the node (`hack/cluster-up.sh` starts it) and the images built by
//! `hack/images.sh` and `hack/build-operator-images.sh`; `./justw test` prepares both.

// The composition scenarios' helpers; this binary uses only some of them.
#[path = "composition/support.rs"]
#[allow(dead_code)]
mod cluster_support;

mod e2e {
    pub mod support;
    mod table_lock;

    mod backup_and_restore;
    mod backup_operator_killed;
    mod deletion_policy;
    mod helm_charts;
    mod image_missing;
    mod in_cluster_operators;
    mod pod_killed;
    mod postgres_killed_mid_dump;
    mod recreated_database;
}
