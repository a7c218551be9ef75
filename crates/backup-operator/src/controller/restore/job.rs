//! The Job of a Restore (pure): `backup-operator restore` against the target Database,
//! reading the Backup's destination. The run to restore is fixed when the Job is built, so
//! the Restore records which artifact it restored even if newer ones appear meanwhile.

use api::names;
use api::{Backup, Restore};
use k8s_openapi::api::batch::v1::Job;
use kube::{Resource as _, ResourceExt as _};

use crate::controller::pod_template::{
    self, Destination, JobParts, JobSettings, connection, destination_volumes, job_destination,
    series,
};
use crate::controller::scratch;
use backup_job::RestoreJob;

pub const COMPONENT_RESTORE: &str = "restore";
pub const RESTORE_CONTAINER: &str = "restore";

pub fn restore_job(
    restore: &Restore,
    backup: &Backup,
    run_id: Option<&str>,
    settings: &JobSettings,
) -> Job {
    let name = restore.name_any();
    let namespace = restore.namespace().unwrap_or_default();
    let target = &restore.spec.database_ref.name;
    let destination = Destination::of(backup);
    let env = RestoreJob {
        connection: connection(target, &namespace),
        // The series is the Backup's: filed under the Database it backs up, not the target.
        series: series(&backup.spec.database_ref.name, &backup.name_any()),
        run_id: run_id.map(str::to_owned),
        destination: job_destination(&destination),
        // The Backup's parallelism: what its artifacts were made for.
        jobs: backup.spec.jobs(),
    }
    .env();
    // Read-only: a restore never writes to the artifacts.
    let (volumes, mounts) = destination_volumes(&destination, true);
    pod_template::job(
        JobParts {
            name: names::restore_job(&name),
            namespace,
            labels: pod_template::labels(
                COMPONENT_RESTORE,
                &[
                    (names::LABEL_RESTORE, &name),
                    (names::LABEL_DATABASE, target),
                ],
            ),
            owner: restore.controller_owner_ref(&()),
            container: RESTORE_CONTAINER,
            subcommand: "restore",
            env,
            tmp: scratch::restore(backup, run_id),
            scratch: Vec::new(),
            volumes,
            mounts,
        },
        settings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restore_job_reads_the_backups_series_into_the_target() {
        let restore: Restore = serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Restore",
            "metadata": {"name": "refresh", "namespace": "prod", "uid": "u-2"},
            "spec": {"backupRef": {"name": "nightly"}, "databaseRef": {"name": "shop-copy"}}
        }))
        .unwrap();
        let backup: Backup = serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod"},
            "spec": {"databaseRef": {"name": "shop"}, "jobs": 4},
            "status": {"history": [
                {"runId": "20260103T020000Z", "time": "2026-01-03T02:00:00Z", "location": "l", "sizeBytes": 5_000_000_000u64, "sha256": "ab"},
                {"runId": "20260102T020000Z", "time": "2026-01-02T02:00:00Z", "location": "l", "sizeBytes": 1u64 << 30, "sha256": "ab"}]}
        }))
        .unwrap();
        let settings = JobSettings {
            image: "img".into(),
            active_deadline_seconds: 60,
        };
        let job = restore_job(&restore, &backup, Some("20260102T020000Z"), &settings);
        assert_eq!(job.metadata.name.as_deref(), Some("restore-refresh"));
        let pod = job.spec.unwrap().template.spec.unwrap();
        let container = &pod.containers[0];
        assert_eq!(container.args, Some(vec!["restore".to_string()]));
        let env: Vec<_> = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| match &e.value {
                Some(v) => format!("{}={v}", e.name),
                None => format!(
                    "{}=<{}>",
                    e.name,
                    e.value_from
                        .as_ref()
                        .unwrap()
                        .secret_key_ref
                        .as_ref()
                        .unwrap()
                        .name
                ),
            })
            .collect();
        assert_eq!(
            env,
            [
                "PGHOST=shop-copy.prod.svc",
                "PGPORT=5432",
                "PGUSER=<shop-copy-credentials>",
                "PGPASSWORD=<shop-copy-credentials>",
                "PGDATABASE=<shop-copy-credentials>",
                "BACKUP_DATABASE=shop",
                "BACKUP_NAME=nightly",
                "BACKUP_RUN_ID=20260102T020000Z",
                "BACKUP_DESTINATION_PATH=/backups",
                "BACKUP_JOBS=4",
                "TMPDIR=/tmp",
            ]
        );
        let claim = pod.volumes.as_ref().unwrap()[1]
            .persistent_volume_claim
            .clone()
            .unwrap();
        assert_eq!(
            (claim.claim_name.as_str(), claim.read_only),
            ("nightly-artifacts", Some(true))
        );
        // Room for the run it restores (1 GiB), downloaded into /tmp, with headroom.
        let tmp = pod.volumes.as_ref().unwrap()[0].empty_dir.clone().unwrap();
        let requests = container
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert_eq!(
            (
                tmp.size_limit.unwrap().0,
                requests["ephemeral-storage"].0.clone()
            ),
            ("1536Mi".to_string(), "1536Mi".to_string())
        );
    }
}
