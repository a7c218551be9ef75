//! The Job that drops a deleted physical Backup's replication slot (pure): a slot nobody
//! streams from makes the primary keep every WAL segment after it, until its disk fills.
//! It runs `backup-operator drop-wal-slot` against the read-write Service, after the
//! archiver has stopped (an active slot cannot be dropped).

use api::Backup;
use api::names;
use backup_job::EnvEntry;
use backup_job::env::WAL_SLOT_NAME;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt as _;

use crate::controller::backup::COMPONENT_CLEANUP;
use crate::controller::pod_template::{self, JobParts, JobSettings, connection};
use crate::controller::scratch;

pub const DROP_SLOT_CONTAINER: &str = "drop-slot";

/// No owner reference, like the artifacts' clean-up Job: under foreground deletion the
/// garbage collector would delete it as soon as it exists. Labelled as a clean-up Job of
/// its Backup, so its progress wakes the Backup's reconcile; deleted once read.
pub fn drop_slot_job(backup: &Backup, settings: &JobSettings) -> Job {
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let database = &backup.spec.database_ref.name;
    let mut env = backup_job::Connection::env_entries(&connection(database, &namespace));
    env.push(EnvEntry::plain(WAL_SLOT_NAME, names::wal_slot(&name)));
    pod_template::job(
        JobParts {
            name: names::wal_slot_job(&name),
            namespace,
            labels: pod_template::labels(COMPONENT_CLEANUP, &[(names::LABEL_BACKUP, &name)]),
            owner: None,
            container: DROP_SLOT_CONTAINER,
            subcommand: "drop-wal-slot",
            env,
            tmp: scratch::SMALL,
            scratch: Vec::new(),
            volumes: Vec::new(),
            mounts: Vec::new(),
        },
        settings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_drop_job_names_the_backups_slot_and_the_primary() {
        let backup: Backup = serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "pitr", "namespace": "prod", "uid": "u-1"},
            "spec": {"databaseRef": {"name": "shop"}, "method": "physical"}
        }))
        .unwrap();
        let settings = JobSettings {
            image: "pgop/backup-operator:dev".into(),
            active_deadline_seconds: 3600,
        };
        let job = drop_slot_job(&backup, &settings);
        assert_eq!(job.metadata.name.as_deref(), Some("pitr-drop-slot"));
        assert_eq!(job.metadata.owner_references, None);
        let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(container.args, Some(vec!["drop-wal-slot".to_string()]));
        let env: Vec<_> = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .filter_map(|e| Some(format!("{}={}", e.name, e.value.as_ref()?)))
            .collect();
        assert!(env.contains(&"PGHOST=shop.prod.svc".to_string()), "{env:?}");
        assert!(
            env.contains(&format!("WAL_SLOT_NAME={}", names::wal_slot("pitr"))),
            "{env:?}"
        );
    }
}
