//! The Jobs of a Backup, built from the Backup alone (pure): one per run, running `dump`,
//! and the clean-up Job that runs `purge` on a claim the user provided.

use api::names;
use api::{Backup, Database};
use k8s_openapi::api::batch::v1::Job;
use kube::{Resource as _, ResourceExt as _};

use crate::controller::pod_template::{
    self, Destination, JobParts, JobSettings, connection_to, destination_volumes, job_destination,
    series,
};
use crate::controller::scratch;
use backup_job::{DumpJob, PurgeJob};

pub const COMPONENT_BACKUP: &str = "backup";
pub const COMPONENT_CLEANUP: &str = "cleanup";
/// Container names, which the result is read back from.
pub const BACKUP_CONTAINER: &str = "backup";
pub const CLEANUP_CONTAINER: &str = "cleanup";

/// The Job of run `run_id`, dumping from `host` (`source::dump_host`). Its name is derived
/// from the run id, so a restarted operator that decides on the same run finds this Job
/// instead of starting a second one. The Database sizes a parallel dump's /tmp before the
/// first artifact ([`scratch::dump`]).
pub fn backup_job(
    backup: &Backup,
    database: Option<&Database>,
    run_id: &str,
    host: &str,
    settings: &JobSettings,
) -> Job {
    let tmp = scratch::dump(backup, database);
    let name = backup.name_any();
    let database = &backup.spec.database_ref.name;
    let destination = Destination::of(backup);
    let env = DumpJob {
        connection: connection_to(host.to_string(), database),
        series: series(database, &name),
        run_id: run_id.into(),
        // The schema keeps it within 1..=100; were it negative, 0 makes the Job fail saying
        // which setting is wrong instead of keeping some other number of runs.
        retention: u32::try_from(backup.spec.retention).unwrap_or(0),
        destination: job_destination(&destination),
        compression: backup
            .spec
            .compression
            .as_ref()
            .map(|compression| compression.to_setting()),
        jobs: backup.spec.jobs(),
    }
    .env();
    run_job(backup, run_id, "dump", env, tmp, settings)
}

/// The Job of run `run_id` of `backup`, running `subcommand` (a dump or a base backup) with
/// `env` and a /tmp of `tmp` bytes. Its name is derived from the run id, so a restarted
/// operator that decides on the same run finds this Job instead of starting a second one.
pub(super) fn run_job(
    backup: &Backup,
    run_id: &str,
    subcommand: &'static str,
    env: Vec<backup_job::EnvEntry>,
    tmp: u64,
    settings: &JobSettings,
) -> Job {
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let database = &backup.spec.database_ref.name;
    let (volumes, mounts) = destination_volumes(&Destination::of(backup), false);
    let labels = pod_template::labels(
        COMPONENT_BACKUP,
        &[
            (names::LABEL_BACKUP, &name),
            (names::LABEL_RUN_ID, run_id),
            (names::LABEL_DATABASE, database),
        ],
    );
    pod_template::job(
        JobParts {
            name: names::backup_job(&name, run_id),
            namespace,
            labels,
            owner: backup.controller_owner_ref(&()),
            container: BACKUP_CONTAINER,
            subcommand,
            env,
            tmp,
            scratch: Vec::new(),
            volumes,
            mounts,
        },
        settings,
    )
}

