//! The hostile objects of scenario 9 (`hostile_input.rs`): builders, and the table of those
//! the API server must refuse with the words its message must contain.

use serde_json::{Value, json};

pub const MIB: usize = 1024 * 1024;
/// The longest Database name the API accepts; longer ones are refused.
pub const MAX_DATABASE_NAME: usize = 52;
/// The longest Backup or Restore name: their Jobs carry it in a label.
pub const MAX_BACKUP_NAME: usize = 63;

pub fn database(name: &str) -> Value {
    json!({
        "apiVersion": "database.example.com/v1", "kind": "Database",
        "metadata": {"name": name},
        "spec": {"databaseName": "shop", "username": "shop_owner", "storage": {"size": "1Gi"}}
    })
}

pub fn backup(name: &str, database: &str) -> Value {
    json!({
        "apiVersion": "database.example.com/v1", "kind": "Backup",
        "metadata": {"name": name},
        "spec": {"databaseRef": {"name": database}}
    })
}

pub fn restore(name: &str) -> Value {
    json!({
        "apiVersion": "database.example.com/v1", "kind": "Restore",
        "metadata": {"name": name},
        "spec": {"backupRef": {"name": "nightly"}, "databaseRef": {"name": "good"}}
    })
}

/// `object` with the value at the JSON pointer `path` replaced (created when missing).
pub fn with(mut object: Value, path: &str, value: Value) -> Value {
    let (parent, key) = path.rsplit_once('/').expect("a JSON pointer");
    object
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(key.to_string(), value);
    object
}

/// Objects the API server must refuse, with words its message must contain.
pub fn refused_cases() -> Vec<(&'static str, Value, &'static [&'static str])> {
    let db = || database("hostile");
    let bk = || backup("hostile", "good");
    let huge = "x".repeat(MIB);
    vec![
        // Megabyte strings: bounded fields and metadata.
        (
            "1 MiB image",
            with(db(), "/spec/image", json!(huge)),
            &["spec.image", "Too long", "512 bytes"],
        ),
        (
            "1 MiB label value",
            with(db(), "/metadata/labels", json!({"team": huge})),
            &["metadata.labels", "no more than 63"],
        ),
        (
            "1 MiB annotation",
            with(db(), "/metadata/annotations", json!({"note": huge})),
            &["metadata.annotations", "Too long", "262144 bytes"],
        ),
        (
            "1 MiB schedule",
            with(bk(), "/spec/schedule", json!(huge)),
            &["spec.schedule", "Too long", "128 bytes"],
        ),
        // Names over their limits.
        (
            "Database name over 52",
            database(&"d".repeat(MAX_DATABASE_NAME + 1)),
            &["at most 52 characters"],
        ),
        (
            "Database name over 253",
            database(&"d".repeat(254)),
            &["metadata.name", "no more than 253 characters"],
        ),
        (
            "Backup name over 63",
            backup(&"b".repeat(MAX_BACKUP_NAME + 1), "good"),
            &["a Backup name may have at most 63 characters"],
        ),
        (
            "Restore name over 63",
            restore(&"r".repeat(MAX_BACKUP_NAME + 1)),
            &["a Restore name may have at most 63 characters"],
        ),
        // Wrong types.
        (
            "string for an integer",
            with(db(), "/spec/replicas", json!("3")),
            &["spec.replicas", "must be of type integer"],
        ),
        (
            "object for a string",
            with(db(), "/spec/databaseName", json!({"name": "shop"})),
            &["spec.databaseName", "must be of type string"],
        ),
        (
            "string for the spec",
            with(db(), "/spec", json!("hello")),
            &["spec", "must be of type object"],
        ),
        (
            "string for a boolean",
            with(bk(), "/spec/suspend", json!("yes")),
            &["spec.suspend", "must be of type boolean"],
        ),
        (
            "integer beyond int64",
            with(db(), "/spec/replicas", json!(u64::MAX)),
            &["spec.replicas", "less than or equal to 16"],
        ),
        // Negative and zero numbers.
        (
            "negative replicas",
            with(db(), "/spec/replicas", json!(-1)),
            &["spec.replicas", "greater than or equal to 1"],
        ),
        (
            "zero retention",
            with(bk(), "/spec/retention", json!(0)),
            &["spec.retention", "greater than or equal to 1"],
        ),
        (
            "negative starting deadline",
            with(bk(), "/spec/startingDeadlineSeconds", json!(-5)),
            &[
                "spec.startingDeadlineSeconds",
                "greater than or equal to 10",
            ],
        ),
        (
            "negative storage size",
            with(db(), "/spec/storage/size", json!("-1Gi")),
            &["storage.size must be larger than zero"],
        ),
        // Bad cron shapes and enums.
        (
            "two-field schedule",
            with(bk(), "/spec/schedule", json!("every day")),
            &["not a standard 5-field cron expression"],
        ),
        (
            "@reboot schedule",
            with(bk(), "/spec/schedule", json!("@reboot")),
            &["not a standard 5-field cron expression"],
        ),
        (
            "unknown deletion policy",
            with(bk(), "/spec/deletionPolicy", json!("Sometimes")),
            &[
                "spec.deletionPolicy",
                "Unsupported value",
                "\"Retain\"",
                "\"Delete\"",
            ],
        ),
    ]
}
