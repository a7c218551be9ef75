//! The desired WAL archiver of a physical Backup (pure): one StatefulSet of one Pod running
//! `backup-operator archive-wal`. A StatefulSet, not a Deployment: its Pod is replaced only
//! after the old one is gone, so two archivers never stream from one slot or ship into one
//! WAL area at once.

use std::collections::BTreeMap;

use api::Backup;
use api::names;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::ContainerPort;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::{Resource as _, ResourceExt as _};
use sha2::{Digest, Sha256};

use crate::controller::pod_template::{
    self, Destination, JobParts, JobSettings, ScratchVolume, connection, destination_volumes,
    job_destination, series,
};
use crate::controller::scratch;
use backup_job::ArchiveWalJob;

pub const COMPONENT_ARCHIVER: &str = "wal-archiver";
pub const ARCHIVER_CONTAINER: &str = "archive-wal";
/// Where the archiver serves `/status` and `/metrics`.
pub const STATUS_PORT: i32 = 8080;
/// pg_receivewal's spool. While the store is unreachable WAL accumulates here: 64 segments
/// of 16 MiB, after which the kubelet evicts the Pod and WAL waits on the server (slot).
pub const SPOOL_BYTES: u64 = 1 << 30;
const SPOOL_DIR: &str = "/spool";
/// Default of `spec.archive.syncSeconds`.
const DEFAULT_SYNC_SECONDS: u32 = 10;
/// Annotation with a hash of what the operator wants, so an unchanged StatefulSet is not
/// written again (steady state makes no writes).
pub const ANNOTATION_DESIRED: &str = "database.example.com/desired-hash";

/// The archiver StatefulSet of `backup`, streaming from the Database's read-write Service:
/// the slot must live on the primary, and after a failover the Service leads to the new
/// one, where the archiver creates the slot again.
pub fn statefulset(backup: &Backup, settings: &JobSettings) -> StatefulSet {
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let database = &backup.spec.database_ref.name;
    let destination = Destination::of(backup);
    let sync_seconds = backup
        .spec
        .archive
        .as_ref()
        .and_then(|a| a.sync_seconds)
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(DEFAULT_SYNC_SECONDS);
    let env = ArchiveWalJob {
        connection: connection(database, &namespace),
        series: series(database, &name),
        destination: job_destination(&destination),
        slot: names::wal_slot(&name),
        spool_dir: SPOOL_DIR.into(),
        sync_seconds,
    }
    .env();
    let (volumes, mounts) = destination_volumes(&destination, false);
    let labels = pod_template::labels(
        COMPONENT_ARCHIVER,
        &[
            (names::LABEL_BACKUP, &name),
            (names::LABEL_DATABASE, database),
        ],
    );
    let sts_name = names::wal_archiver(&name);
    let mut template = pod_template::pod_template(
        JobParts {
            name: sts_name.clone(),
            namespace: namespace.clone(),
            labels: labels.clone(),
            owner: None,
            container: ARCHIVER_CONTAINER,
            subcommand: "archive-wal",
            env,
            tmp: scratch::SMALL,
            scratch: vec![ScratchVolume {
                name: "spool",
                path: SPOOL_DIR,
                bytes: SPOOL_BYTES,
            }],
            volumes,
            mounts,
        },
        settings,
    );
    if let Some(spec) = template.spec.as_mut() {
        // On SIGTERM the archiver ships what is complete and the current partial: give
        // a slow store time to take them.
        spec.termination_grace_period_seconds = Some(60);
        for container in &mut spec.containers {
            container.ports = Some(vec![ContainerPort {
                name: Some("status".into()),
                container_port: STATUS_PORT,
                ..ContainerPort::default()
            }]);
        }
    }
    let selector: BTreeMap<_, _> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != names::LABEL_DATABASE)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let spec = StatefulSetSpec {
        replicas: Some(1),
        // Its Pod is reached by IP; no Service is needed for a name.
        service_name: None,
        selector: LabelSelector {
            match_labels: Some(selector),
            ..LabelSelector::default()
        },
        template,
        ..StatefulSetSpec::default()
    };
    let hash = desired_hash(&spec);
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(sts_name),
            namespace: Some(namespace),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(ANNOTATION_DESIRED.to_string(), hash)])),
            owner_references: backup.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// A hash of the spec the operator wants, compared with the one the applied StatefulSet
