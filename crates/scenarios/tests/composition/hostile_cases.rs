//! The hostile objects of scenario 9 (`hostile_input.rs`): the table of those
//! the API server must refuse with the words its message must contain.

use serde_json::{Value, json};

pub const MIB: usize = 1024 * 1024;
/// The longest Database name the API accepts; longer ones are refused.
pub const MAX_DATABASE_NAME: usize = 52;
/// The longest Backup or Restore name: their Jobs carry it in a label.
pub const MAX_BACKUP_NAME: usize = 63;

/// Objects the API server must refuse, with words its message must contain.
pub fn refused_cases() -> Vec<(&'static str, Value, &'static [&'static str])> {
    // The hostile object: a valid one with the value at `path` replaced.
    let db = |path: &str, value: Value| testkit::database("hostile").set(path, value).json();
    let bk = |path: &str, value: Value| testkit::backup("hostile", "good").set(path, value).json();
    let huge = "x".repeat(MIB);
    vec![
        // Megabyte strings: bounded fields and metadata.
        (
            "1 MiB image",
            db("/spec/image", json!(huge)),
            &["spec.image", "Too long", "512 bytes"],
        ),
        (
            "1 MiB label value",
            db("/metadata/labels", json!({"team": huge})),
            &["metadata.labels", "no more than 63"],
        ),
        (
            "1 MiB annotation",
            db("/metadata/annotations", json!({"note": huge})),
            &["metadata.annotations", "Too long", "262144 bytes"],
        ),
        (
            "1 MiB schedule",
            bk("/spec/schedule", json!(huge)),
            &["spec.schedule", "Too long", "128 bytes"],
        ),
        // Names over their limits.
        (
            "Database name over 52",
            testkit::database(&"d".repeat(MAX_DATABASE_NAME + 1)).json(),
            &["at most 52 characters"],
        ),
        (
            "Database name over 253",
            testkit::database(&"d".repeat(254)).json(),
            &["metadata.name", "no more than 253 characters"],
        ),
        (
            "Backup name over 63",
            testkit::backup(&"b".repeat(MAX_BACKUP_NAME + 1), "good").json(),
            &["a Backup name may have at most 63 characters"],
        ),
        (
            "Restore name over 63",
            testkit::restore(&"r".repeat(MAX_BACKUP_NAME + 1), "nightly", "good").json(),
            &["a Restore name may have at most 63 characters"],
        ),
        // Wrong types.
        (
            "string for an integer",
            db("/spec/replicas", json!("3")),
            &["spec.replicas", "must be of type integer"],
        ),
        (
            "object for a string",
            db("/spec/databaseName", json!({"name": "shop"})),
            &["spec.databaseName", "must be of type string"],
        ),
        (
            "string for the spec",
            db("/spec", json!("hello")),
            &["spec", "must be of type object"],
        ),
        (
            "string for a boolean",
            bk("/spec/suspend", json!("yes")),
            &["spec.suspend", "must be of type boolean"],
        ),
        (
            "integer beyond int64",
            db("/spec/replicas", json!(u64::MAX)),
            &["spec.replicas", "less than or equal to 16"],
        ),
        // Negative and zero numbers.
        (
            "negative replicas",
            db("/spec/replicas", json!(-1)),
            &["spec.replicas", "greater than or equal to 1"],
        ),
        (
            "zero retention",
            bk("/spec/retention", json!(0)),
            &["spec.retention", "greater than or equal to 1"],
        ),
        (
            "negative starting deadline",
            bk("/spec/startingDeadlineSeconds", json!(-5)),
            &[
                "spec.startingDeadlineSeconds",
                "greater than or equal to 10",
            ],
        ),
        (
            "negative storage size",
            db("/spec/storage/size", json!("-1Gi")),
            &["storage.size must be larger than zero"],
        ),
        // Bad cron shapes and enums.
        (
            "two-field schedule",
            bk("/spec/schedule", json!("every day")),
            &["not a standard 5-field cron expression"],
        ),
        (
            "@reboot schedule",
            bk("/spec/schedule", json!("@reboot")),
            &["not a standard 5-field cron expression"],
        ),
        (
            "unknown deletion policy",
            bk("/spec/deletionPolicy", json!("Sometimes")),
            &[
                "spec.deletionPolicy",
                "Unsupported value",
                "\"Retain\"",
                "\"Delete\"",
            ],
        ),
    ]
}
