//! Where a base backup sits in the WAL, from the `backup_manifest` pg_basebackup puts into
//! the tar it writes to stdout: its `WAL-Ranges` give the start (redo point, timeline) and
//! the end (consistent point). pg_basebackup prints these only when it fetches WAL itself.

use crate::wal::{Lsn, Timeline};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPoints {
    pub start: Lsn,
    pub timeline: Timeline,
    pub end: Lsn,
}

/// The first range's start and timeline, the last range's end (a backup taken on a standby
/// that was promoted meanwhile spans two timelines).
pub fn wal_points(manifest: &[u8]) -> Result<WalPoints, String> {
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| format!("backup_manifest is not JSON: {e}"))?;
    let ranges = value
        .get("WAL-Ranges")
        .and_then(|r| r.as_array())
        .filter(|r| !r.is_empty())
        .ok_or("backup_manifest has no WAL-Ranges")?;
    let lsn = |range: &serde_json::Value, field: &str| {
        range
            .get(field)
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<Lsn>().ok())
            .ok_or(format!("backup_manifest's WAL-Ranges lack a valid {field}"))
    };
    let timeline = ranges[0]
        .get("Timeline")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .and_then(|v| Timeline::new(v).ok())
        .ok_or("backup_manifest's WAL-Ranges lack a valid Timeline")?;
    Ok(WalPoints {
        start: lsn(&ranges[0], "Start-LSN")?,
        timeline,
        end: lsn(&ranges[ranges.len() - 1], "End-LSN")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_end_and_timeline_are_read() {
        let manifest = br#"{ "PostgreSQL-Backup-Manifest-Version": 2,
            "Files": [],
            "WAL-Ranges": [
                { "Timeline": 2, "Start-LSN": "0/2000028", "End-LSN": "0/3000000" },
                { "Timeline": 3, "Start-LSN": "0/3000000", "End-LSN": "0/3000158" }
            ] }"#;
        let points = wal_points(manifest).unwrap();
        assert_eq!(points.start, Lsn(0x2000028));
        assert_eq!(points.end, Lsn(0x3000158));
        assert_eq!(points.timeline, Timeline::new(2).unwrap());
    }

    #[test]
    fn a_manifest_without_ranges_is_an_error() {
        let error = wal_points(br#"{"Files": []}"#).unwrap_err();
        assert!(error.contains("WAL-Ranges"), "{error}");
    }
}
