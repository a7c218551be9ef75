//! `manifest.json`: written last, its presence is what makes a run complete.

use super::layout::{BackupRef, InvalidName, RunId, RunRef};
use crate::compression::Compression;
use crate::digest::ContentDigest;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// `pg_dump --format=custom` written to stdout: the artifact is pg_dump's output as it is.
pub const FORMAT_PG_DUMP_CUSTOM: &str = "pg_dump-custom";
/// `pg_dump --format=directory --jobs=N`: the artifact is a tar stream of that directory's
/// files (no subdirectories), which a restore unpacks for pg_restore.
pub const FORMAT_PG_DUMP_DIRECTORY_TAR: &str = "pg_dump-directory-tar";
/// Every format this version restores.
pub const KNOWN_FORMATS: [&str; 2] = [FORMAT_PG_DUMP_CUSTOM, FORMAT_PG_DUMP_DIRECTORY_TAR];

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
    /// How pg_dump compressed the data; manifests written before this field existed are
    /// pg_dump -Fc's default, gzip.
    #[serde(default = "legacy_compression")]
    pub compression: Compression,
    /// Why `compression` is not the default, when it fell back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_note: Option<String>,
    /// pg_dump's parallel jobs; the directory format when more than 1.
    #[serde(default = "one_job")]
    pub jobs: u32,
    /// `major.minor` of the pg_dump that wrote the artifact; a pg_restore of an older major
    /// may not read it. Absent in manifests written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_dump_version: Option<String>,
}

fn legacy_compression() -> Compression {
    Compression::LEGACY
}

fn one_job() -> u32 {
    1
}

/// How a run's artifact was made, as its manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpFormat {
    pub format: &'static str,
    pub compression: Compression,
    pub compression_note: Option<String>,
    pub jobs: u32,
    pub pg_dump_version: String,
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
            compression: Compression::LEGACY,
            compression_note: None,
            jobs: 1,
            pg_dump_version: None,
        }
    }

    /// Records how the artifact was made.
    pub fn with_dump(mut self, dump: DumpFormat) -> Self {
        self.format = dump.format.to_owned();
        self.compression = dump.compression;
        self.compression_note = dump.compression_note;
        self.jobs = dump.jobs;
        self.pg_dump_version = Some(dump.pg_dump_version);
        self
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
        let dump = DumpFormat {
            format: FORMAT_PG_DUMP_DIRECTORY_TAR,
            compression: "zstd:5".parse().unwrap(),
            compression_note: None,
            jobs: 4,
            pg_dump_version: "17.2".into(),
        };
        Manifest::new(&run, time, "15.8", &digest).with_dump(dump)
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
        assert_eq!(json["format"], "pg_dump-directory-tar");
        assert_eq!(
            json["compression"],
            serde_json::json!({"algorithm": "zstd", "level": 5})
        );
        assert_eq!(json["jobs"], 4);
        assert_eq!(json["pgDumpVersion"], "17.2");
        assert!(json.get("compressionNote").is_none());
    }

    #[test]
    fn manifests_written_before_the_format_fields_read_as_custom_gzip() {
        let old = r#"{"database": "app", "backupName": "nightly", "runId": "r1",
            "time": "2025-01-01T02:00:00Z", "serverVersion": "15.8", "sizeBytes": 42,
            "sha256": "ab", "format": "pg_dump-custom"}"#;
        let manifest = Manifest::from_json(old.as_bytes()).unwrap();
        assert_eq!(manifest.format, FORMAT_PG_DUMP_CUSTOM);
        assert_eq!(manifest.compression, Compression::LEGACY);
        assert_eq!(manifest.compression.to_string(), "gzip");
        assert_eq!(manifest.jobs, 1);
        assert_eq!(manifest.pg_dump_version, None);
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
