//! What the newest finished run achieved: its Job's result, checked before it counts.
//!
//! For a claim the Job itself verified the artifact before reporting success: `dump` reads
//! the manifest back and hashes the stored artifact again, and exits non-zero on any
//! difference, and the claim is not reachable from the operator's Pod anyway. For S3 the
//! operator reads the manifest itself and compares it with the report, so a Job that
//! claims success for an artifact that is not there never makes the Backup ready.

use api::{Backup, BackupMethod, BackupRecord};
use backup_data::base_backup::store::read_manifest;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::{Api, ResourceExt as _};

use super::base::{self, BaseOutcome};
use super::gather::RunJob;
use super::job::BACKUP_CONTAINER;
use crate::controller::artifacts::{self, Checked};
use crate::controller::context::Context;
use crate::controller::error::{self, Error};
use crate::controller::job_runs::{self, Finished, JobResult};
use crate::controller::pod_template::{CLAIM_MOUNT, Destination};
use crate::controller::time::{parse_rfc3339, to_time};
use backup_job::report::RunSummary;

/// How the newest finished run ended, as status reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum LastRun {
    Succeeded { run_id: String },
    Failed { run_id: String, error: String },
}

/// A run's outcome learnt in this reconcile, for Events and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Learnt {
    pub last_run: LastRun,
    /// The complete runs that exist after this one, when it succeeded.
    pub history: Option<Vec<BackupRecord>>,
    pub bytes: u64,
    pub duration_seconds: Option<f64>,
}

pub enum Resolution {
    /// Already in status (a success is recorded in the history): nothing to read.
    Known(LastRun),
    New(Learnt),
}

pub async fn resolve(ctx: &Context, backup: &Backup, run: &RunJob) -> Result<Resolution, Error> {
    let history = backup
        .status
        .as_ref()
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    if history.iter().any(|r| r.run_id == run.run_id) {
        return Ok(Resolution::Known(LastRun::Succeeded {
            run_id: run.run_id.clone(),
        }));
    }
    let namespace = backup.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let job_name = run.name();
    let found = job_runs::pods_of(&pods, &job_name)
        .await
        .map_err(error::gather("the Pods of Job", &job_name))?;
    if backup.spec.method == BackupMethod::Physical {
        return resolve_base(ctx, backup, run, &found, history).await;
    }
    let Some(finished) = job_runs::finished(&run.job, &found, BACKUP_CONTAINER) else {
        // Only finished Jobs are passed in; a Job that turns active again is read next time.
        return Ok(Resolution::Known(LastRun::Succeeded {
            run_id: run.run_id.clone(),
        }));
    };
    let duration_seconds = finished.duration_seconds();
    let failed = |error: String| {
        Resolution::New(Learnt {
            last_run: LastRun::Failed {
                run_id: run.run_id.clone(),
                error,
            },
            history: None,
            bytes: 0,
            duration_seconds,
        })
    };
    let summary = match finished {
        Finished {
            result: JobResult::Succeeded(summary),
            ..
        } => summary,
        Finished {
            result: JobResult::Failed(error),
            ..
        } => return Ok(failed(error)),
    };
    if summary.run_id != run.run_id {
        return Ok(failed(format!(
            "Job {job_name} reported run {} instead of {}",
            summary.run_id, run.run_id
        )));
    }
    let keep = backup
        .spec
        .retention
        .clamp(1, api::backup::MAX_HISTORY as i32) as usize;
    let records = match Destination::of(backup) {
        Destination::Claim { name, .. } => match claim_record(&summary, &name) {
            Ok(record) => merge_history(history, record, summary.pruned.as_deref(), keep),
            Err(why) => return Ok(failed(why)),
        },
        Destination::S3(s3) => {
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
            let storage = artifacts::open_s3(&secrets, &namespace, &s3).await?;
            let series = artifacts::series(&backup.spec.database_ref.name, &backup.name_any())?;
            match artifacts::verify_and_list(&storage, &series, &summary, keep, &s3).await? {
                Checked::Verified(records) => records,
                Checked::Mismatch(why) => return Ok(failed(why)),
            }
        }
    };
    Ok(Resolution::New(Learnt {
        last_run: LastRun::Succeeded {
            run_id: run.run_id.clone(),
        },
        history: Some(records),
        bytes: summary.size_bytes,
        duration_seconds,
    }))
}

