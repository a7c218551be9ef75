//! The operator's own view of an S3 destination: it reads the manifests to verify what a
//! Job reported, lists what exists for the status history, and deletes the artifacts of a
//! Backup with `deletionPolicy: Delete`. A claim is only reachable from inside a Pod, so
//! for claims the Jobs do this work instead.

use std::time::Duration;

use api::names;
use api::{BackupRecord, S3Destination, SecretString};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::pod_template::plain_http;
use super::time::to_time;
use backup_data::purge::{PurgeReport, purge};
use backup_data::storage::{BackupRef, Manifest, S3Config, Storage, StorageConfig, StorageError};
use backup_job::report::RunSummary;
use error_text::describe;

/// The operator retries a storage request this long; its reconcile must not hang as long as
/// a Job may.
const RETRY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    #[error(
        "the S3 credentials Secret {name} does not exist in namespace {namespace}; create it with keys {} and {}",
        names::S3_ACCESS_KEY_ID,
        names::S3_SECRET_ACCESS_KEY
    )]
    SecretNotFound { name: String, namespace: String },

    #[error("the S3 credentials Secret {name} has no key {key}; add it")]
    SecretKeyMissing { name: String, key: &'static str },

    #[error("could not read the S3 credentials Secret {name}")]
    SecretRead {
        name: String,
        #[source]
        source: kube::Error,
    },

    #[error("the artifacts in {location} cannot be reached: {reason}")]
    Storage { location: String, reason: String },
}

impl ArtifactsError {
    fn storage(s3: &S3Destination, error: &StorageError) -> Self {
        ArtifactsError::Storage {
            location: format!("s3://{}", s3.bucket),
            reason: describe(error),
        }
    }
}

/// The series a Backup writes, as the Jobs file it (see `pod_template::series`).
/// Kubernetes names are always valid path segments, so the error is theoretical.
pub fn series(database: &str, backup: &str) -> Result<BackupRef, ArtifactsError> {
    BackupRef::new(database, backup).map_err(|error| ArtifactsError::Storage {
        location: format!("{database}/{backup}"),
        reason: error.to_string(),
    })
}

/// Opens an S3 destination with the credentials from its Secret: a `get` of that one
/// Secret, by name, is all the Secret access this operator has.
pub async fn open_s3(
    secrets: &Api<Secret>,
    namespace: &str,
    s3: &S3Destination,
) -> Result<Storage, ArtifactsError> {
    let name = &s3.credentials_secret.name;
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|source| ArtifactsError::SecretRead {
            name: name.clone(),
            source,
        })?
        .ok_or_else(|| ArtifactsError::SecretNotFound {
            name: name.clone(),
            namespace: namespace.to_string(),
        })?;
    let key = |key: &'static str| {
        secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .map(|bytes| String::from_utf8_lossy(&bytes.0).trim().to_string())
            .filter(|value| !value.is_empty())
            .ok_or_else(|| ArtifactsError::SecretKeyMissing {
                name: name.clone(),
                key,
            })
    };
    let config = S3Config {
        endpoint: Some(s3.endpoint.clone()),
        bucket: s3.bucket.clone(),
        prefix: s3.prefix.clone().unwrap_or_default(),
        region: s3.region.clone().unwrap_or_else(|| "us-east-1".into()),
        access_key_id: key(names::S3_ACCESS_KEY_ID)?,
        secret_access_key: SecretString::new(key(names::S3_SECRET_ACCESS_KEY)?),
        path_style: s3.force_path_style,
        allow_http: plain_http(s3),
        part_size_bytes: S3Config::DEFAULT_PART_SIZE_BYTES,
        retry_timeout: RETRY_TIMEOUT,
    };
    Storage::open(StorageConfig::S3(config))
        .await
        .map_err(|error| ArtifactsError::storage(s3, &error))
}

/// What checking a run against storage found.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// The run's manifest matches the Job's report; the complete runs that exist, newest
    /// first, at most `keep`.
    Verified(Vec<BackupRecord>),
    /// Storage disagrees with the report; the run does not count.
    Mismatch(String),
}

