//! The state of the machine and the cluster around a measurement, printed with its figures:
//! a run on a busy machine or beside other tests on the shared cluster reads differently.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, api::ListParams};
use testenv::Cluster;

/// The state of the machine and the cluster around a measurement.
pub struct Conditions {
    time: chrono::DateTime<chrono::Utc>,
    load: String,
    /// Test namespaces of other runs on the shared cluster: other work going on.
    other_namespaces: usize,
}

impl Conditions {
    pub async fn now(cluster: &Cluster) -> Result<Conditions> {
        let load = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
        let namespaces: Api<Namespace> = Api::all(cluster.admin_client());
        let tests = namespaces
            .list_metadata(&ListParams::default().labels("testenv.pg-operators.dev/test"))
            .await
            .context("listing test namespaces")?;
        let other_namespaces = tests
            .items
            .iter()
            .filter(|ns| {
                !ns.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("bench-"))
            })
            .count();
        Ok(Conditions {
            time: chrono::Utc::now(),
            load: load
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            other_namespaces,
        })
    }
}

pub fn describe(before: &Conditions, after: &Conditions) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "Measured {} UTC at commit {}; {cores} cores; load average {} before, {} after; \
         {} and {} test namespaces of other runs on the cluster before and after; release \
         binaries.",
        before.time.format("%Y-%m-%d %H:%M"),
        commit(),
        before.load,
        after.load,
        before.other_namespaces,
        after.other_namespaces,
    )
}

/// The checked-out commit, marked when the operators' sources differ from it.
fn commit() -> String {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
    };
    let hash = git(&["rev-parse", "--short", "HEAD"])
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let operators = [
        "crates/api",
        "crates/operator-runtime",
        "crates/database-operator",
        "crates/backup-operator",
        "crates/backup-job",
        "crates/backup-data",
        "crates/secret",
        "crates/error-text",
    ];
    let clean = git(&[&["diff", "--quiet", "HEAD", "--"][..], &operators].concat())
        .is_ok_and(|o| o.status.success());
    if clean {
        hash
    } else {
        format!("{hash} with uncommitted changes to the operators")
    }
}
