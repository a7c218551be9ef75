//! Physical Backups in the scenarios: their manifest, what their status says of the
//! archive, and where a bucket served from the test process is reachable from Pods.

use api::Backup;
use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::Scenario;

/// A physical Backup of `database`; `destination` is the YAML of `spec.destination` (indented
/// for its place), the operator's claim when `None`. The segment being written is stored
/// every 2 s, so a test sees the window move quickly.
pub fn physical_backup_manifest(name: &str, database: &str, destination: Option<&str>) -> String {
    let destination = destination
        .map(|d| format!("  destination:\n{d}"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: database.example.com/v1
kind: Backup
metadata:
  name: {name}
spec:
  databaseRef:
    name: {database}
  method: physical
  archive:
    syncSeconds: 2
{destination}"#
    )
}

/// `spec.destination` of an S3 bucket (for [`physical_backup_manifest`]).
pub fn s3_destination(endpoint: &str, bucket: &str, prefix: &str, secret: &str) -> String {
    format!(
        "    s3:\n      endpoint: {endpoint}\n      bucket: {bucket}\n      prefix: {prefix}\n      credentialsSecret:\n        name: {secret}\n"
    )
}

/// `status.archive.lastArchivedSegment`.
pub fn archive_segment(backup: Option<&Backup>) -> Option<String> {
    backup?
        .status
        .as_ref()?
        .archive
        .as_ref()?
        .last_archived_segment
        .clone()
}

/// `status.archive.timeline`.
pub fn archive_timeline(backup: Option<&Backup>) -> Option<i64> {
    backup?.status.as_ref()?.archive.as_ref()?.timeline
}

/// The end of `status.recoverability`.
pub fn window_end(backup: Option<&Backup>) -> Option<k8s_openapi::jiff::Timestamp> {
    let window = backup?.status.as_ref()?.recoverability.as_ref()?;
    Some(window.last_recoverable_time.0)
}

/// The host's address on the cluster's network: the local address a packet to a node
/// leaves from. Pods and the host-run operators both reach a server bound there.
pub async fn host_address(scenario: &Scenario) -> std::net::IpAddr {
    let nodes: Api<Node> = Api::all(scenario.client());
    let node = nodes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let internal = node
        .status
        .and_then(|s| s.addresses)
        .into_iter()
        .flatten()
        .find(|a| a.type_ == "InternalIP")
        .expect("a node with an InternalIP");
    let ip: std::net::IpAddr = internal.address.parse().unwrap();
    // connect() on UDP sends nothing; it only picks the route, and so the source address.
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.connect((ip, 9)).unwrap();
    socket.local_addr().unwrap().ip()
}

/// A Secret named `name` with S3 credentials, as a Backup's `credentialsSecret`.
pub fn s3_secret_manifest(name: &str, access_key_id: &str, secret_access_key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  accessKeyId: {access_key_id}\n  secretAccessKey: {secret_access_key}\n"
    )
}
