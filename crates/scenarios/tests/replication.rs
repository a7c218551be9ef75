//! Replication on the three-node cluster (`PGOP_NODES=3`, docs/replication.md): one primary
//! and streaming standbys spread over the nodes, the Services that follow the roles, and
//! failover with fencing. Built with `--features three-nodes`; `./justw test` runs it once
//! the cluster has three nodes.

mod replication {
    mod archive_failover;
    mod backup_from_standby;
    mod cluster;
    mod failover;
    mod fencing;
    mod node_loss;
    mod process_killed;
    mod recovery_across_failover;
    mod rollout;
    mod scaling;
    mod streaming;
    mod switchover;
    mod volume_lost;
}
