//! Base backups of a physical Backup (pure parts): the Job of one run, running
//! `base-backup` against the primary, and what its result line means for the history.
//! Runs share the logical runs' schedule, Job names, labels and history; only the command
//! and the result differ.

use api::{Backup, BackupRecord};
use backup_data::base_backup::BaseCompression;
use backup_data::base_backup::manifest::BaseManifest;
use backup_data::base_backup::store::archive_key;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt as _;
use serde::Deserialize;

use super::job::run_job;
use crate::controller::artifacts;
use crate::controller::job_runs::Report;
use crate::controller::pod_template::{
    Destination, JobSettings, connection, job_destination, series,
};
use crate::controller::scratch;
use crate::controller::time::to_time;
use backup_job::BaseBackupJob;

/// The Job of base backup run `run_id`. It connects to the primary (the read-write
/// Service): the archiver streams from there, and `source` (which picks a standby for
/// dumps) does not apply. pg_basebackup streams the tar to storage, so /tmp stays small.
pub fn base_backup_job(backup: &Backup, run_id: &str, settings: &JobSettings) -> Job {
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let database = &backup.spec.database_ref.name;
    let destination = Destination::of(backup);
    let env = BaseBackupJob {
        connection: connection(database, &namespace),
        series: series(database, &name),
        run_id: run_id.into(),
        // The schema keeps it within 1..=100; 0 makes the Job fail naming the setting.
        retention: u32::try_from(backup.spec.retention).unwrap_or(0),
        destination: job_destination(&destination),
    }
    .env();
    run_job(backup, run_id, "base-backup", env, scratch::SMALL, settings)
}

/// The result line of `base-backup` (WAL-ARCHIVING.md, "CLI contract").
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BaseOutcome {
    pub result: String,
    pub base_backup: Option<BaseManifest>,
    #[serde(default)]
    pub pruned_base_backups: Vec<String>,
    pub run_id: Option<String>,
    pub error: Option<String>,
}

/// A base backup the Job reported: its manifest and the runs retention removed.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseSummary {
    pub manifest: BaseManifest,
    pub pruned: Vec<String>,
}

impl Report for BaseOutcome {
    type Summary = BaseSummary;
    fn parse(message: &str) -> Option<Self> {
        serde_json::from_str(message.trim()).ok()
    }
    fn into_result(self) -> Result<BaseSummary, String> {
        match (self.result.as_str(), self.base_backup) {
            ("Succeeded", Some(manifest)) => Ok(BaseSummary {
                manifest,
                pruned: self.pruned_base_backups,
            }),
            // The line was cut to fit the termination message: the run is not recorded
            // rather than recorded without its checksum.
            ("Succeeded", None) => Err(format!(
                "base backup {} reported success without its manifest; see the Job's log",
                self.run_id.unwrap_or_default()
            )),
            _ => Err(self
                .error
                .unwrap_or_else(|| format!("base backup ended with result {}", self.result))),
        }
    }
}

/// Where a base backup's archive is, as users read it: the claim's name for a claim, the
/// S3 URL otherwise.
pub fn location(backup: &Backup, manifest: &BaseManifest) -> Result<String, String> {
    let run = manifest.run().map_err(|e| e.to_string())?;
    let compression = BaseCompression::parse(&manifest.compression).ok_or_else(|| {
        format!(
            "base backup {} has an unknown compression {:?}",
            manifest.run_id, manifest.compression
        )
    })?;
    let key = archive_key(&run, compression);
    Ok(match Destination::of(backup) {
        Destination::Claim { name, .. } => format!("pvc://{name}/{key}"),
        Destination::S3(s3) => {
            let prefix = s3.prefix.as_deref().unwrap_or_default().trim_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            format!("s3://{}/{prefix}{key}", s3.bucket)
        }
    })
}

