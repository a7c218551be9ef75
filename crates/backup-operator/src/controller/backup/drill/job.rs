//! The Job of one restore drill, built from the Backup and its Database alone (pure).
//!
//! It runs the Database's own PostgreSQL image, which has the server programs a throwaway
//! server needs (initdb, postgres, pg_ctl) and client programs of the same major version,
//! with this operator's binary copied in by an init container from the operator's image, as
//! the database-operator does for its instance manager. Everything the drill writes goes to
//! emptyDirs that vanish with the Pod, sized by [`scratch::drill`]; a claim destination is
//! mounted read-only.

use std::collections::BTreeMap;

use api::{Backup, BackupRecord, Database, names};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ResourceRequirements, SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{Resource as _, ResourceExt as _};

use crate::controller::pod_template::{
    self, Destination, JobParts, JobSettings, ScratchVolume, destination_volumes, job_destination,
    series,
};
use crate::controller::scratch;
use backup_job::VerifyJob;

pub const COMPONENT_VERIFY: &str = "verify";
/// The container the result is read back from.
pub const VERIFY_CONTAINER: &str = "verify";
/// Label with the drill's identity: the drilled run id, or the scheduled time as a run id.
pub const LABEL_DRILL: &str = "database.example.com/drill";
/// uid and gid of `postgres` in the official image: initdb needs a user that exists there.
const POSTGRES_UID: i64 = 999;
/// Where the init container puts the binary.
const BIN_DIR: &str = "/verifier";
/// The throwaway cluster, its socket and the download.
const WORK_DIR: &str = "/work";

/// What to drill: `drill` names the Job, `run_id` is the artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drill {
    pub drill: String,
    pub run_id: String,
}

/// The drill's Job. `history` is the Backup's as this reconcile writes it, which may already
/// list the run to drill; `database` gives the image and bounds the scratch volume's size.
pub fn verify_job(
    backup: &Backup,
    database: &Database,
    history: &[BackupRecord],
    drill: &Drill,
    settings: &JobSettings,
) -> Job {
    let image = database.spec.image.clone();
    let work = scratch::drill(backup, history, &drill.run_id, Some(database));
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let database = &backup.spec.database_ref.name;
    let destination = Destination::of(backup);
    let env = VerifyJob {
        series: series(database, &name),
        run_id: drill.run_id.clone(),
        destination: job_destination(&destination),
        query: backup
            .spec
            .verification
            .as_ref()
            .and_then(|v| v.query.clone()),
        work_dir: WORK_DIR.into(),
    }
    .env();
    // A drill only reads the artifacts.
    let (volumes, mounts) = destination_volumes(&destination, true);
    let scratch = vec![
        ScratchVolume {
            name: "verifier",
            path: BIN_DIR,
            bytes: scratch::SMALL,
        },
        ScratchVolume {
            name: "work",
            path: WORK_DIR,
            bytes: work,
        },
    ];
    let labels = pod_template::labels(
        COMPONENT_VERIFY,
        &[
            (names::LABEL_BACKUP, &name),
            (names::LABEL_RUN_ID, &drill.run_id),
            (names::LABEL_DATABASE, database),
            (LABEL_DRILL, &drill.drill),
        ],
    );
    let mut job = pod_template::job(
        JobParts {
            name: names::verify_job(&name, &drill.drill),
            namespace,
            labels,
            owner: backup.controller_owner_ref(&()),
            container: VERIFY_CONTAINER,
            subcommand: "verify",
            env,
            tmp: scratch::SMALL,
            scratch,
            volumes,
            mounts,
        },
        settings,
    );
    let pod = job
        .spec
        .as_mut()
        .and_then(|spec| spec.template.spec.as_mut())
        .expect("pod_template::job builds a Pod spec");
    // The server programs refuse to run as a user the image does not know. The group stays
    // the one the backup Jobs write the claim with, so mounting it changes no ownership.
    if let Some(security) = pod.security_context.as_mut() {
        security.run_as_user = Some(POSTGRES_UID);
        security.run_as_group = Some(POSTGRES_UID);
    }
    let container = &mut pod.containers[0];
    container.image = Some(image);
    container.image_pull_policy = None;
    container.command = Some(vec![format!("{BIN_DIR}/backup-operator")]);
    // A restore of a large database wants more than a dump; the limits keep a drill from
    // starving the node it shares with databases. The scratch volumes' request stays.
    let resources = container.resources.get_or_insert_with(Default::default);
    resources
        .requests
        .get_or_insert_with(Default::default)
        .extend([
            ("cpu".into(), Quantity("250m".into())),
            ("memory".into(), Quantity("256Mi".into())),
        ]);
    resources.limits = Some(BTreeMap::from([
        ("cpu".into(), Quantity("2".into())),
        ("memory".into(), Quantity("1Gi".into())),
    ]));
    let security = container.security_context.clone();
    pod.init_containers = Some(vec![install_container(settings, security)]);
    job
}