/// Checks a reported run against its manifest in storage and lists what exists. Listing
/// reads every manifest, which also re-checks that each one parses.
pub async fn verify_and_list(
    storage: &Storage,
    series: &BackupRef,
    reported: &RunSummary,
    keep: usize,
    s3: &S3Destination,
) -> Result<Checked, ArtifactsError> {
    let manifests = storage
        .list_complete(series)
        .await
        .map_err(|error| ArtifactsError::storage(s3, &error))?;
    let Some(stored) = manifests.iter().find(|m| m.run_id == reported.run_id) else {
        return Ok(Checked::Mismatch(format!(
            "run {} reported success, but no manifest of it exists under {}",
            reported.run_id,
            storage.location(&series.relative_dir())
        )));
    };
    if stored.sha256 != reported.sha256 || stored.size_bytes != reported.size_bytes {
        return Ok(Checked::Mismatch(format!(
            "run {} reported {} bytes with sha256 {}, but its manifest says {} bytes with sha256 {}",
            reported.run_id, reported.size_bytes, reported.sha256, stored.size_bytes, stored.sha256
        )));
    }
    let records = manifests
        .iter()
        .take(keep)
        .filter_map(|m| record(storage, m))
        .collect();
    Ok(Checked::Verified(records))
}

fn record(storage: &Storage, manifest: &Manifest) -> Option<BackupRecord> {
    let run = manifest.run().ok()?;
    Some(BackupRecord {
        run_id: manifest.run_id.clone(),
        time: to_time(manifest.time),
        location: storage.artifact_location(&run),
        size_bytes: i64::try_from(manifest.size_bytes).unwrap_or(i64::MAX),
        sha256: manifest.sha256.clone(),
        verified: None,
        compression: Some(manifest.compression.to_string()),
        compression_note: manifest.compression_note.clone(),
    })
}

/// Deletes every artifact of the series.
pub async fn delete_all(
    storage: &Storage,
    series: &BackupRef,
    s3: &S3Destination,
) -> Result<PurgeReport, ArtifactsError> {
    purge(storage, series)
        .await
        .map_err(|error| ArtifactsError::storage(s3, &error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_data::storage::RunId;
    use chrono::TimeZone as _;

    fn s3() -> S3Destination {
        serde_json::from_value(serde_json::json!({
            "endpoint": "http://minio:9000", "bucket": "backups",
            "credentialsSecret": {"name": "s3"}
        }))
        .unwrap()
    }

    async fn seeded(dir: &std::path::Path, runs: &[&str]) -> (Storage, BackupRef) {
        let config = StorageConfig::Directory {
            path: dir.to_owned(),
        };
        let storage = Storage::open(config).await.unwrap();
        let series = series("shop", "nightly").unwrap();
        for (hour, run_id) in runs.iter().enumerate() {
            let run = series.run(RunId::new(run_id).unwrap());
            let digest = storage.put_artifact(&run, &b"dump"[..]).await.unwrap();
            let time = chrono::Utc
                .with_ymd_and_hms(2026, 1, 1, hour as u32, 0, 0)
                .unwrap();
            storage
                .put_manifest(&Manifest::new(&run, time, "17", &digest))
                .await
                .unwrap();
        }
        (storage, series)
    }

    fn reported(storage_sha: &str, run_id: &str, size: u64) -> RunSummary {
        RunSummary {
            location: String::new(),
            size_bytes: size,
            sha256: storage_sha.into(),
            run_id: run_id.into(),
            time: "2026-01-01T02:00:00Z".into(),
            server_version: "17".into(),
            compression: None,
            pruned: None,
            pruned_omitted: None,
            warnings: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_matching_report_is_verified_and_history_is_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, series) = seeded(dir.path(), &["r1", "r2", "r3"]).await;
        let sha = storage.list_complete(&series).await.unwrap()[0]
            .sha256
            .clone();
        let checked = verify_and_list(&storage, &series, &reported(&sha, "r3", 4), 2, &s3())
            .await
            .unwrap();
        let Checked::Verified(records) = checked else {
            panic!("not verified: {checked:?}")
        };
        let ids: Vec<_> = records.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["r3", "r2"]);
    }

    #[tokio::test]
    async fn a_report_storage_disagrees_with_is_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, series) = seeded(dir.path(), &["r1"]).await;
        // (reported sha256, run id, size, words the verdict must contain)
        let sha = storage.list_complete(&series).await.unwrap()[0]
            .sha256
            .clone();
        let rows = [
            ("00", "r1", 4, "but its manifest says"),
            (sha.as_str(), "r1", 5, "but its manifest says"),
            (sha.as_str(), "r9", 4, "no manifest of it exists"),
        ];
        for (sha, run_id, size, words) in rows {
            let checked =
                verify_and_list(&storage, &series, &reported(sha, run_id, size), 7, &s3())
                    .await
                    .unwrap();
            match checked {
                Checked::Mismatch(why) => assert!(why.contains(words), "{why}"),
                other => panic!("{run_id}: {other:?}"),
            }
        }
    }
}
