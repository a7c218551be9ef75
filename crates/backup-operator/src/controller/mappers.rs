//! Which objects to reconcile when a related object changes (pure). The cross-references
//! are by name within a namespace, as the CRDs define them.
//!
//! Backups, Restores and Databases come from caches of `DeserializeGuard`s. One that did not
//! decode names nothing that can be read, so it wakes nothing (a Database still wakes the
//! Backups that name it); its own reconcile reports it.

use std::sync::Arc;

use api::names;
use api::{Backup, Database, Restore};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt as _};

/// Backups of this Database, and the Backup its `backupRef` names (whose dependency cycle
/// check reads it).
pub fn backups_for_database(
    backups: &[Arc<DeserializeGuard<Backup>>],
    database: &DeserializeGuard<Database>,
) -> Vec<ObjectRef<DeserializeGuard<Backup>>> {
    let name = database.name_any();
    let decoded_database = database.0.as_ref().ok();
    let seed = decoded_database
        .and_then(|db| db.spec.backup_ref.as_ref())
        .map(|r| r.name.as_str());
    decoded(backups)
        .filter(|(_, b)| b.namespace() == database.namespace())
        .filter(|(_, b)| b.spec.database_ref.name == name || Some(b.name_any().as_str()) == seed)
        .map(|(guard, _)| ObjectRef::from_obj(guard))
        .collect()
}

/// The Backup a clean-up Job works for; it has no owner reference (see `backup::job`).
pub fn backup_of_job(job: &impl Resource) -> Option<ObjectRef<DeserializeGuard<Backup>>> {
    let backup = job.labels().get(names::LABEL_BACKUP)?;
    Some(ObjectRef::new(backup).within(&job.namespace()?))
}

pub fn restores_for_backup(
    restores: &[Arc<DeserializeGuard<Restore>>],
    backup: &impl Resource,
) -> Vec<ObjectRef<DeserializeGuard<Restore>>> {
    let name = backup.name_any();
    decoded(restores)
        .filter(|(_, r)| r.namespace() == backup.namespace() && r.spec.backup_ref.name == name)
        .map(|(guard, _)| ObjectRef::from_obj(guard))
        .collect()
}

pub fn restores_for_database(
    restores: &[Arc<DeserializeGuard<Restore>>],
    database: &impl Resource,
) -> Vec<ObjectRef<DeserializeGuard<Restore>>> {
    let name = database.name_any();
    decoded(restores)
        .filter(|(_, r)| r.namespace() == database.namespace() && r.spec.database_ref.name == name)
        .map(|(guard, _)| ObjectRef::from_obj(guard))
        .collect()
}

/// Databases waiting to be initialised from this Backup.
pub fn databases_for_backup(
    databases: &[Arc<DeserializeGuard<Database>>],
    backup: &impl Resource,
) -> Vec<ObjectRef<DeserializeGuard<Database>>> {
    let name = backup.name_any();
    decoded(databases)
        .filter(|(_, d)| d.namespace() == backup.namespace())
        .filter(|(_, d)| d.spec.backup_ref.as_ref().is_some_and(|r| r.name == name))
        .map(|(guard, _)| ObjectRef::from_obj(guard))
        .collect()
}

/// The objects that decoded, each with the guard the controller knows it by.
fn decoded<K>(
    guards: &[Arc<DeserializeGuard<K>>],
) -> impl Iterator<Item = (&DeserializeGuard<K>, &K)> {
    guards
        .iter()
        .filter_map(|guard| Some((guard.as_ref(), guard.0.as_ref().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::Job;
    use kube::core::{PartialObjectMeta, PartialObjectMetaExt as _};
    use serde_json::json;

    /// `object` decoded as the controllers' watches decode it.
    fn guarded<K: Resource + serde::de::DeserializeOwned>(
        object: serde_json::Value,
    ) -> Arc<DeserializeGuard<K>> {
        Arc::new(serde_json::from_value(object).unwrap())
    }

    fn backup_with(name: &str, ns: &str, spec: serde_json::Value) -> Arc<DeserializeGuard<Backup>> {
        guarded(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": ns}, "spec": spec
        }))
    }

    fn backup(name: &str, ns: &str, database: &str) -> Arc<DeserializeGuard<Backup>> {
        backup_with(name, ns, json!({"databaseRef": {"name": database}}))
    }

    fn restore_with(name: &str, spec: serde_json::Value) -> Arc<DeserializeGuard<Restore>> {
        guarded(json!({
            "apiVersion": "database.example.com/v1", "kind": "Restore",
            "metadata": {"name": name, "namespace": "prod"}, "spec": spec
        }))
    }

    fn restore(name: &str, backup: &str, database: &str) -> Arc<DeserializeGuard<Restore>> {
        restore_with(
            name,
            json!({"backupRef": {"name": backup}, "databaseRef": {"name": database}}),
        )
    }

    /// A Database as the controllers' watches decode it.
    fn database(name: &str, ns: &str, backup_ref: Option<&str>) -> Arc<DeserializeGuard<Database>> {
        let database = testkit::database(name).set("/metadata/namespace", json!(ns));
        let database = match backup_ref {
            Some(backup) => database.backup_ref(backup),
            None => database,
        };
        guarded(database.json())
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
    fn objects_that_did_not_decode_wake_nothing() {
        let backups = [
            backup("nightly", "prod", "shop"),
            backup_with("broken", "prod", json!({"databaseRef": 5})),
            backup_with(
                "weekly",
                "prod",
                json!({"databaseRef": {"name": "shop"}, "retention": "seven"}),
            ),
        ];
        assert!(backups[1].0.is_err() && backups[2].0.is_err());
        let shop = database("shop", "prod", Some("broken"));
        assert_eq!(names(backups_for_database(&backups, &shop)), ["nightly"]);
        // A Database that does not decode still wakes the Backups that name it.
        let broken_shop = guarded::<Database>(
            testkit::database("shop")
                .set("/metadata/namespace", json!("prod"))
                .set("/spec/replicas", json!("three"))
                .json(),
        );
        assert!(broken_shop.0.is_err());
        assert_eq!(
            names(backups_for_database(&backups, &broken_shop)),
            ["nightly"]
        );
        let databases = [broken_shop, database("copy", "prod", Some("nightly"))];
        let nightly = metadata(backup("nightly", "prod", "shop"));
        assert_eq!(names(databases_for_backup(&databases, &nightly)), ["copy"]);

        let restores = [
            restore("a", "nightly", "copy"),
            restore_with(
                "b",
                json!({"backupRef": {"name": "nightly"}, "databaseRef": "copy"}),
            ),
            restore_with(
                "c",
                json!({"backupRef": 7, "databaseRef": {"name": "copy"}}),
            ),
        ];
        assert!(restores[1].0.is_err() && restores[2].0.is_err());
        let nightly = metadata(backup("nightly", "prod", "shop"));
        assert_eq!(names(restores_for_backup(&restores, &nightly)), ["a"]);
        let copy = metadata(database("copy", "prod", None));
        assert_eq!(names(restores_for_database(&restores, &copy)), ["a"]);
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
