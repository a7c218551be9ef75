//! The three-node cluster (`PGOP_NODES=3`, docs/node.md): Pods spread over the nodes reach
//! each other, volumes stay on the node that holds them, and each fault of `hack/node.sh`
//! cuts a node off and heals back. Built with `--features three-nodes`; `./justw test` runs
//! it once the cluster has three nodes.

mod nodes {
    mod echo;
    mod faults;
    mod topology;
}
