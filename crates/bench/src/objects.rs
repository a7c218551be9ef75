//! The Databases and Backups the benchmark creates, as a user would write them.

use anyhow::{Context, Result};
use api::{Backup, Database};
use serde_json::json;

/// A StorageClass no provisioner serves. The benchmark measures the operators, so the data
/// claims stay Pending instead of keeping a provisioner on the shared cluster busy.
pub const NO_PROVISIONER: &str = "bench-no-provisioner";

/// A one-replica Database like `deploy/samples/database.yaml`.
pub fn database(name: &str) -> Result<Database> {
    serde_json::from_value(json!({
        "apiVersion": "database.example.com/v1",
        "kind": "Database",
        "metadata": {"name": name},
        "spec": {
            "image": "postgres:17",
            "databaseName": "shop",
            "username": "shop_owner",
            "storage": {"size": "1Gi", "storageClassName": NO_PROVISIONER},
        },
    }))
    .context("the benchmark's Database does not fit the Database type")
}

/// A nightly Backup of `database` like `deploy/samples/backup.yaml`, on a claim of its own.
pub fn backup(name: &str, database: &str) -> Result<Backup> {
    serde_json::from_value(json!({
        "apiVersion": "database.example.com/v1",
        "kind": "Backup",
        "metadata": {"name": name},
        "spec": {
            "databaseRef": {"name": database},
            "schedule": "0 2 * * *",
            "retention": 7,
            "destination": {"pvc": {"storageClassName": NO_PROVISIONER}},
        },
    }))
    .context("the benchmark's Backup does not fit the Backup type")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_with_the_defaults_filled_in() {
        let db = database("db-1").unwrap();
        assert_eq!(db.spec.replicas, 1);
        assert_eq!(
            db.spec.storage.storage_class_name.as_deref(),
            Some(NO_PROVISIONER)
        );
        let backup = backup("db-1-nightly", "db-1").unwrap();
        assert_eq!(backup.spec.database_ref.name, "db-1");
        assert!(backup.spec.immediate);
    }
}
