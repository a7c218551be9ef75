//! End to end on the real one-node cluster: PostgreSQL actually runs in a Pod, backups are
//! Jobs that actually dump it, and restores bring the rows back.
//!
//! These tests need the node (`hack/cluster-up.sh` starts it) and the images built by
//! `hack/images.sh` and `hack/build-operator-images.sh`; `./justw test` prepares both.

mod e2e {
    mod table_lock;

    mod backup_and_restore;
    mod backup_operator_killed;
    mod backup_verification;
    mod deletion_policy;
    mod helm_charts;
    mod image_missing;
    mod in_cluster_operators;
    mod parallel_backup;
    mod physical_backup;
    mod pod_killed;
    mod point_in_time_recovery;
    mod postgres_killed_mid_dump;
    mod recreated_database;
}
