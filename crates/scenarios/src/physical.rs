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

/// A 16 MiB WAL segment: its timeline and its position in the WAL (log × 256 + segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    pub timeline: u32,
    pub number: u64,
}

impl Segment {
    /// A segment's file name, `TTTTTTTTLLLLLLLLSSSSSSSS`; `None` for any other name.
    pub fn parse(name: &str) -> Option<Segment> {
        let hex = |range: std::ops::Range<usize>| {
            let part = name.get(range)?;
            part.chars()
                .all(|c| c.is_ascii_hexdigit())
                .then(|| u64::from_str_radix(part, 16).ok())?
        };
        if name.len() != 24 {
            return None;
        }
        Some(Segment {
            timeline: u32::try_from(hex(0..8)?).ok()?,
            number: hex(8..16)? * 0x100 + hex(16..24)?,
        })
    }

    /// The segment holding the WAL position `lsn` on `timeline`.
    pub fn containing(timeline: u32, lsn: u64) -> Segment {
        Segment {
            timeline,
            number: lsn >> 24,
        }
    }

    /// The first byte after the segment.
    pub fn end(&self) -> u64 {
        (self.number + 1) << 24
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:08X}{:08X}{:08X}",
            self.timeline,
            self.number / 0x100,
            self.number % 0x100
        )
    }
}

/// An LSN as PostgreSQL prints it (`X/Y`), as a byte position.
pub fn parse_lsn(lsn: &str) -> Option<u64> {
    let (high, low) = lsn.trim().split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// What a physical Backup's folder in its destination holds, read from the names alone
/// (WAL-ARCHIVING.md, "Storage layout"): what a test checks on storage itself, not in the
/// status the operator derives from it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StoredArchive {
    /// The complete segments (`wal/<segment>.<archived at>.<sha256>`).
    pub segments: std::collections::BTreeSet<Segment>,
    /// The segment being written, as last uploaded (`wal/<segment>.partial.<LSN>.…`): the
    /// segment and the LSN it is written to.
    pub partials: Vec<(Segment, u64)>,
    /// The base backups, by run id, that have their manifest (`base/<run>/manifest.json`).
    pub base_backups: std::collections::BTreeSet<String>,
}

