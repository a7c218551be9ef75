//! `manifest.json`: written last, its presence is what makes a run complete.

use super::layout::{BackupRef, InvalidName, RunId, RunRef};
use crate::digest::ContentDigest;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The only artifact format this version writes and restores.
pub const FORMAT_PG_DUMP_CUSTOM: &str = "pg_dump-custom";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub database: String,
    pub backup_name: String,
    pub run_id: String,
    /// When the dump started, which is the point in time it captures.
    #[serde(with = "rfc3339_seconds")]
    pub time: DateTime<Utc>,
    /// `SHOW server_version` of the server that was dumped.
    pub server_version: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub format: String,
    /// Rows of each user table (`schema.table`), counted in the snapshot the dump was taken
    /// from; a restore drill compares them. Absent in manifests written before they were
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_counts: Option<crate::row_counts::RowCounts>,
}

impl Manifest {
    pub fn new(
        run: &RunRef,
        time: DateTime<Utc>,
        server_version: &str,
        digest: &ContentDigest,
    ) -> Self {
        Self {
            database: run.backup.database().to_owned(),
            backup_name: run.backup.backup().to_owned(),
            run_id: run.run_id.to_string(),
            time,
            server_version: server_version.to_owned(),
            size_bytes: digest.size_bytes,
            sha256: digest.sha256.clone(),
            format: FORMAT_PG_DUMP_CUSTOM.to_owned(),
            row_counts: None,
        }
    }

    /// The run this manifest describes; fails when the file was edited into
    /// names the layout cannot hold.
    pub fn run(&self) -> Result<RunRef, InvalidName> {
        Ok(BackupRef::new(&self.database, &self.backup_name)?.run(RunId::new(&self.run_id)?))
    }

    pub fn digest(&self) -> ContentDigest {
        ContentDigest {
            size_bytes: self.size_bytes,
            sha256: self.sha256.clone(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        json.push(b'\n');
        json
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Newest first; the run id breaks ties so the order is total and stable.
pub fn sort_newest_first(manifests: &mut [Manifest]) {
    manifests.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.run_id.cmp(&a.run_id)));
}

/// Whole seconds, `Z` suffix: what people and `date -d` read most easily.
mod rfc3339_seconds {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample(run_id: &str, hour: u32) -> Manifest {
        let run = BackupRef::new("app", "nightly")
            .unwrap()
            .run(RunId::new(run_id).unwrap());
        let digest = ContentDigest {
            size_bytes: 42,
            sha256: "ab".repeat(32),
        };
        let time = Utc.with_ymd_and_hms(2025, 1, 1, hour, 0, 0).unwrap();
        Manifest::new(&run, time, "15.8", &digest)
    }

    #[test]
    fn json_uses_the_documented_field_names() {
        let json: serde_json::Value = serde_json::from_slice(&sample("r1", 2).to_json()).unwrap();
        assert_eq!(json["database"], "app");
        assert_eq!(json["backupName"], "nightly");
        assert_eq!(json["runId"], "r1");
        assert_eq!(json["time"], "2025-01-01T02:00:00Z");
        assert_eq!(json["serverVersion"], "15.8");
        assert_eq!(json["sizeBytes"], 42);
        assert_eq!(json["format"], "pg_dump-custom");
    }

    #[test]
    fn round_trips_through_json() {
        let manifest = sample("r1", 2);
        assert_eq!(Manifest::from_json(&manifest.to_json()).unwrap(), manifest);
    }

    #[test]
    fn manifests_without_row_counts_still_parse() {
        let mut json: serde_json::Value =
            serde_json::from_slice(&sample("r1", 2).to_json()).unwrap();
        assert!(json.get("rowCounts").is_none(), "absent when not recorded");
        json["rowCounts"] = serde_json::json!({"public.t": 3});
        let with_counts = Manifest::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(
            with_counts.row_counts,
            Some([("public.t".to_string(), 3)].into())
        );
        let old = Manifest::from_json(&sample("r1", 2).to_json()).unwrap();
        assert_eq!(old.row_counts, None);
    }

    #[test]
    fn sorts_newest_first() {
        let mut manifests = vec![sample("a", 1), sample("c", 3), sample("b", 2)];
        sort_newest_first(&mut manifests);
        let ids: Vec<_> = manifests.iter().map(|m| m.run_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
    }
}
