//! The Job of a physical Backup's initial Restore (pure): `backup-operator prepare-recovery`
//! filling the new Database's first data claim, `data-<db>-0`, before its StatefulSet exists.
//! The claim is the one the StatefulSet adopts, so the server of instance 0 starts on it.
//! The destination reaches the Job exactly as it reaches the other Jobs
//! ([`pod_template::job_destination`], [`pod_template::destination_volumes`]).

use api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use api::names;
use api::{Backup, Restore};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume, VolumeMount};
use kube::{Resource as _, ResourceExt as _};

use super::job::RESTORE_CONTAINER;
use crate::controller::pod_template::{
    self, Destination, JobParts, JobSettings, destination_volumes, job_destination, series,
};
use crate::controller::scratch;
use backup_job::PrepareRecoveryJob;

/// The subcommand of a recovery Job; how it is told apart from a logical restore's Job. Both
/// carry the `restore` component label, which the Restores' Job watch selects on.
const SUBCOMMAND: &str = "prepare-recovery";
/// The data claim's volume in the Job's Pod.
const DATA: &str = "pgdata";

pub fn recovery_job(
    restore: &Restore,
    backup: &Backup,
    target_time: Option<&Time>,
    settings: &JobSettings,
) -> Job {
    let name = restore.name_any();
    let namespace = restore.namespace().unwrap_or_default();
    let target = &restore.spec.database_ref.name;
    let destination = Destination::of(backup);
    let env = PrepareRecoveryJob {
        series: series(&backup.spec.database_ref.name, &backup.name_any()),
        destination: job_destination(&destination),
        target_time: target_time.map(|t| t.0.to_string()),
        data_dir: names::PGDATA.to_string(),
    }
    .env();
    // The archive is only read.
    let (mut volumes, mut mounts) = destination_volumes(&destination, true);
    volumes.push(Volume {
        name: DATA.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: names::data_claim(target, 0),
            read_only: None,
        }),
        ..Volume::default()
    });
    mounts.push(VolumeMount {
        name: DATA.into(),
        mount_path: names::DATA_MOUNT.into(),
        ..VolumeMount::default()
    });
    let mut job = pod_template::job(
        JobParts {
            name: names::restore_job(&name),
            namespace,
            labels: pod_template::labels(
                super::job::COMPONENT_RESTORE,
                &[
                    (names::LABEL_RESTORE, &name),
                    (names::LABEL_DATABASE, target),
                ],
            ),
            owner: restore.controller_owner_ref(&()),
            container: RESTORE_CONTAINER,
            subcommand: SUBCOMMAND,
            env,
            // Everything is written to the data claim; /tmp only holds what libraries put there.
            tmp: scratch::SMALL,
            scratch: Vec::new(),
            volumes,
            mounts,
        },
        settings,
    );
    pod_template::run_as(&mut job, names::POSTGRES_UID);
    job
}

/// True for the Job [`recovery_job`] builds.
pub fn is_recovery(job: &Job) -> bool {
    let containers = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .any(|c| c.args.as_deref() == Some(&[SUBCOMMAND.to_string()][..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_recovery_job_fills_the_first_data_claim_as_postgres() {
        let restore: Restore = serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Restore",
            "metadata": {"name": "copy-init", "namespace": "prod", "uid": "u-2"},
            "spec": {"backupRef": {"name": "pitr"}, "databaseRef": {"name": "copy"}}
        }))
        .unwrap();
        let backup: Backup = serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "pitr", "namespace": "prod"},
            "spec": {"databaseRef": {"name": "shop"}, "method": "physical",
                     "destination": {"s3": {"endpoint": "http://minio:9000", "bucket": "b",
                                            "credentialsSecret": {"name": "s3"}}}}
        }))
        .unwrap();
        let settings = JobSettings {
            image: "img".into(),
            active_deadline_seconds: 60,
        };
        let target: Time = serde_json::from_value(json!("2026-12-06T07:30:00Z")).unwrap();
        let job = recovery_job(&restore, &backup, Some(&target), &settings);
        assert!(is_recovery(&job));
        assert_eq!(job.metadata.name.as_deref(), Some("restore-copy-init"));
        let pod = job.spec.unwrap().template.spec.unwrap();
        let context = pod.security_context.unwrap();
        assert_eq!(
            (context.run_as_user, context.run_as_group, context.fs_group),
            (Some(999), Some(999), Some(999))
        );
        // The archive's files on a claim are group 65532's.
        assert_eq!(context.supplemental_groups, Some(vec![65532]));
        let container = &pod.containers[0];
        assert_eq!(container.args, Some(vec!["prepare-recovery".to_string()]));
        let env: Vec<_> = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| match &e.value {
                Some(v) => format!("{}={v}", e.name),
                None => format!("{}=<secret>", e.name),
            })
            .collect();
        assert_eq!(
            env,
            [
                "BACKUP_DATABASE=shop",
                "BACKUP_NAME=pitr",
                "S3_ENDPOINT=http://minio:9000",
                "S3_BUCKET=b",
                "S3_FORCE_PATH_STYLE=true",
                "S3_ALLOW_HTTP=true",
                "AWS_ACCESS_KEY_ID=<secret>",
                "AWS_SECRET_ACCESS_KEY=<secret>",
                "RECOVERY_DATA_DIR=/var/lib/postgresql/data/pgdata",
                "RECOVERY_TARGET_TIME=2026-12-06T07:30:00Z",
                "TMPDIR=/tmp",
            ]
        );
        let claim = pod
            .volumes
            .unwrap()
            .into_iter()
            .find_map(|v| v.persistent_volume_claim)
            .unwrap();
        assert_eq!(claim.claim_name, "data-copy-0");
        let mount = container
            .volume_mounts
            .as_ref()
            .unwrap()
            .last()
            .cloned()
            .unwrap();
        assert_eq!(mount.mount_path, "/var/lib/postgresql/data");
        assert_eq!(mount.read_only, None);
    }
}
