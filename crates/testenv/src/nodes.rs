//! The cluster's nodes as this machine holds them, and the faults `hack/node.sh` puts on them
//! (docs/node.md): for tests of what happens when a node is lost.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Cluster;

/// What `hack/node.sh` does to a node; each has its opposite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFault {
    /// A crashed machine: network cut, every process killed.
    Stop,
    Start,
    /// Cut off from the other nodes and the API server; everything keeps running.
    Partition,
    Heal,
    /// A hung machine: every process stopped with SIGSTOP.
    Freeze,
    Thaw,
}

impl NodeFault {
    fn command(self) -> &'static str {
        match self {
            NodeFault::Stop => "stop",
            NodeFault::Start => "start",
            NodeFault::Partition => "partition",
            NodeFault::Heal => "heal",
            NodeFault::Freeze => "freeze",
            NodeFault::Thaw => "thaw",
        }
    }
}

impl NodeFault {
    /// The fault that undoes this one (itself for the undoing ones).
    pub fn undo(self) -> NodeFault {
        match self {
            NodeFault::Stop => NodeFault::Start,
            NodeFault::Partition => NodeFault::Heal,
            NodeFault::Freeze => NodeFault::Thaw,
            undoing => undoing,
        }
    }
}

/// A fault in place on a node until this is dropped, also when a test fails on the way, so
/// the tests after it find every node up.
#[must_use]
pub struct FaultInPlace {
    cluster: &'static Cluster,
    node: String,
    undo: Option<NodeFault>,
}

impl FaultInPlace {
    /// Undoes the fault now, failing with `hack/node.sh`'s output when that fails.
    pub fn undo(mut self) -> Result<()> {
        match self.undo.take() {
            Some(undo) => self.cluster.node_fault(undo, &self.node),
            None => Ok(()),
        }
    }
}

impl Drop for FaultInPlace {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take()
            && let Err(e) = self.cluster.node_fault(undo, &self.node)
        {
            eprintln!("undoing a fault on {}: {e:#}", self.node);
        }
    }
}

/// A process of a node, with its state letter from `/proc/<pid>/stat` (`T` when stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProcess {
    pub pid: u32,
    pub state: char,
}

impl Cluster {
    /// Puts `fault` on `node` until the returned guard is dropped or undone.
    pub fn fault_in_place(&'static self, fault: NodeFault, node: &str) -> Result<FaultInPlace> {
        self.node_fault(fault, node)?;
        Ok(FaultInPlace {
            cluster: self,
            node: node.to_string(),
            undo: Some(fault.undo()),
        })
    }

    /// Runs `hack/node.sh <fault> <node>`; fails with its output when it does.
    pub fn node_fault(&self, fault: NodeFault, node: &str) -> Result<()> {
        let output = Command::new(self.repo().join("hack/node.sh"))
            .args([fault.command(), node])
            .env("PGOP_CLUSTER_DIR", self.state_dir())
            .output()
            .context("running hack/node.sh")?;
        if !output.status.success() {
            bail!(
                "hack/node.sh {} {node} failed: {}",
                fault.command(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Every process of `node` (daemons, shims, containers), from its cgroup.
    pub fn node_processes(&self, node: &str) -> Result<Vec<NodeProcess>> {
        let mut processes = Vec::new();
        collect_processes(&Path::new("/sys/fs/cgroup/pids").join(node), &mut processes)?;
        Ok(processes)
    }

    /// Where the host sees `node`'s directory (its volumes are in `volumes/`).
    pub fn node_dir(&self, node: &str) -> PathBuf {
        Path::new("/var/lib/pgop-nodes").join(node)
    }

    /// The file that holds `node`'s network namespace, for `nsenter --net=`: a look at the
    /// node from inside, where a partition does not reach.
    pub fn node_netns(&self, node: &str) -> PathBuf {
        Path::new("/run/pgop-nodes").join(format!("{node}.net"))
    }
}

fn collect_processes(cgroup: &Path, into: &mut Vec<NodeProcess>) -> Result<()> {
    let procs = std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .with_context(|| format!("reading {}/cgroup.procs", cgroup.display()))?;
    for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        // Gone since the list was read: not a process of the node any more.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The state follows the command name, which may hold spaces: after the last ')'.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .unwrap_or('?');
        into.push(NodeProcess { pid, state });
    }
    for entry in std::fs::read_dir(cgroup)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            collect_processes(&entry.path(), into)?;
        }
    }
    Ok(())
}