/// [`resolve`] for a base backup. `base-backup` read the archive back before writing the
/// manifest; for S3 the operator also reads that manifest and compares it with the report.
async fn resolve_base(
    ctx: &Context,
    backup: &Backup,
    run: &RunJob,
    pods: &[Pod],
    history: &[BackupRecord],
) -> Result<Resolution, Error> {
    let Some(finished) = job_runs::finished_as::<BaseOutcome>(&run.job, pods, BACKUP_CONTAINER)
    else {
        return Ok(Resolution::Known(LastRun::Succeeded {
            run_id: run.run_id.clone(),
        }));
    };
    let duration_seconds = finished.duration_seconds();
    let failed = |error: String| {
        Resolution::New(Learnt {
            last_run: LastRun::Failed {
                run_id: run.run_id.clone(),
                error,
            },
            history: None,
            bytes: 0,
            duration_seconds,
        })
    };
    let summary = match finished.result {
        JobResult::Succeeded(summary) => summary,
        JobResult::Failed(error) => return Ok(failed(error)),
    };
    let manifest = &summary.manifest;
    if manifest.run_id != run.run_id {
        return Ok(failed(format!(
            "Job {} reported base backup {} instead of {}",
            run.name(),
            manifest.run_id,
            run.run_id
        )));
    }
    if let Destination::S3(s3) = Destination::of(backup) {
        let namespace = backup.namespace().unwrap_or_default();
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        let storage = artifacts::open_s3(&secrets, &namespace, &s3).await?;
        let series = base::series_ref(backup)?;
        let stored = match manifest.run() {
            Ok(run_ref) => read_manifest(&storage, &run_ref).await.map_err(|e| {
                artifacts::ArtifactsError::Storage {
                    location: format!("s3://{}", s3.bucket),
                    reason: error_text::describe(&e),
                }
            })?,
            Err(e) => return Ok(failed(e.to_string())),
        };
        if stored.as_ref() != Some(manifest) {
            return Ok(failed(format!(
                "base backup {} reported success, but its manifest under {} is {}",
                manifest.run_id,
                storage.location(&series.base_dir()),
                if stored.is_some() {
                    "different"
                } else {
                    "missing"
                }
            )));
        }
    }
    let record = match base::record(backup, manifest) {
        Ok(record) => record,
        Err(why) => return Ok(failed(why)),
    };
    let keep = backup
        .spec
        .retention
        .clamp(1, api::backup::MAX_HISTORY as i32) as usize;
    Ok(Resolution::New(Learnt {
        last_run: LastRun::Succeeded {
            run_id: run.run_id.clone(),
        },
        history: Some(merge_history(history, record, Some(&summary.pruned), keep)),
        bytes: manifest.size_bytes,
        duration_seconds,
    }))
}

/// The history record of a run written to a claim. The location names the claim rather
/// than the mount path, which means nothing outside the Job's Pod.
pub fn claim_record(summary: &RunSummary, claim: &str) -> Result<BackupRecord, String> {
    let time = parse_rfc3339(&summary.time).ok_or_else(|| {
        format!(
            "run {} reported an unreadable time {:?}",
            summary.run_id, summary.time
        )
    })?;
    let path = summary
        .location
        .strip_prefix(CLAIM_MOUNT)
        .unwrap_or(&summary.location)
        .trim_start_matches('/');
    Ok(BackupRecord {
        run_id: summary.run_id.clone(),
        time: to_time(time),
        location: format!("pvc://{claim}/{path}"),
        size_bytes: i64::try_from(summary.size_bytes).unwrap_or(i64::MAX),
        sha256: summary.sha256.clone(),
        verified: None,
        compression: summary.compression.as_ref().map(|c| c.setting.clone()),
        compression_note: summary.compression.as_ref().and_then(|c| c.note.clone()),
    })
}