/// The history record of a base backup.
pub fn record(backup: &Backup, manifest: &BaseManifest) -> Result<BackupRecord, String> {
    Ok(BackupRecord {
        run_id: manifest.run_id.clone(),
        time: to_time(manifest.end_time),
        location: location(backup, manifest)?,
        size_bytes: i64::try_from(manifest.size_bytes).unwrap_or(i64::MAX),
        sha256: manifest.sha256.clone(),
        verified: None,
        compression: Some(manifest.compression.clone()),
        compression_note: None,
    })
}

/// The series' reference, for reading a manifest back from S3.
pub fn series_ref(
    backup: &Backup,
) -> Result<backup_data::storage::BackupRef, artifacts::ArtifactsError> {
    artifacts::series(&backup.spec.database_ref.name, &backup.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backup(destination: serde_json::Value) -> Backup {
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "pitr", "namespace": "prod", "uid": "u-1"},
            "spec": {"databaseRef": {"name": "shop"}, "method": "physical", "retention": 2,
                "destination": destination}
        }))
        .unwrap()
    }

    fn manifest() -> serde_json::Value {
        json!({"database": "shop", "backupName": "pitr", "runId": "20261206T070000Z",
            "format": "pg_basebackup-tar", "compression": "lz4", "startLsn": "0/2000028",
            "endLsn": "0/2000100", "timeline": 1, "walSegmentSize": 16777216u64,
            "startTime": "2026-12-06T07:00:00Z", "endTime": "2026-12-06T07:00:05Z",
            "serverVersion": "17.2", "sizeBytes": 4096, "sha256": "ab"})
    }

    #[test]
    fn the_base_backup_job_runs_base_backup_against_the_primary_with_retention() {
        let settings = JobSettings {
            image: "pgop/backup-operator:dev".into(),
            active_deadline_seconds: 3600,
        };
        let job = base_backup_job(&backup(json!({"pvc": {}})), "20261206T070000Z", &settings);
        let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let container = &pod.containers[0];
        assert_eq!(container.args, Some(vec!["base-backup".to_string()]));
        let env: Vec<_> = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .filter_map(|e| Some(format!("{}={}", e.name, e.value.as_ref()?)))
            .collect();
        for want in [
            "PGHOST=shop.prod.svc",
            "BACKUP_RUN_ID=20261206T070000Z",
            "BACKUP_RETENTION=2",
            "BACKUP_DESTINATION_PATH=/backups",
        ] {
            assert!(env.contains(&want.to_string()), "{want} in {env:?}");
        }
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(job.metadata.name.as_deref(), Some("pitr-20261206t070000z"));
    }

    #[test]
    fn a_result_line_becomes_a_record_or_a_failure() {
        let line = json!({"result": "Succeeded", "baseBackup": manifest(),
            "prunedBaseBackups": ["20261205T070000Z"], "prunedWalFiles": 3});
        let summary = BaseOutcome::parse(&line.to_string())
            .unwrap()
            .into_result()
            .unwrap();
        assert_eq!(summary.pruned, ["20261205T070000Z"]);
        let record = record(&backup(json!({"pvc": {}})), &summary.manifest).unwrap();
        assert_eq!(
            record.location,
            "pvc://pitr-artifacts/shop/pitr/base/20261206T070000Z/base.tar.lz4"
        );
        assert_eq!((record.size_bytes, record.sha256.as_str()), (4096, "ab"));
        let s3 = backup(
            json!({"s3": {"endpoint": "http://minio:9000", "bucket": "b",
            "prefix": "team/", "credentialsSecret": {"name": "s"}}}),
        );
        assert_eq!(
            location(&s3, &summary.manifest).unwrap(),
            "s3://b/team/shop/pitr/base/20261206T070000Z/base.tar.lz4"
        );
        let failed = json!({"result": "Failed", "error": "pg_basebackup: could not connect"});
        assert_eq!(
            BaseOutcome::parse(&failed.to_string())
                .unwrap()
                .into_result(),
            Err("pg_basebackup: could not connect".into())
        );
        let cut = json!({"result": "Succeeded", "runId": "20261206T070000Z"});
        let error = BaseOutcome::parse(&cut.to_string())
            .unwrap()
            .into_result()
            .unwrap_err();
        assert!(error.contains("without its manifest"), "{error}");
    }
}
