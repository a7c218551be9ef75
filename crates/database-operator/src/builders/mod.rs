//! The desired objects of a Database, as pure functions of its spec.
//!
//! Nothing here reads the cluster: each builder takes the Database (and the few facts
//! gathered from the cluster it cannot know, such as the existing password) and returns the
//! object to apply. The tests read as tables of "this spec gives that field".
//!
//! Every object carries a controller owner reference to its Database, so the garbage
//! collector removes it with the Database. The data volumes are the exception: see
//! [`statefulset`].

pub mod credentials;
pub mod rbac;
pub mod secret;
pub mod service;
pub mod statefulset;

use std::collections::BTreeMap;

use api::{Database, names};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

pub use secret::{credentials_secret, generate_password, password_of};
pub use service::{any_instance_service, client_service, headless_service, read_only_service};
pub use statefulset::{PodSettings, claim_size_of, claim_templates, first_data_claim, statefulset};

/// Value of [`names::LABEL_MANAGED_BY`] on everything this operator creates; the owned-object
/// watches select on it, so the operator caches nothing it does not manage.
pub const MANAGED_BY: &str = crate::MANAGER;

/// Label selector of every object this operator manages, for the controller's watches.
pub fn managed_selector() -> String {
    format!("{}={MANAGED_BY}", names::LABEL_MANAGED_BY)
}

/// Label selector of the EndpointSlices the controller watches: those of the read-write
/// Services, the only ones a reconcile reads (three of every Database's four Services are
/// not). `notin` rather than `=read-write` also selects slices without the label: those of
/// Services made before it existed, which stay watched until the operator applies their
/// Service again (once, its content having changed), so no Database loses sight of its
/// read-write endpoints across an upgrade.
pub fn client_slices_selector() -> String {
    format!(
        "{},{} notin ({},{},{})",
        managed_selector(),
        names::LABEL_SERVICE,
        names::SERVICE_READ_ONLY,
        names::SERVICE_ANY,
        names::SERVICE_HEADLESS,
    )
}

/// Standard label naming the application; part of the Pods' selector.
const APP_NAME: &str = "app.kubernetes.io/name";

/// The keys of [`selector_labels`]: all a reconcile selects Pods and claims by, and (the
/// Database label) all the controller maps them to their Database by.
pub const SELECTOR_KEYS: [&str; 2] = [names::LABEL_DATABASE, APP_NAME];

/// Labels of every object made for `db`.
pub fn labels(db: &Database) -> BTreeMap<String, String> {
    let name = db.name_any();
    BTreeMap::from([
        (names::LABEL_DATABASE.to_string(), name.clone()),
        (names::LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (APP_NAME.to_string(), "postgresql".to_string()),
        ("app.kubernetes.io/instance".to_string(), name),
    ])
}

/// Labels that pick the PostgreSQL Pods of `db`. A StatefulSet's selector is immutable, so
/// this must never change; `app.kubernetes.io/name` keeps other Pods that carry the Database
/// label (the backup-operator's Jobs) out of the Services and out of the failure checks.
pub fn selector_labels(db: &Database) -> BTreeMap<String, String> {
    BTreeMap::from([
        (names::LABEL_DATABASE.to_string(), db.name_any()),
        (APP_NAME.to_string(), "postgresql".to_string()),
    ])
}

/// [`selector_labels`] in the `key=value,...` form the API takes as a label selector.
pub fn selector_string(db: &Database) -> String {
    selector_labels(db)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Metadata of an object named `name` that belongs to `db`.
fn owned_meta(db: &Database, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: db.namespace(),
        labels: Some(labels(db)),
        // Objects read from the API server always have a uid, so this is only None in
        // hand-made fixtures; reconcile checks it before building anything.
        owner_references: db.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The Databases these tests vary, from the test kit's builder.

    use api::Database;

    use super::PodSettings;

    /// The operator's settings the tests build Pods with.
    pub fn settings() -> PodSettings {
        PodSettings {
            instance_manager_image: "pgop/database-operator:test".to_string(),
        }
    }

    /// A Database as the API server would hand it over in `prod`, with defaults filled in.
    pub fn database(name: &str) -> Database {
        testkit::database(name).served_in("prod").build()
    }

    /// The same, initialised from the Backup `backup`.
    pub fn database_from_backup(name: &str, backup: &str) -> Database {
        testkit::database(name)
            .served_in("prod")
            .backup_ref(backup)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::database;
    use super::*;

    #[test]
    fn every_object_is_labelled_and_owned() {
        let db = database("shop");
        let meta = owned_meta(&db, "x".into());
        let labels = meta.labels.unwrap_or_default();
        let rows = [
            (names::LABEL_DATABASE, "shop"),
            (names::LABEL_MANAGED_BY, "database-operator"),
            ("app.kubernetes.io/name", "postgresql"),
            ("app.kubernetes.io/instance", "shop"),
        ];
        for (key, value) in rows {
            assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}");
        }
        let owners = meta.owner_references.unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "Database");
        assert_eq!(owners[0].uid, "uid-shop");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(meta.namespace.as_deref(), Some("prod"));
    }

    #[test]
    fn selectors() {
        let db = database("shop");
        let keys: Vec<String> = selector_labels(&db).into_keys().collect();
        let mut expected = SELECTOR_KEYS.map(String::from).to_vec();
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(
            selector_string(&db),
            "app.kubernetes.io/name=postgresql,database.example.com/database=shop"
        );
        assert_eq!(
            managed_selector(),
            "app.kubernetes.io/managed-by=database-operator"
        );
        assert_eq!(
            client_slices_selector(),
            "app.kubernetes.io/managed-by=database-operator,\
             database.example.com/service notin (read-only,any,headless)"
        );
    }
}
