//! The controller-runtime operator of `bench/controller-runtime`: a Go operator doing the job
//! of both of ours for the benchmark's objects, measured beside them (`BENCH_COMPARE`).
//!
//! It is built by `hack/build-comparison-operator.sh` (cached under `~/.cache/pg-operators`)
//! and runs as a host process under its own ServiceAccount,
//! `controller-runtime-operator-system/controller-runtime-operator`, whose only rights are
//! the Role of `bench/controller-runtime/rbac/role.yaml` in the namespace being measured.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kube::config::Kubeconfig;
use testenv::Cluster;
use tokio::process::Command;

use crate::binaries::{output, run};

/// The binary's and the ServiceAccount's name.
pub const NAME: &str = "controller-runtime-operator";
/// The namespace of its ServiceAccount.
const NAMESPACE: &str = "controller-runtime-operator-system";

/// The username the API server sees, as in audit events.
pub fn username() -> String {
    format!("system:serviceaccount:{NAMESPACE}:{NAME}")
}

fn source() -> PathBuf {
    crate::binaries::repo_root().join("bench/controller-runtime")
}

/// Builds the operator, or finds the build of the same sources, and returns its path.
pub async fn build() -> Result<PathBuf> {
    let script = crate::binaries::repo_root().join("hack/build-comparison-operator.sh");
    let stdout = output(&mut Command::new(&script)).await?;
    stdout
        .lines()
        .last()
        .and_then(|line| line.strip_prefix("COMPARISON_OPERATOR="))
        .map(PathBuf::from)
        .with_context(|| format!("{} printed no COMPARISON_OPERATOR=", script.display()))
}

/// The version of controller-runtime in its go.mod, for the report.
pub fn controller_runtime_version() -> Result<String> {
    let path = source().join("go.mod");
    let go_mod =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    bench::readings::go_module_version(&go_mod, "sigs.k8s.io/controller-runtime")
        .map(str::to_string)
        .with_context(|| format!("no sigs.k8s.io/controller-runtime in {}", path.display()))
}

/// Creates its namespace and ServiceAccount (no rights yet).
pub async fn create_service_account(cluster: &Cluster) -> Result<()> {
    apply(cluster, None, &source().join("rbac/serviceaccount.yaml")).await
}

/// Grants it what it needs in `namespace`.
pub async fn grant(cluster: &Cluster, namespace: &str) -> Result<()> {
    apply(cluster, Some(namespace), &source().join("rbac/role.yaml")).await
}

async fn apply(cluster: &Cluster, namespace: Option<&str>, file: &Path) -> Result<()> {
    let mut kubectl = Command::from(cluster.kubectl());
    kubectl.arg("apply");
    if let Some(namespace) = namespace {
        kubectl.arg("--namespace").arg(namespace);
    }
    run(kubectl.arg("-f").arg(file))
        .await
        .with_context(|| format!("applying {}", file.display()))
}

/// A kubeconfig acting as its ServiceAccount, with a token from the TokenRequest API valid
/// for a day: the admin kubeconfig's cluster, no client certificate. Written beside the
/// operators' own (`<cluster state>/<name>.kubeconfig`).
pub async fn kubeconfig(cluster: &Cluster) -> Result<PathBuf> {
    let token = cluster
        .service_account_token(NAMESPACE, NAME, 24 * 3600)
        .await?;
    let admin = Kubeconfig::read_from(cluster.admin_kubeconfig())
        .context("reading the admin kubeconfig")?;
    let server = admin
        .clusters
        .first()
        .context("the admin kubeconfig names no cluster")?;
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [server],
        "users": [{"name": NAME, "user": {"token": token}}],
        "contexts": [{"name": NAME, "context": {"cluster": server.name, "user": NAME}}],
        "current-context": NAME,
    });
    let path = cluster.state_dir().join(format!("{NAME}.kubeconfig"));
    write_private(&path, &serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes a file only its owner can read: it holds a token.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}