impl StoredArchive {
    /// From paths relative to the Backup's folder (`wal/…`, `base/<run>/…`); anything else,
    /// an unfinished upload included, is passed over.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> StoredArchive {
        let mut stored = StoredArchive::default();
        for path in paths {
            if let Some(file) = path.strip_prefix("wal/") {
                let parts: Vec<&str> = file.split('.').collect();
                match parts[..] {
                    [segment, _, _] => stored.segments.extend(Segment::parse(segment)),
                    [segment, "partial", lsn, _, _] => stored.partials.extend(
                        Segment::parse(segment)
                            .zip(u64::from_str_radix(lsn, 16).ok())
                            .filter(|_| lsn.len() == 16),
                    ),
                    _ => {}
                }
            } else if let Some(run) = path
                .strip_prefix("base/")
                .and_then(|rest| rest.strip_suffix("/manifest.json"))
            {
                stored.base_backups.insert(run.to_string());
            }
        }
        stored
    }

    /// The objects of an S3 bucket (keys, as the server lists them) under `folder`, the
    /// Backup's `<prefix>/<database>/<backup>`.
    pub fn in_bucket(keys: &[String], folder: &str) -> StoredArchive {
        let folder = format!("{}/", folder.trim_end_matches('/'));
        StoredArchive::from_paths(keys.iter().filter_map(|k| k.strip_prefix(folder.as_str())))
    }

    /// The files of a claim-destination Backup, read from its volume's directory on the node.
    pub async fn on_claim(
        client: &kube::Client,
        ns: &str,
        backup: &Backup,
    ) -> anyhow::Result<StoredArchive> {
        use anyhow::Context as _;
        let folder = crate::claim_dir(client, ns, backup)
            .await?
            .join(&backup.spec.database_ref.name)
            .join(backup.metadata.name.as_deref().unwrap_or_default());
        let mut paths = Vec::new();
        let names = |dir: &std::path::Path| -> anyhow::Result<Vec<String>> {
            match std::fs::read_dir(dir) {
                Ok(entries) => Ok(entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(e).with_context(|| format!("listing {}", dir.display())),
            }
        };
        for file in names(&folder.join("wal"))? {
            paths.push(format!("wal/{file}"));
        }
        for run in names(&folder.join("base"))? {
            if folder
                .join("base")
                .join(&run)
                .join("manifest.json")
                .is_file()
            {
                paths.push(format!("base/{run}/manifest.json"));
            }
        }
        Ok(StoredArchive::from_paths(paths.iter().map(String::as_str)))
    }

    /// The complete segments missing between the first and the last stored one of `timeline`:
    /// a gap, which no recovery can cross.
    pub fn missing(&self, timeline: u32) -> Vec<Segment> {
        let numbers: Vec<u64> = self
            .segments
            .iter()
            .filter(|s| s.timeline == timeline)
            .map(|s| s.number)
            .collect();
        let (Some(first), Some(last)) = (numbers.first(), numbers.last()) else {
            return Vec::new();
        };
        (*first..=*last)
            .filter(|n| numbers.binary_search(n).is_err())
            .map(|number| Segment { timeline, number })
            .collect()
    }

    /// How far the stored WAL reaches: the end of the newest complete segment, or the
    /// written-to LSN of a newer partial one.
    pub fn written_to(&self) -> Option<u64> {
        let complete = self.segments.iter().map(Segment::end).max();
        let partial = self.partials.iter().map(|(_, lsn)| *lsn).max();
        complete.max(partial)
    }
}

/// Polls the Backup's storage until `done` holds for what it stores (storage has no watch);
/// what it stored then.
pub async fn wait_stored<F, Fut>(
    mut list: F,
    done: impl Fn(&StoredArchive) -> bool,
    timeout: std::time::Duration,
) -> anyhow::Result<StoredArchive>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<StoredArchive>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // A listing that fails (the API server busy, say) is tried again until the deadline.
        let stored = list().await;
        if stored.as_ref().is_ok_and(&done) {
            return stored;
        }
        if tokio::time::Instant::now() > deadline {
            let stored = stored?;
            anyhow::bail!("storage not as awaited after {timeout:?}; it holds {stored:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_read_as_the_archive_writes_them() {
        let stored = StoredArchive::from_paths([
            "wal/000000010000000100000003.20261206T070001123Z.9f86",
            "wal/000000010000000100000005.20261206T070001123Z.9f86",
            "wal/000000010000000100000006.partial.0000000106123456.20261206T070003000Z.ab",
            "wal/00000002.history.20261206T070002000Z.cd",
            "wal/000000010000000100000004.20261206T070001123Z.9f86.upload",
            "base/20261206T070000Z/manifest.json",
            "base/20261206T080000Z/base.tar.lz4",
        ]);
        let segment = |number| Segment {
            timeline: 1,
            number,
        };
        assert_eq!(
            stored.segments.iter().copied().collect::<Vec<_>>(),
            [segment(0x103), segment(0x105)]
        );
        assert_eq!(stored.missing(1), [segment(0x104)]);
        assert_eq!(stored.partials, [(segment(0x106), 0x1_0612_3456)]);
        assert_eq!(stored.written_to(), Some(0x1_0612_3456));
        assert_eq!(
            stored.base_backups.iter().collect::<Vec<_>>(),
            ["20261206T070000Z"]
        );
        assert_eq!(segment(0x105).to_string(), "000000010000000100000005");
        assert_eq!(
            Segment::parse("000000010000000100000005"),
            Some(segment(0x105))
        );
        assert_eq!(
            Segment::containing(1, parse_lsn("1/5123456").unwrap()),
            segment(0x105)
        );
    }
}
