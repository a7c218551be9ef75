//! Whether this restore's pg_restore can read an artifact, decided from its manifest before
//! anything is downloaded. Pure, so every refusal is tested with its message.

use crate::pg::PgVersion;
use crate::storage::Manifest;
use crate::storage::manifest::KNOWN_FORMATS;

/// `None` when `pg_restore` (of version `pg_restore`) can read the artifact; otherwise one
/// sentence naming what is needed.
pub fn refusal(manifest: &Manifest, pg_restore: &PgVersion) -> Option<String> {
    if !KNOWN_FORMATS.contains(&manifest.format.as_str()) {
        return Some(format!(
            "its format {:?} is unknown to this backup-operator, which reads {}; restore it with the backup-operator version that wrote it or a newer one",
            manifest.format,
            KNOWN_FORMATS.join(" and ")
        ));
    }
    // An archive of a newer pg_dump may use an archive version pg_restore rejects halfway.
    if let Some(written) = &manifest.pg_dump_version {
        let Ok(dumped) = PgVersion::from_tool_output(written) else {
            return Some(format!(
                "its manifest names pg_dump version {written:?}, which cannot be read; restore it with the tools that wrote it"
            ));
        };
        if dumped.major > pg_restore.major {
            return Some(format!(
                "it was written by pg_dump {dumped}, and needs pg_restore {} or newer, but this is pg_restore {pg_restore}: use a backup image with PostgreSQL {} tools or set {}",
                dumped.major,
                dumped.major,
                backup_job::env::PG_BIN_DIR
            ));
        }
    }
    let algorithm = manifest.compression.algorithm;
    if pg_restore.major < algorithm.needs_major() {
        return Some(format!(
            "it is compressed with {}, which needs pg_restore {} or newer, but this is pg_restore {pg_restore}: use a backup image with newer PostgreSQL tools or set {}",
            algorithm.as_str(),
            algorithm.needs_major(),
            backup_job::env::PG_BIN_DIR
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Compression;

    fn manifest(format: &str, compression: &str, pg_dump: Option<&str>) -> Manifest {
        let json = serde_json::json!({
            "database": "app", "backupName": "nightly", "runId": "r1",
            "time": "2025-01-01T02:00:00Z", "serverVersion": "17.2", "sizeBytes": 1,
            "sha256": "ab", "format": format,
            "compression": compression.parse::<Compression>().unwrap(),
            "jobs": 1, "pgDumpVersion": pg_dump,
        });
        serde_json::from_value(json).unwrap()
    }

    fn v(major: u32, minor: u32) -> PgVersion {
        PgVersion { major, minor }
    }

    #[test]
    fn readable_artifacts_pass() {
        for (format, compression, pg_dump, pg_restore) in [
            ("pg_dump-custom", "zstd", Some("17.2"), v(17, 2)),
            ("pg_dump-directory-tar", "lz4:4", Some("16.1"), v(17, 0)),
            ("pg_dump-custom", "gzip", None, v(15, 8)),
            ("pg_dump-custom", "none", Some("15.8"), v(17, 2)),
        ] {
            let manifest = manifest(format, compression, pg_dump);
            assert_eq!(refusal(&manifest, &pg_restore), None, "{manifest:?}");
        }
    }

    #[test]
    fn unreadable_artifacts_are_refused_naming_what_is_needed() {
        let cases = [
            (
                manifest("pg_dump-plain", "gzip", None),
                v(17, 2),
                "format \"pg_dump-plain\" is unknown",
            ),
            (
                manifest("pg_dump-custom", "gzip", Some("18.1")),
                v(17, 2),
                "written by pg_dump 18.1, and needs pg_restore 18 or newer, but this is pg_restore 17.2",
            ),
            (
                manifest("pg_dump-custom", "zstd", Some("15.8")),
                v(15, 8),
                "compressed with zstd, which needs pg_restore 16 or newer",
            ),
        ];
        for (manifest, pg_restore, expected) in cases {
            let message = refusal(&manifest, &pg_restore).expect("refused");
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }
}