/// The history after a run on a claim: the new record first, without the runs retention
/// deleted, at most `keep` entries (retention keeps exactly the `keep` newest, so runs the
/// report left out for size are cut here too).
pub fn merge_history(
    old: &[BackupRecord],
    new: BackupRecord,
    pruned: Option<&[String]>,
    keep: usize,
) -> Vec<BackupRecord> {
    let pruned = pruned.unwrap_or_default();
    let kept = old
        .iter()
        .filter(|r| r.run_id != new.run_id && !pruned.contains(&r.run_id))
        .cloned();
    let mut history: Vec<_> = std::iter::once(new.clone()).chain(kept).collect();
    history.sort_by(|a, b| {
        b.time
            .0
            .cmp(&a.time.0)
            .then_with(|| b.run_id.cmp(&a.run_id))
    });
    history.truncate(keep.min(api::backup::MAX_HISTORY));
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_job::report::CompressionReport;

    fn record(run_id: &str, hour: u32) -> BackupRecord {
        let time = parse_rfc3339(&format!("2026-01-0{hour}T02:00:00Z")).unwrap();
        BackupRecord {
            run_id: run_id.into(),
            time: to_time(time),
            location: format!("pvc://c/shop/nightly/{run_id}/dump.pgdump"),
            size_bytes: 1,
            sha256: "ab".into(),
            verified: None,
            compression: None,
            compression_note: None,
        }
    }

    #[test]
    fn history_after_a_run_on_a_claim() {
        let old = [record("r3", 3), record("r2", 2), record("r1", 1)];
        let pruned = ["r1".to_string()];
        // (retention, pruned, expected run ids)
        type Row<'a> = (usize, Option<&'a [String]>, &'a [&'a str]);
        let rows: [Row; 4] = [
            (7, None, &["r4", "r3", "r2", "r1"]),
            (7, Some(&pruned), &["r4", "r3", "r2"]),
            (2, None, &["r4", "r3"]),
            (1, Some(&pruned), &["r4"]),
        ];
        for (keep, pruned, want) in rows {
            let got = merge_history(&old, record("r4", 4), pruned, keep);
            let ids: Vec<_> = got.iter().map(|r| r.run_id.as_str()).collect();
            assert_eq!(ids, want, "keep {keep}");
        }
    }

    #[test]
    fn claim_records_name_the_claim_not_the_mount() {
        let summary = RunSummary {
            location: "/backups/shop/nightly/20260102T020000Z/dump.pgdump".into(),
            size_bytes: 42,
            sha256: "ab".repeat(32),
            run_id: "20260102T020000Z".into(),
            time: "2026-01-02T02:00:03Z".into(),
            server_version: "14.12".into(),
            compression: Some(Box::new(CompressionReport {
                setting: "gzip".into(),
                note: Some("compressed with gzip instead of the default zstd".into()),
            })),
            pruned: Some(vec![]),
            pruned_omitted: None,
            warnings: vec![],
        };
        let record = claim_record(&summary, "nightly-artifacts").unwrap();
        assert_eq!(
            record.location,
            "pvc://nightly-artifacts/shop/nightly/20260102T020000Z/dump.pgdump"
        );
        assert_eq!(
            (record.size_bytes, record.time),
            (42, to_time(parse_rfc3339("2026-01-02T02:00:03Z").unwrap()))
        );
        // A fallback the Job made reaches the Backup's status with the record.
        assert_eq!(record.compression.as_deref(), Some("gzip"));
        assert_eq!(
            record.compression_note.as_deref(),
            Some("compressed with gzip instead of the default zstd")
        );
    }
}