/// Copies the operator's binary into the `verifier` volume.
fn install_container(settings: &JobSettings, security: Option<SecurityContext>) -> Container {
    Container {
        name: "install".into(),
        image: Some(settings.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["backup-operator".into()]),
        args: Some(vec!["install".into(), BIN_DIR.into()]),
        volume_mounts: Some(vec![VolumeMount {
            name: "verifier".into(),
            mount_path: BIN_DIR.into(),
            ..VolumeMount::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), Quantity("10m".into())),
                ("memory".into(), Quantity("16Mi".into())),
            ])),
            limits: Some(BTreeMap::from([("memory".into(), Quantity("64Mi".into()))])),
            ..ResourceRequirements::default()
        }),
        security_context: security.or_else(|| {
            Some(SecurityContext {
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            })
        }),
        ..Container::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use serde_json::json;

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
            "spec": {"databaseRef": {"name": "shop"}, "destination": destination,
                     "verification": {"query": "SELECT count(*) > 0 FROM orders"}}
        }))
        .unwrap()
    }

    fn database() -> Database {
        testkit::database("shop").image("postgres:17").build()
    }

    fn drill() -> Drill {
        Drill {
            drill: "20260102T020000Z".into(),
            run_id: "20260102T020000Z".into(),
        }
    }

    fn pod(job: &Job) -> &PodSpec {
        job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    #[test]
    fn the_drill_runs_the_databases_image_with_the_binary_copied_in() {
        let job = verify_job(
            &backup(json!({"pvc": {}})),
            &database(),
            &[],
            &drill(),
            &settings(),
        );
        assert_eq!(
            job.metadata.name.as_deref(),
            Some("nightly-verify-20260102t020000z")
        );
        let pod = pod(&job);
        let init = &pod.init_containers.as_ref().unwrap()[0];
        assert_eq!(init.image.as_deref(), Some("pgop/backup-operator:dev"));
        assert_eq!(
            init.args.as_deref(),
            Some(&["install".to_string(), "/verifier".to_string()][..])
        );
        let main = &pod.containers[0];
        assert_eq!(main.image.as_deref(), Some("postgres:17"));
        assert_eq!(
            (main.command.as_deref(), main.args.as_deref()),
            (
                Some(&["/verifier/backup-operator".to_string()][..]),
                Some(&["verify".to_string()][..])
            )
        );
        let env: Vec<String> = main
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| format!("{}={}", e.name, e.value.clone().unwrap_or_default()))
            .collect();
        for want in [
            "BACKUP_DATABASE=shop",
            "BACKUP_NAME=nightly",
            "BACKUP_RUN_ID=20260102T020000Z",
            "BACKUP_DESTINATION_PATH=/backups",
            "VERIFY_WORK_DIR=/work",
            "VERIFY_QUERY=SELECT count(*) > 0 FROM orders",
        ] {
            assert!(
                env.contains(&want.to_string()),
                "{want} missing from {env:?}"
            );
        }
        assert!(
            !env.iter().any(|e| e.starts_with("PGPASSWORD")),
            "no database credentials"
        );
    }

    #[test]
    fn the_drill_is_restricted_bounded_and_reads_the_claim_only() {
        let job = verify_job(
            &backup(json!({"pvc": {}})),
            &database(),
            &[],
            &drill(),
            &settings(),
        );
        let spec = job.spec.as_ref().unwrap();
        let pod = pod(&job);
        let security = pod.security_context.as_ref().unwrap();
        assert_eq!(
            (
                security.run_as_user,
                security.run_as_group,
                security.run_as_non_root
            ),
            (Some(999), Some(999), Some(true))
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(3600));
        for container in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            let security = container.security_context.as_ref().unwrap();
            assert_eq!(
                security.read_only_root_filesystem,
                Some(true),
                "{}",
                container.name
            );
            assert_eq!(
                security.allow_privilege_escalation,
                Some(false),
                "{}",
                container.name
            );
            let limits = container
                .resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap();
            assert!(
                limits.contains_key("memory"),
                "{} has no memory limit",
                container.name
            );
        }
        let volumes = pod.volumes.as_ref().unwrap();
        let claim = volumes
            .iter()
            .find_map(|v| v.persistent_volume_claim.as_ref())
            .unwrap();
        assert_eq!(
            (claim.claim_name.as_str(), claim.read_only),
            ("nightly-artifacts", Some(true))
        );
        for name in ["tmp", "verifier", "work"] {
            let volume = volumes.iter().find(|v| v.name == name).unwrap();
            assert!(volume.empty_dir.is_some(), "{name} is not an emptyDir");
        }
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Backup", Some(true))
        );
        let labels = job.metadata.labels.as_ref().unwrap();
        assert_eq!(
            labels.get(LABEL_DRILL).map(String::as_str),
            Some("20260102T020000Z")
        );
        assert_eq!(
            labels
                .get(pod_template::LABEL_COMPONENT)
                .map(String::as_str),
            Some(COMPONENT_VERIFY)
        );
    }

    #[test]
    fn the_drills_work_volume_has_room_for_the_artifact_and_the_restored_database() {
        let mib = 1u64 << 20;
        let history: Vec<BackupRecord> = vec![
            serde_json::from_value(
                json!({"runId": "20260103T020000Z", "time": "2026-01-03T02:00:00Z",
                "location": "l", "sizeBytes": 900 * mib, "sha256": "ab"}),
            )
            .unwrap(),
            serde_json::from_value(
                json!({"runId": "20260102T020000Z", "time": "2026-01-02T02:00:00Z",
                "location": "l", "sizeBytes": 100 * mib, "sha256": "ab"}),
            )
            .unwrap(),
        ];
        let database = testkit::database("shop").storage("5Gi").build();
        let job = verify_job(
            &backup(json!({"pvc": {}})),
            &database,
            &history,
            &drill(),
            &settings(),
        );
        let pod = pod(&job);
        let limit = |name: &str| {
            let volume = pod
                .volumes
                .as_ref()
                .unwrap()
                .iter()
                .find(|v| v.name == name);
            volume
                .unwrap()
                .empty_dir
                .as_ref()
                .unwrap()
                .size_limit
                .clone()
                .unwrap()
                .0
        };
        // The drilled run's 100 MiB, ten times that restored, as much WAL, a quarter more
        // and 256 MiB: 2881 MiB.
        assert_eq!(
            (limit("work"), limit("tmp"), limit("verifier")),
            (
                "2881Mi".to_string(),
                "256Mi".to_string(),
                "256Mi".to_string()
            )
        );
        let requests = pod.containers[0]
            .resources
            .as_ref()
            .unwrap()
            .requests
            .clone()
            .unwrap();
        let requests: Vec<_> = requests
            .iter()
            .map(|(k, v)| format!("{k}={}", v.0))
            .collect();
        assert_eq!(
            requests,
            ["cpu=250m", "ephemeral-storage=3393Mi", "memory=256Mi"]
        );
    }

    #[test]
    fn an_s3_drill_mounts_no_claim_and_reads_the_credentials_from_the_secret() {
        let s3 = json!({"s3": {"endpoint": "https://s3.example", "bucket": "b",
            "credentialsSecret": {"name": "s3-creds"}}});
        let job = verify_job(&backup(s3), &database(), &[], &drill(), &settings());
        let pod = pod(&job);
        assert!(
            pod.volumes
                .as_ref()
                .unwrap()
                .iter()
                .all(|v| v.persistent_volume_claim.is_none())
        );
        let env = pod.containers[0].env.as_ref().unwrap();
        let secret = env
            .iter()
            .find(|e| e.name == "AWS_SECRET_ACCESS_KEY")
            .unwrap();
        assert_eq!(secret.value, None);
        let key = secret
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (key.name.as_str(), key.key.as_str()),
            ("s3-creds", "secretAccessKey")
        );
    }
}
