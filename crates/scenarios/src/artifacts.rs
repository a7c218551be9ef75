//! Finding a Backup's artifacts on this node's disk, and checking them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use api::{Backup, names};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::{Api, Client};
use sha2::{Digest, Sha256};

use crate::POD_START;

/// The bytes of the newest artifact of a PVC-destination Backup, read from the volume's
/// directory on this node (a hostPath PersistentVolume from local-path-provisioner).
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

/// The directory on this node that holds a PVC-destination Backup's claim (a hostPath
/// PersistentVolume from local-path-provisioner): runs are `<database>/<backup>/<run id>/`.
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
    let host_path = volume
        .spec
        .and_then(|s| s.host_path)
        .context("the backup volume is not a hostPath volume")?
        .path;
    Ok(PathBuf::from(host_path))
}

/// Hex SHA-256, computed here rather than trusted from anyone's status.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
