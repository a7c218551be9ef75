//! Which objects to reconcile when a related object changes (pure). The cross-references
//! are by name within a namespace, as the CRDs define them.

use std::sync::Arc;

use api::names;
use api::{Backup, Database, Restore};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt as _};

/// Backups of this Database, and the Backup its `backupRef` names (whose dependency cycle
/// check reads it).
pub fn backups_for_database(
    backups: &[Arc<Backup>],
    database: &Database,
) -> Vec<ObjectRef<Backup>> {
    let name = database.name_any();
    let seed = database.spec.backup_ref.as_ref().map(|r| r.name.as_str());
    backups
        .iter()
        .filter(|b| b.namespace() == database.namespace())
        .filter(|b| b.spec.database_ref.name == name || Some(b.name_any().as_str()) == seed)
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// The Backup a clean-up Job works for; it has no owner reference (see `backup::job`).
pub fn backup_of_job(job: &impl Resource) -> Option<ObjectRef<Backup>> {
    let backup = job.labels().get(names::LABEL_BACKUP)?;
    Some(ObjectRef::new(backup).within(&job.namespace()?))
}

pub fn restores_for_backup(
    restores: &[Arc<Restore>],
    backup: &impl Resource,
) -> Vec<ObjectRef<Restore>> {
    let name = backup.name_any();
    restores
        .iter()
        .filter(|r| r.namespace() == backup.namespace() && r.spec.backup_ref.name == name)
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

pub fn restores_for_database(
    restores: &[Arc<Restore>],
    database: &impl Resource,
) -> Vec<ObjectRef<Restore>> {
    let name = database.name_any();
    restores
        .iter()
        .filter(|r| r.namespace() == database.namespace() && r.spec.database_ref.name == name)
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// Databases waiting to be initialised from this Backup.
pub fn databases_for_backup(
    databases: &[Arc<Database>],
    backup: &impl Resource,
) -> Vec<ObjectRef<Database>> {
    let name = backup.name_any();
    databases
        .iter()
        .filter(|d| d.namespace() == backup.namespace())
        .filter(|d| d.spec.backup_ref.as_ref().is_some_and(|r| r.name == name))
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::Job;
    use kube::core::{PartialObjectMeta, PartialObjectMetaExt as _};
    use serde_json::json;

    fn backup(name: &str, ns: &str, database: &str) -> Arc<Backup> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "database.example.com/v1", "kind": "Backup",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"databaseRef": {"name": database}}
            }))
            .unwrap(),
        )
    }

    fn database(name: &str, ns: &str, backup_ref: Option<&str>) -> Arc<Database> {
        let mut spec =
            json!({"databaseName": "shop", "username": "app", "storage": {"size": "1Gi"}});
        if let Some(b) = backup_ref {
            spec["backupRef"] = json!({"name": b});
        }
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "database.example.com/v1", "kind": "Database",
                "metadata": {"name": name, "namespace": ns}, "spec": spec
            }))
            .unwrap(),
        )
    }

    /// What a metadata-only watch delivers of `object`, as the controllers watch Backups and
    /// Databases for these mappers.
    fn metadata<K: Resource>(object: Arc<K>) -> PartialObjectMeta<K> {
        object.meta().clone().into_response_partial()
    }

    fn names<K: kube::Resource>(refs: Vec<ObjectRef<K>>) -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn a_database_change_wakes_its_backups_and_the_backup_it_is_seeded_from() {
        let backups = [
            backup("nightly", "prod", "shop"),
            backup("weekly", "prod", "shop"),
            backup("nightly", "test", "shop"),
            backup("seed", "prod", "other"),
        ];
        assert_eq!(
            names(backups_for_database(
                &backups,
                &database("shop", "prod", None)
            )),
            ["nightly", "weekly"]
        );
        assert_eq!(
            names(backups_for_database(
                &backups,
                &database("copy", "prod", Some("seed"))
            )),
            ["seed"]
        );
    }

    #[test]
    fn a_backup_change_wakes_the_databases_seeded_from_it() {
        let databases = [
            database("copy", "prod", Some("nightly")),
            database("shop", "prod", None),
            database("copy", "test", Some("nightly")),
        ];
        assert_eq!(
            names(databases_for_backup(
                &databases,
                &metadata(backup("nightly", "prod", "shop"))
            )),
            ["copy"]
        );
    }

    #[test]
    fn backup_and_database_changes_wake_the_restores_that_name_them() {
        let restore = |name: &str, backup: &str, database: &str| -> Arc<Restore> {
            Arc::new(
                serde_json::from_value(json!({
                    "apiVersion": "database.example.com/v1", "kind": "Restore",
                    "metadata": {"name": name, "namespace": "prod"},
                    "spec": {"backupRef": {"name": backup}, "databaseRef": {"name": database}}
                }))
                .unwrap(),
            )
        };
        let restores = [
            restore("a", "nightly", "copy"),
            restore("b", "weekly", "copy"),
            restore("c", "nightly", "other"),
        ];
        assert_eq!(
            names(restores_for_backup(
                &restores,
                &metadata(backup("nightly", "prod", "shop"))
            )),
            ["a", "c"]
        );
        assert_eq!(
            names(restores_for_database(
                &restores,
                &metadata(database("copy", "prod", None))
            )),
            ["a", "b"]
        );
        let elsewhere = metadata(database("copy", "test", None));
        assert!(restores_for_database(&restores, &elsewhere).is_empty());
    }

    #[test]
    fn clean_up_jobs_map_to_their_backup_by_label() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "nightly-cleanup", "namespace": "prod", "labels": {names::LABEL_BACKUP: "nightly"}}
        }))
        .unwrap();
        assert_eq!(
            backup_of_job(&job),
            Some(ObjectRef::new("nightly").within("prod"))
        );
    }
}
