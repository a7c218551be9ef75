//! The CEL rules of the CRDs, evaluated client-side by kube's CEL engine on the same rule text
//! the API server gets. The OpenAPI bounds (minimum, maxLength) are checked in the schema
//! here and proved on a real API server by the cluster tests.

use api::{Backup, Database, Restore};
use kube::CustomResourceExt;
use serde_json::{Value, json};

fn database() -> testkit::DatabaseFixture {
    testkit::database("my-database")
}

fn seed_database() -> Database {
    serde_yaml::from_str(include_str!("../../../deploy/samples/seed-database.yaml")).unwrap()
}

fn errors(result: Result<(), impl std::fmt::Display>) -> String {
    match result {
        Ok(()) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn seed_manifests_are_accepted_unchanged() {
    let db = seed_database();
    assert_eq!(db.spec.image, "postgres:14");
    assert_eq!(db.spec.replicas, 1);
    assert_eq!(db.spec.storage.size, "1Gi");
    db.validate_cel().expect("seed Database passes every rule");

    let backup: Backup =
        serde_yaml::from_str(include_str!("../../../deploy/samples/seed-backup.yaml")).unwrap();
    assert_eq!(backup.spec.schedule.as_deref(), Some("0 2 * * *"));
    assert_eq!(backup.spec.retention, 7, "retention defaults to 7");
    backup
        .validate_cel()
        .expect("seed Backup passes every rule");
}

#[test]
fn defaults_fill_image_and_replicas() {
    let db = database().build();
    assert_eq!(db.spec.image, "postgres:17");
    assert_eq!(db.spec.replicas, 1);
}

#[test]
fn invalid_identifiers_are_refused_with_their_reason() {
    let cases = [
        ("databaseName", "", "is not a valid PostgreSQL identifier"),
        (
            "databaseName",
            "1db",
            "is not a valid PostgreSQL identifier",
        ),
        (
            "databaseName",
            "My-DB",
            "is not a valid PostgreSQL identifier",
        ),
        ("databaseName", "template1", "is reserved by PostgreSQL"),
        ("databaseName", "pg_stats", "is reserved by PostgreSQL"),
        ("username", "", "is not a valid PostgreSQL identifier"),
        (
            "username",
            "drop table",
            "is not a valid PostgreSQL identifier",
        ),
        ("username", "postgres", "is reserved by PostgreSQL"),
        ("username", "pg_admin", "is reserved by PostgreSQL"),
        ("username", "public", "is reserved by PostgreSQL"),
    ];
    for (field, value, reason) in cases {
        let db = database().set(&format!("/spec/{field}"), json!(value));
        let message = errors(db.build().validate_cel());
        assert!(
            message.contains(reason) && message.contains(field),
            "{field}={value:?}: expected {reason:?}, got {message:?}"
        );
    }
}

#[test]
fn storage_size_must_be_a_positive_quantity() {
    for (size, reason) in [
        ("lots", "is not a Kubernetes quantity"),
        ("0", "larger than zero"),
    ] {
        let db = database().storage(size).build();
        let message = errors(db.validate_cel());
        assert!(message.contains(reason), "size {size}: {message}");
    }
    for size in ["1Gi", "500Mi", "10G", "1.5Gi"] {
        let db = database().storage(size).build();
        assert_eq!(errors(db.validate_cel()), "", "size {size}");
    }
}

#[test]
fn storage_may_grow_but_never_shrink() {
    let old = seed_database();
    let mut grown = old.clone();
    grown.spec.storage.size = "2Gi".into();
    assert_eq!(errors(grown.validate_cel_update(&old)), "");

    let mut shrunk = old.clone();
    shrunk.spec.storage.size = "512Mi".into();
    let message = errors(shrunk.validate_cel_update(&old));
    assert!(message.contains("may grow but never shrink"), "{message}");
}

#[test]
fn names_are_immutable() {
    let old = seed_database();
    let mut renamed = old.clone();
    renamed.spec.database_name = "otherdb".into();
    let message = errors(renamed.validate_cel_update(&old));
    assert!(
        message.contains("databaseName cannot be changed"),
        "{message}"
    );

    let mut new_user = old.clone();
    new_user.spec.username = "someone".into();
    let message = errors(new_user.validate_cel_update(&old));
    assert!(message.contains("username cannot be changed"), "{message}");

    let mut new_image = old.clone();
    new_image.spec.image = "postgres:17".into();
    assert_eq!(
        errors(new_image.validate_cel_update(&old)),
        "",
        "the image may change"
    );
}

#[test]
fn database_names_longer_than_a_statefulset_allows_are_refused() {
    let mut db = seed_database();
    db.metadata.name = Some("d".repeat(53));
    let message = errors(db.validate_cel());
    assert!(message.contains("at most 52 characters"), "{message}");
    db.metadata.name = Some("d".repeat(52));
    assert_eq!(errors(db.validate_cel()), "");
}

#[test]
fn synchronous_standbys_must_be_fewer_than_the_instances() {
    let db = database().replicas(2).synchronous_standbys(2).build();
    let message = errors(db.validate_cel());
    assert!(
        message.contains("synchronousStandbys must be less than spec.replicas"),
        "{message}"
    );
    let db = database().replicas(3).synchronous_standbys(2).build();
    assert_eq!(errors(db.validate_cel()), "");
}

fn backup() -> testkit::BackupFixture {
    testkit::backup("b", "db")
}

#[test]
fn schedules_with_five_fields_or_a_macro_are_accepted() {
    for schedule in [
        "0 2 * * *",
        "*/15 * * * 1-5",
        "  30 3 1 * *  ",
        "@daily",
        "@hourly",
    ] {
        let b = backup().schedule(schedule).build();
        assert_eq!(errors(b.validate_cel()), "", "schedule {schedule:?}");
    }
}

#[test]
fn schedules_with_a_seconds_field_or_too_few_fields_are_refused() {
    for schedule in ["0 0 2 * * *", "0 2 * *", "", "@sometimes", "0 0 0 2 * * *"] {
        let b = backup().schedule(schedule).build();
        let message = errors(b.validate_cel());
        assert!(
            message.contains("not a standard 5-field cron expression"),
            "schedule {schedule:?}: {message}"
        );
    }
}

#[test]
fn verification_schedules_are_checked_like_backup_schedules() {
    for (schedule, accepted) in [
        ("0 5 * * 0", true),
        ("@weekly", true),
        ("0 0 5 * * 0", false),
    ] {
        let b = backup()
            .set(
                "/spec/verification",
                json!({"schedule": schedule, "query": "SELECT true"}),
            )
            .build();
        let message = errors(b.validate_cel());
        assert_eq!(
            message.contains("verification.schedule")
                && message.contains("not a standard 5-field cron expression"),
            !accepted,
            "schedule {schedule:?}: {message}"
        );
    }
    let after_each_run = backup().set("/spec/verification", json!({})).build();
    assert_eq!(errors(after_each_run.validate_cel()), "");
    assert_eq!(
        after_each_run.spec.verification,
        Some(api::VerificationSpec::default())
    );
}

#[test]
fn dump_only_fields_are_refused_on_a_physical_backup_and_archive_on_a_logical_one() {
    let physical = || backup().set("/spec/method", json!("physical"));
    assert_eq!(errors(physical().build().validate_cel()), "");
    let with_archive = physical().set("/spec/archive", json!({"syncSeconds": 5}));
    assert_eq!(errors(with_archive.build().validate_cel()), "");
    let rows = [
        ("/spec/jobs", json!(4), "jobs sets pg_dump's parallel jobs"),
        (
            "/spec/compression",
            json!({"algorithm": "gzip"}),
            "compression chooses pg_dump's compression",
        ),
        (
            "/spec/verification",
            json!({}),
            "verification runs restore drills of pg_dump artifacts",
        ),
    ];
    for (path, value, message) in rows {
        let refused = physical().set(path, value.clone()).build();
        let got = errors(refused.validate_cel());
        assert!(got.contains(message), "{path}: {got}");
        // The same field on a logical Backup is fine.
        let logical = backup().set(path, value).build();
        assert_eq!(
            errors(logical.validate_cel()),
            "",
            "{path} on a logical Backup"
        );
    }
    let archive_alone = backup().set("/spec/archive", json!({})).build();
    assert!(
        errors(archive_alone.validate_cel()).contains("only method: physical does"),
        "archive on a logical Backup"
    );
}

#[test]
fn destination_needs_exactly_one_target() {
    let none = backup().set("/spec/destination", json!({})).build();
    assert!(errors(none.validate_cel()).contains("exactly one of pvc or s3"));
    let both = backup().set(
        "/spec/destination",
        json!({
            "pvc": {},
            "s3": {"endpoint": "http://s3", "bucket": "bkt", "credentialsSecret": {"name": "c"}}
        }),
    );
    let both = both.build();
    assert!(errors(both.validate_cel()).contains("exactly one of pvc or s3"));
    let default = backup().build();
    assert!(
        default.spec.destination.pvc.is_some(),
        "a PVC destination by default"
    );
    assert_eq!(errors(default.validate_cel()), "");
}

#[test]
fn backup_database_ref_and_restores_are_immutable() {
    let old = backup().build();
    let mut moved = old.clone();
    moved.spec.database_ref.name = "other".into();
    assert!(errors(moved.validate_cel_update(&old)).contains("databaseRef cannot be changed"));

    let restore = testkit::restore("r", "b", "db").build();
    let mut changed = restore.clone();
    changed.spec.run_id = Some("20260101T000000Z".into());
    assert!(errors(changed.validate_cel_update(&restore)).contains("a Restore cannot be changed"));
}

/// The bounds the API server enforces from the OpenAPI schema rather than from CEL.
#[test]
fn openapi_bounds_are_in_the_schema() {
    let crd = serde_json::to_value(Database::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(
        spec["properties"]["replicas"]["minimum"].as_f64(),
        Some(1.0)
    );
    assert_eq!(spec["properties"]["databaseName"]["maxLength"], json!(63));
    assert_eq!(spec["properties"]["username"]["maxLength"], json!(63));
    let required: Vec<&str> = spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["databaseName", "username", "storage"] {
        assert!(required.contains(&field), "{field} is required");
    }
    let backup = serde_json::to_value(Backup::crd()).unwrap();
    let bspec = &backup["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(
        bspec["properties"]["retention"]["minimum"].as_f64(),
        Some(1.0)
    );
    assert_eq!(bspec["properties"]["retention"]["default"], json!(7));
}

#[test]
fn every_field_is_documented_for_kubectl_explain() {
    fn walk(path: &str, schema: &Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                let here = format!("{path}.{name}");
                // metadata, apiVersion and kind are documented by Kubernetes itself.
                if !matches!(name.as_str(), "metadata" | "apiVersion" | "kind")
                    && prop
                        .get("description")
                        .is_none_or(|d| d.as_str().unwrap_or("").is_empty())
                {
                    missing.push(here.clone());
                }
                walk(&here, prop, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(path, items, missing);
        }
    }
    for crd in [Database::crd(), Backup::crd(), Restore::crd()] {
        let value = serde_json::to_value(&crd).unwrap();
        let root = &value["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut missing = Vec::new();
        walk(&crd.spec.names.kind, root, &mut missing);
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
    }
}

#[test]
fn compression_levels_outside_each_algorithms_range_are_refused() {
    let refused = [
        ("zstd", 0),
        ("zstd", 23),
        ("lz4", 0),
        ("lz4", 13),
        ("gzip", 0),
        ("gzip", 10),
        ("none", 1),
    ];
    for (algorithm, level) in refused {
        let b = backup()
            .set(
                "/spec/compression",
                json!({"algorithm": algorithm, "level": level}),
            )
            .build();
        let message = errors(b.validate_cel());
        assert!(
            message.contains("compression level is out of range for its algorithm"),
            "{algorithm}:{level}: {message:?}"
        );
    }
    let accepted = [
        json!({"algorithm": "zstd", "level": 1}),
        json!({"algorithm": "zstd", "level": 22}),
        json!({"algorithm": "lz4", "level": 12}),
        json!({"algorithm": "gzip", "level": 9}),
        json!({"algorithm": "none"}),
        json!({"algorithm": "zstd"}),
    ];
    for compression in accepted {
        let b = backup()
            .set("/spec/compression", compression.clone())
            .build();
        assert_eq!(errors(b.validate_cel()), "", "{compression}");
    }
}

#[test]
fn jobs_bounds_and_compression_algorithms_are_in_the_schema() {
    let backup_crd = serde_json::to_value(Backup::crd()).unwrap();
    let spec =
        &backup_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let jobs = &spec["properties"]["jobs"];
    assert_eq!(
        (jobs["minimum"].as_f64(), jobs["maximum"].as_f64()),
        (Some(1.0), Some(16.0))
    );
    let compression = &spec["properties"]["compression"];
    assert_eq!(
        compression["properties"]["algorithm"]["enum"],
        json!(["zstd", "lz4", "gzip", "none"])
    );
    assert_eq!(compression["required"], json!(["algorithm"]));
    // Unset, the operator decides: zstd:1 where PostgreSQL allows it, and 1 job.
    let default = backup().build();
    assert_eq!((&default.spec.compression, default.spec.jobs()), (&None, 1));
    let parallel = backup().set("/spec/jobs", json!(8)).build();
    assert_eq!(parallel.spec.jobs(), 8);
}

#[test]
fn scratch_size_must_be_a_positive_quantity() {
    for (size, reason) in [
        ("plenty", "is not a Kubernetes quantity"),
        ("0", "larger than zero"),
    ] {
        let b = backup().set("/spec/scratchSize", json!(size)).build();
        let message = errors(b.validate_cel());
        assert!(message.contains(reason), "scratchSize {size}: {message}");
    }
    for size in ["20Gi", "500Mi", "10G"] {
        let b = backup().set("/spec/scratchSize", json!(size)).build();
        assert_eq!(errors(b.validate_cel()), "", "scratchSize {size}");
    }
    assert_eq!(backup().build().spec.scratch_size, None);
}
