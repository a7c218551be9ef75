//! A real Kubernetes control plane for the operators' integration tests.
//!
//! Mocks cannot tell whether an operator's RBAC rules suffice, whether server-side apply
//! merges as expected, or how many writes it makes in steady state. So the tests run against
//! real etcd, kube-apiserver, kube-controller-manager and kube-scheduler processes started by
//! `hack/cluster-up.sh`, shared by every test and reused across test runs, and the operators
//! run as separate OS processes under their own ServiceAccounts.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let cluster = testenv::cluster().await?;
//! let ns = cluster.namespace("backup-waits").await?;
//! let kubeconfig = cluster.operator_kubeconfig(testenv::Operator::Database).await?;
//! let _operator = testenv::OperatorProcess::spawn(testenv::Operator::Database, &kubeconfig, &[], &[])?;
//! // ... create objects in ns.name(), wait_for() their status ...
//! ns.cleanup().await?;
//! # Ok(())
//! # }
//! ```
//!
//! A test never skips itself: when the cluster cannot start, [`cluster`] returns an error
//! saying why, and the test fails.

mod audit;
mod cluster;
mod control_plane;
mod kubelet;
mod namespace;
mod nodes;
mod process;
mod wait;

pub use audit::{AuditEvent, AuditObjectRef, AuditResponseStatus, AuditUser};
pub use cluster::{Cluster, cluster};
pub use control_plane::Component;
pub use kubelet::{mark_pod_ready, mark_pod_succeeded};
pub use namespace::TestNamespace;
pub use nodes::{FaultInPlace, NodeFault, NodeProcess};
pub use process::{Operator, OperatorProcess};
pub use wait::{wait_deleted, wait_for};
