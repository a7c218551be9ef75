//! Finding a Backup's artifacts on the disk of the node that holds them, and checking them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use api::{Backup, names};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::{Api, Client};
use sha2::{Digest, Sha256};

use crate::POD_START;

/// The bytes of the newest artifact of a PVC-destination Backup, read from the volume's
/// directory on its node (a hostPath PersistentVolume from local-path-provisioner).
pub async fn artifact_bytes(client: &Client, ns: &str, backup: &Backup) -> Result<Vec<u8>> {
    let location = backup
        .status
        .as_ref()
        .and_then(|s| s.backup_location.clone())
        .context("Backup without a backupLocation")?;
    let path_in_claim = location
        .strip_prefix("pvc://")
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, path)| path.to_string())
        .with_context(|| format!("not a pvc:// location: {location}"))?;
    let file = claim_dir(client, ns, backup).await?.join(&path_in_claim);
    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))
}

/// The directory, as this machine sees it, that holds a PVC-destination Backup's claim (a
/// hostPath PersistentVolume from local-path-provisioner on one of the nodes): runs are
/// `<database>/<backup>/<run id>/`.
/// Waits for the claim to be bound, which happens as its first Job's Pod is scheduled.
pub async fn claim_dir(client: &Client, ns: &str, backup: &Backup) -> Result<PathBuf> {
    let claim_name = backup
        .spec
        .destination
        .pvc
        .as_ref()
        .and_then(|p| p.claim_name.clone())
        .unwrap_or_else(|| names::backup_claim(&backup.metadata.name.clone().unwrap_or_default()));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let bound = |c: Option<&PersistentVolumeClaim>| {
        c.and_then(|c| c.spec.as_ref())
            .is_some_and(|s| s.volume_name.is_some())
    };
    let claim = testenv::wait_for(&claims, &claim_name, bound, POD_START).await?;
    let volume_name = claim
        .spec
        .and_then(|s| s.volume_name)
        .context("the backup claim is not bound")?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let volume = volumes.get(&volume_name).await?;
    volume_dir_on_host(&volume)
}

/// Where the host sees a local-path volume: each node has its volumes in
/// `/var/lib/pgop-nodes/<node>/volumes/<pv>` (hack/lib/node.sh), and the volume's node
/// affinity names the node (its hostPath is the path inside that node).
fn volume_dir_on_host(volume: &PersistentVolume) -> Result<PathBuf> {
    let name = volume
        .metadata
        .name
        .as_deref()
        .context("volume without a name")?;
    let node = volume
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .and_then(|r| r.node_selector_terms.first())
        .and_then(|t| t.match_expressions.as_ref())
        .and_then(|e| e.iter().find(|e| e.key == "kubernetes.io/hostname"))
        .and_then(|e| e.values.as_ref())
        .and_then(|v| v.first())
        .with_context(|| format!("volume {name} is not pinned to a node"))?;
    Ok(PathBuf::from("/var/lib/pgop-nodes")
        .join(node)
        .join("volumes")
        .join(name))
}

/// Hex SHA-256, computed here rather than trusted from anyone's status.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