/// The Job that deletes this Backup's folder from a claim the user provided. It has no
/// owner reference: under foreground deletion the garbage collector would delete it as soon
/// as it is created, while the Backup waits on its finalizer. The operator deletes it once
/// it has read the result.
pub fn cleanup_job(backup: &Backup, claim: &str, settings: &JobSettings) -> Job {
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let database = &backup.spec.database_ref.name;
    let destination = Destination::Claim {
        name: claim.into(),
        operator_created: false,
    };
    let env = PurgeJob {
        series: series(database, &name),
        destination: job_destination(&destination),
    }
    .env();
    let (volumes, mounts) = destination_volumes(&destination, false);
    pod_template::job(
        JobParts {
            name: names::cleanup_job(&name),
            namespace,
            labels: pod_template::labels(COMPONENT_CLEANUP, &[(names::LABEL_BACKUP, &name)]),
            owner: None,
            container: CLEANUP_CONTAINER,
            subcommand: "purge",
            env,
            tmp: scratch::SMALL,
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
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use serde_json::json;

    const HOST: &str = "shop-ro.prod.svc";

    fn settings() -> JobSettings {
        JobSettings {
            image: "pgop/backup-operator:dev".into(),
            active_deadline_seconds: 3600,
        }
    }

    fn backup(destination: serde_json::Value) -> Backup {
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod", "uid": "u-1"},
            "spec": {"databaseRef": {"name": "shop"}, "retention": 3, "destination": destination}
        }))
        .unwrap()
    }

    fn pod(job: &Job) -> &PodSpec {
        job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    fn container(job: &Job) -> &Container {
        &pod(job).containers[0]
    }

    fn env(job: &Job) -> Vec<String> {
        crate::controller::fixtures::env_lines(container(job))
    }

    #[test]
    fn backup_job_env_to_a_claim_the_operator_made() {
        let job = backup_job(
            &backup(json!({"pvc": {}})),
            None,
            "20260102T020000Z",
            HOST,
            &settings(),
        );
        assert_eq!(
            job.metadata.name.as_deref(),
            Some("nightly-20260102t020000z")
        );
        assert_eq!(
            env(&job),
            [
                "PGHOST=shop-ro.prod.svc",
                "PGPORT=5432",
                "PGUSER=shop-credentials/username",
                "PGPASSWORD=shop-credentials/password",
                "PGDATABASE=shop-credentials/database",
                "BACKUP_DATABASE=shop",
                "BACKUP_NAME=nightly",
                "BACKUP_RUN_ID=20260102T020000Z",
                "BACKUP_RETENTION=3",
                "BACKUP_DESTINATION_PATH=/backups",
                "BACKUP_JOBS=1",
                "TMPDIR=/tmp",
            ]
        );
        let volumes = pod(&job).volumes.as_ref().unwrap();
        let claim = volumes[1].persistent_volume_claim.as_ref().unwrap();
        assert_eq!(claim.claim_name, "nightly-artifacts");
        assert_eq!(claim.read_only, None);
    }

    fn tmp_limit(job: &Job) -> Option<String> {
        let volumes = pod(job).volumes.as_ref().unwrap();
        let tmp = volumes.iter().find(|v| v.name == "tmp").unwrap();
        Some(tmp.empty_dir.as_ref()?.size_limit.as_ref()?.0.clone())
    }

    fn ephemeral_request(job: &Job) -> Option<String> {
        let requests = container(job).resources.as_ref()?.requests.as_ref()?;
        Some(requests.get("ephemeral-storage")?.0.clone())
    }

    #[test]
    fn a_parallel_dumps_tmp_is_sized_from_the_newest_artifact_or_the_databases_volume() {
        let mut backup = backup(json!({"pvc": {}}));
        backup.spec.jobs = Some(4);
        let database = testkit::database("shop").storage("10Gi").build();
        let sized = |backup: &Backup| {
            let job = backup_job(
                backup,
                Some(&database),
                "20260102T020000Z",
                HOST,
                &settings(),
            );
            (tmp_limit(&job), ephemeral_request(&job))
        };
        // Before the first artifact: the volume holding the database, with headroom.
        let want = Some(scratch::quantity(scratch::dump(&backup, Some(&database))).0);
        assert_eq!(want.as_deref(), Some("13056Mi"));
        assert_eq!(sized(&backup), (want.clone(), want));
        // Then twice the newest artifact (1 GiB here), with headroom.
        backup.status = Some(api::BackupStatus {
            history: vec![
                serde_json::from_value(json!({"runId": "r1", "time": "2026-01-01T02:00:00Z",
                    "location": "l", "sizeBytes": 1u64 << 30, "sha256": "ab"}))
                .unwrap(),
            ],
            ..api::BackupStatus::default()
        });
        let want = Some("2816Mi".to_string());
        assert_eq!(sized(&backup), (want.clone(), want));
        // scratchSize is the user's word.
        backup.spec.scratch_size = Some("40Gi".into());
        let want = Some("40Gi".to_string());
        assert_eq!(sized(&backup), (want.clone(), want));
    }

    #[test]
    fn backup_job_passes_compression_and_jobs() {
        let mut backup = backup(json!({"pvc": {}}));
        backup.spec.compression = Some(api::BackupCompression {
            algorithm: api::CompressionAlgorithm::Lz4,
            level: Some(9),
        });
        backup.spec.jobs = Some(6);
        let rendered = env(&backup_job(
            &backup,
            None,
            "20260102T020000Z",
            HOST,
            &settings(),
        ));
        for want in ["BACKUP_COMPRESSION=lz4:9", "BACKUP_JOBS=6"] {
            assert!(
                rendered.contains(&want.to_string()),
                "{want} missing from {rendered:?}"
            );
        }
        // Without a setting the Job chooses from the versions it finds.
        backup.spec.compression = None;
        let rendered = env(&backup_job(
            &backup,
            None,
            "20260102T020000Z",
            HOST,
            &settings(),
        ));
        assert!(!rendered.iter().any(|e| e.starts_with("BACKUP_COMPRESSION")));
    }

    #[test]
    fn backup_job_env_to_s3() {
        let s3 = json!({"s3": {"endpoint": "http://minio:9000", "bucket": "b", "prefix": "team",
            "region": "eu-west-1", "credentialsSecret": {"name": "s3-creds"}}});
        let job = backup_job(&backup(s3), None, "20260102T020000Z", HOST, &settings());
        let env = env(&job);
        for want in [
            "S3_ENDPOINT=http://minio:9000",
            "S3_BUCKET=b",
            "S3_PREFIX=team",
            "S3_REGION=eu-west-1",
            "S3_FORCE_PATH_STYLE=true",
            "S3_ALLOW_HTTP=true",
            "AWS_ACCESS_KEY_ID=s3-creds/accessKeyId",
            "AWS_SECRET_ACCESS_KEY=s3-creds/secretAccessKey",
        ] {
            assert!(
                env.contains(&want.to_string()),
                "{want} missing from {env:?}"
            );
        }
        assert!(!env.iter().any(|e| e.starts_with("BACKUP_DESTINATION_PATH")));
        assert_eq!(pod(&job).volumes.as_ref().unwrap().len(), 1, "only /tmp");
    }

    #[test]
    fn backup_job_runs_once_restricted_and_owned() {
        let job = backup_job(
            &backup(json!({"pvc": {"claimName": "mine"}})),
            None,
            "20260102T020000Z",
            HOST,
            &settings(),
        );
        let spec = job.spec.as_ref().unwrap();
        let pod = pod(&job);
        let container = container(&job);
        let security = container.security_context.as_ref().unwrap();
        let pod_security = pod.security_context.as_ref().unwrap();
        // (what, got, want)
        let rows: Vec<(&str, String, &str)> = vec![
            (
                "backoffLimit",
                format!("{:?}", spec.backoff_limit),
                "Some(0)",
            ),
            (
                "activeDeadlineSeconds",
                format!("{:?}", spec.active_deadline_seconds),
                "Some(3600)",
            ),
            (
                "restartPolicy",
                format!("{:?}", pod.restart_policy),
                "Some(\"Never\")",
            ),
            (
                "command",
                format!("{:?} {:?}", container.command, container.args),
                "Some([\"backup-operator\"]) Some([\"dump\"])",
            ),
            (
                "image",
                format!("{:?}", container.image),
                "Some(\"pgop/backup-operator:dev\")",
            ),
            (
                "terminationMessagePolicy",
                format!("{:?}", container.termination_message_policy),
                "Some(\"File\")",
            ),
            (
                "runAsNonRoot",
                format!("{:?}", pod_security.run_as_non_root),
                "Some(true)",
            ),
            (
                "runAsUser",
                format!("{:?}", pod_security.run_as_user),
                "Some(65532)",
            ),
            (
                "fsGroup",
                format!("{:?}", pod_security.fs_group),
                "Some(65532)",
            ),
            (
                "seccomp",
                pod_security.seccomp_profile.as_ref().unwrap().type_.clone(),
                "RuntimeDefault",
            ),
            (
                "readOnlyRootFilesystem",
                format!("{:?}", security.read_only_root_filesystem),
                "Some(true)",
            ),
            (
                "allowPrivilegeEscalation",
                format!("{:?}", security.allow_privilege_escalation),
                "Some(false)",
            ),
            (
                "capabilities",
                format!("{:?}", security.capabilities.as_ref().unwrap().drop),
                "Some([\"ALL\"])",
            ),
            (
                "tmp mount",
                container.volume_mounts.as_ref().unwrap()[0]
                    .mount_path
                    .clone(),
                "/tmp",
            ),
            (
                "tmp sizeLimit (one job streams)",
                format!("{:?}", tmp_limit(&job)),
                "Some(\"256Mi\")",
            ),
            (
                "ephemeral-storage request",
                format!("{:?}", ephemeral_request(&job)),
                "Some(\"256Mi\")",
            ),
            (
                "claim",
                pod.volumes.as_ref().unwrap()[1]
                    .persistent_volume_claim
                    .as_ref()
                    .unwrap()
                    .claim_name
                    .clone(),
                "mine",
            ),
            (
                "service account token",
                format!("{:?}", pod.automount_service_account_token),
                "Some(false)",
            ),
        ];
        for (what, got, want) in rows {
            assert_eq!(got, want, "{what}");
        }
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("Backup", "nightly", Some(true))
        );
        let labels = job.metadata.labels.as_ref().unwrap();
        for (key, value) in [
            (names::LABEL_BACKUP, "nightly"),
            (names::LABEL_RUN_ID, "20260102T020000Z"),
            (names::LABEL_MANAGED_BY, "backup-operator"),
        ] {
            assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}");
        }
    }

    #[test]
    fn cleanup_job_purges_the_backups_folder_without_an_owner() {
        let job = cleanup_job(
            &backup(json!({"pvc": {"claimName": "mine"}})),
            "mine",
            &settings(),
        );
        assert_eq!(job.metadata.name.as_deref(), Some("nightly-cleanup"));
        assert_eq!(container(&job).args, Some(vec!["purge".to_string()]));
        assert_eq!(job.metadata.owner_references, None);
        assert_eq!(
            env(&job),
            [
                "BACKUP_DATABASE=shop",
                "BACKUP_NAME=nightly",
                "BACKUP_DESTINATION_PATH=/backups",
                "TMPDIR=/tmp"
            ]
        );
    }
}
