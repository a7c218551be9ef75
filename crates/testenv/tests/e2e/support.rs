//! Talking to the PostgreSQL a Database runs, and finding its backup artifacts on disk.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use api::{Backup, Database, names};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret, Service};
use kube::{Api, Client};
use sha2::{Digest, Sha256};

/// Pod start-up (image already present, initdb on first start) and Jobs take seconds here;
/// the bound only has to survive a busy two-core machine.
pub const POD_START: Duration = Duration::from_secs(240);

/// The image every test Database runs: built locally by hack/images.sh from Debian's
/// postgresql-17.
pub const POSTGRES_IMAGE: &str = "postgres:17";

/// Runs SQL as the Database's owner through its client Service (ClusterIP, routed by
/// kube-proxy), with the credentials from its Secret: what an application in the cluster does.
pub async fn psql(client: &Client, ns: &str, database: &str, sql: &str) -> Result<String> {
    let env = connection_env(client, ns, database).await?;
    // kube-proxy programs a Service's rules about a second after its endpoints change, so a
    // client that connects the moment the Database turned Ready may be refused. "No route to
    // host" was seen once at that moment too (a cold CI run, with other tests' Pods coming and
    // going on the bridge; most likely the host still resolving the address of a reused Pod
    // IP). Like any client it retries those two, briefly; every other failure fails at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let output = loop {
        let output = Command::new("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .context("running psql (Debian package postgresql-client)")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let unreachable = ["Connection refused", "No route to host"]
            .iter()
            .any(|transient| stderr.contains(transient));
        if output.status.success() || !unreachable || std::time::Instant::now() > deadline {
            break output;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if !output.status.success() {
        bail!(
            "psql against {database} ({}) failed: {}",
            env[0].1,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The libpq environment (`PGHOST`, `PGUSER`, ...) that connects to the Database's client
/// Service as its owner, for [`psql`] and for sessions a test keeps open.
pub async fn connection_env(
    client: &Client,
    ns: &str,
    database: &str,
) -> Result<Vec<(&'static str, String)>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = secrets.get(&names::credentials_secret(database)).await?;
    let data = secret.data.context("credentials Secret without data")?;
    let field = |key: &str| -> Result<String> {
        let bytes = data
            .get(key)
            .with_context(|| format!("credentials Secret lacks {key}"))?;
        Ok(String::from_utf8(bytes.0.clone())?)
    };
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let service = services.get(&names::client_service(database)).await?;
    let ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .context("client Service without a ClusterIP")?;
    Ok(vec![
        ("PGHOST", ip),
        ("PGPORT", names::POSTGRES_PORT.to_string()),
        ("PGUSER", field(names::SECRET_USERNAME)?),
        ("PGPASSWORD", field(names::SECRET_PASSWORD)?),
        ("PGDATABASE", field(names::SECRET_DATABASE)?),
        ("PGCONNECT_TIMEOUT", "10".to_string()),
    ])
}

/// A Database manifest running the locally built PostgreSQL 17.
pub fn database_yaml(name: &str, backup_ref: Option<&str>) -> String {
    let backup_ref = backup_ref
        .map(|b| format!("  backupRef: {{name: {b}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: database.example.com/v1\nkind: Database\nmetadata:\n  name: {name}\nspec:\n  \
         image: {POSTGRES_IMAGE}\n  databaseName: shop\n  username: shop_owner\n  storage: {{size: 256Mi}}\n{backup_ref}"
    )
}

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

/// Runs the cluster's own kubectl as admin; a failure fails the test with its stderr.
pub fn kubectl(cluster: &testenv::Cluster, args: &[&str]) -> String {
    let output = cluster
        .kubectl()
        .args(args)
        .output()
        .expect("running kubectl");
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Hex SHA-256, computed here rather than trusted from anyone's status.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The Database's Ready condition reason, for failure messages and transitions.
pub fn ready_reason(db: &Database) -> String {
    db.status
        .as_ref()
        .and_then(|s| api::conditions::find(&s.conditions, api::conditions::READY))
        .map(|c| format!("{}/{}", c.status, c.reason))
        .unwrap_or_default()
}