/// carries: equal means nothing to write.
fn desired_hash(spec: &StatefulSetSpec) -> String {
    let json = serde_json::to_vec(spec).expect("a StatefulSet spec serializes");
    hex::encode(&Sha256::digest(&json)[..8])
}

/// True when `existing` already carries what `desired` asks for.
pub fn up_to_date(existing: &StatefulSet, desired: &StatefulSet) -> bool {
    let hash = |s: &StatefulSet| s.annotations().get(ANNOTATION_DESIRED).cloned();
    hash(existing).is_some() && hash(existing) == hash(desired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use serde_json::json;

    fn settings() -> JobSettings {
        JobSettings {
            image: "pgop/backup-operator:dev".into(),
            active_deadline_seconds: 3600,
        }
    }

    fn backup(spec: serde_json::Value) -> Backup {
        let mut base = json!({"databaseRef": {"name": "shop"}, "method": "physical"});
        base.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "pitr", "namespace": "prod", "uid": "u-1"},
            "spec": base
        }))
        .unwrap()
    }

    fn pod(sts: &StatefulSet) -> &PodSpec {
        sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    fn container(sts: &StatefulSet) -> &Container {
        &pod(sts).containers[0]
    }

    fn env(sts: &StatefulSet) -> Vec<String> {
        crate::controller::fixtures::env_lines(container(sts))
    }

    #[test]
    fn the_archiver_streams_from_the_primary_into_the_backups_destination() {
        let sts = statefulset(&backup(json!({"archive": {"syncSeconds": 5}})), &settings());
        assert_eq!(sts.metadata.name.as_deref(), Some("pitr-wal"));
        assert_eq!(
            env(&sts),
            [
                "PGHOST=shop.prod.svc",
                "PGPORT=5432",
                "PGUSER=shop-credentials/username",
                "PGPASSWORD=shop-credentials/password",
                "PGDATABASE=shop-credentials/database",
                "BACKUP_DATABASE=shop",
                "BACKUP_NAME=pitr",
                "BACKUP_DESTINATION_PATH=/backups",
                &format!("WAL_SLOT_NAME={}", names::wal_slot("pitr")),
                "WAL_SPOOL_DIR=/spool",
                "WAL_SYNC_INTERVAL_SECONDS=5",
                "TMPDIR=/tmp",
            ]
        );
        assert_eq!(container(&sts).args, Some(vec!["archive-wal".to_string()]));
        let claim = pod(&sts).volumes.as_ref().unwrap().iter().find_map(|v| {
            v.persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.clone())
        });
        assert_eq!(claim.as_deref(), Some("pitr-artifacts"));
    }

    #[test]
    fn the_archiver_is_one_restricted_pod_owned_by_its_backup() {
        let sts = statefulset(&backup(json!({})), &settings());
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(1));
        // The default OrderedReady/RollingUpdate replaces the Pod only after the old one
        // stopped: never two archivers.
        assert_eq!(spec.pod_management_policy, None);
        let security = container(&sts).security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        let pod_security = pod(&sts).security_context.as_ref().unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        let requests = container(&sts)
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        for resource in ["cpu", "memory", "ephemeral-storage"] {
            assert!(requests.contains_key(resource), "{resource}");
        }
        let spool = pod(&sts)
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "spool")
            .unwrap();
        assert_eq!(
            spool.empty_dir.as_ref().unwrap().size_limit,
            Some(scratch::quantity(SPOOL_BYTES))
        );
        let owner = &sts.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Backup", Some(true))
        );
        // The selector matches the template's labels.
        let selector = spec.selector.match_labels.as_ref().unwrap();
        let labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
        assert_eq!(
            container(&sts).ports.as_ref().unwrap()[0].container_port,
            STATUS_PORT
        );
    }

    #[test]
    fn an_applied_archiver_is_written_again_only_when_the_spec_changes() {
        let old = statefulset(&backup(json!({})), &settings());
        assert!(up_to_date(
            &old,
            &statefulset(&backup(json!({})), &settings())
        ));
        let changed = statefulset(
            &backup(json!({"archive": {"syncSeconds": 30}})),
            &settings(),
        );
        assert!(!up_to_date(&old, &changed));
        let mut unmarked = old.clone();
        unmarked.metadata.annotations = None;
        assert!(!up_to_date(&unmarked, &old));
    }
}
