//! The Databases and Backups the benchmark creates, as a user would write them.

use api::{Backup, Database};

/// A StorageClass no provisioner serves. The benchmark measures the operators, so the data
/// claims stay Pending instead of keeping a provisioner on the shared cluster busy.
pub const NO_PROVISIONER: &str = "bench-no-provisioner";

/// A one-replica Database like `deploy/samples/database.yaml`.
pub fn database(name: &str) -> Database {
    testkit::database(name)
        .image("postgres:17")
        .storage_class(NO_PROVISIONER)
        .build()
}

/// A nightly Backup of `database` like `deploy/samples/backup.yaml`, on a claim of its own.
pub fn backup(name: &str, database: &str) -> Backup {
    testkit::backup(name, database)
        .schedule("0 2 * * *")
        .retention(7)
        .pvc_storage_class(NO_PROVISIONER)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_with_the_defaults_filled_in() {
        let db = database("db-1");
        assert_eq!(db.spec.replicas, 1);
        assert_eq!(
            db.spec.storage.storage_class_name.as_deref(),
            Some(NO_PROVISIONER)
        );
        let backup = backup("db-1-nightly", "db-1");
        assert_eq!(backup.spec.database_ref.name, "db-1");
        assert!(backup.spec.immediate);
    }
}
