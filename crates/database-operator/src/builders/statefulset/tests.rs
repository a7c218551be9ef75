use k8s_openapi::api::core::v1::ResourceRequirements;
use serde_json::{Value, json};

use super::*;
use crate::builders::fixtures::{database, settings};

/// The StatefulSet as JSON, so a test reads as "this path has that value".
fn json_of(sts: &StatefulSet) -> Value {
    serde_json::to_value(sts).unwrap_or_default()
}

fn assert_rows(doc: &Value, rows: &[(&str, Value)]) {
    for (pointer, want) in rows {
        assert_eq!(doc.pointer(pointer), Some(want), "{pointer}");
    }
}

const POD: &str = "/spec/template/spec";
const PG: &str = "/spec/template/spec/containers/0";

#[test]
fn statefulset_table() {
    let mut db = database("shop");
    db.spec.replicas = 3;
    db.spec.image = "postgres:16".into();
    db.spec.storage.storage_class_name = Some("fast".into());
    let sts = statefulset(
        &db,
        claim_templates(&db, None),
        &settings(),
        Some("10.96.0.42"),
    );
    let doc = json_of(&sts);
    let rows = [
        ("/metadata/name", json!("shop")),
        ("/metadata/namespace", json!("prod")),
        ("/metadata/ownerReferences/0/controller", json!(true)),
        ("/spec/replicas", json!(3)),
        ("/spec/serviceName", json!("shop-headless")),
        ("/spec/podManagementPolicy", json!("Parallel")),
        (
            "/spec/persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        ),
        (
            "/spec/selector/matchLabels",
            json!({"app.kubernetes.io/name": "postgresql", "database.example.com/database": "shop"}),
        ),
        (
            "/spec/template/metadata/labels/app.kubernetes.io~1managed-by",
            json!("database-operator"),
        ),
        ("/spec/volumeClaimTemplates/0/metadata/name", json!("data")),
        (
            "/spec/volumeClaimTemplates/0/spec/resources/requests/storage",
            json!("1Gi"),
        ),
        (
            "/spec/volumeClaimTemplates/0/spec/storageClassName",
            json!("fast"),
        ),
        (
            "/spec/volumeClaimTemplates/0/spec/accessModes",
            json!(["ReadWriteOnce"]),
        ),
        (
            "/spec/volumeClaimTemplates/0/metadata/labels/database.example.com~1database",
            json!("shop"),
        ),
        (&format!("{PG}/image"), json!("postgres:16")),
        (&format!("{PG}/ports/0/containerPort"), json!(5432)),
        (
            &format!("{PG}/env"),
            json!([
                {"name": "POSTGRES_USER", "valueFrom": {"secretKeyRef": {"name": "shop-credentials", "key": "username", "optional": false}}},
                {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "shop-credentials", "key": "password", "optional": false}}},
                {"name": "POSTGRES_DB", "valueFrom": {"secretKeyRef": {"name": "shop-credentials", "key": "database", "optional": false}}},
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                {"name": "PGOP_PASSWORD_FILE", "value": "/etc/pgop/credentials/password"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "PGOP_DATABASE", "value": "shop"},
                {"name": "PGOP_STATEFULSET", "value": "shop"},
                {"name": "PGOP_HEADLESS_SERVICE", "value": "shop-headless"},
                {"name": "PGOP_PRIMARY_SERVICE", "value": "shop"},
                {"name": "PGOP_LEASE", "value": "shop-primary"},
                {"name": "PGOP_WORK_DIR", "value": "/controller"},
                {"name": "PGOP_SOCKET_DIR", "value": "/var/run/postgresql"},
                // Half the 1Gi volume.
                {"name": "PGOP_MAX_SLOT_WAL_KEEP_SIZE", "value": "512MB"},
                // A quarter of it, kept for a former primary's rewind.
                {"name": "PGOP_WAL_KEEP_SIZE", "value": "256MB"},
                {"name": "POSTGRES_INITDB_ARGS", "value": "--data-checksums"},
                // Standbys stream from the read-write Service's cluster IP, with no lookup.
                {"name": "PGOP_PRIMARY_ADDRESS", "value": "10.96.0.42"},
            ]),
        ),
        // The instance manager runs PostgreSQL, from the operator's image.
        (
            &format!("{PG}/command"),
            json!(["/controller/instance-manager"]),
        ),
        (&format!("{PG}/args"), json!(["instance", "run"])),
        (&format!("{POD}/serviceAccountName"), json!("shop-instance")),
        (
            &format!("{POD}/initContainers/0"),
            json!({
                "name": "install-instance-manager", "image": "pgop/database-operator:test",
                "args": ["instance", "install", "/controller"],
                "securityContext": {
                    "allowPrivilegeEscalation": false, "privileged": false,
                    "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "controller", "mountPath": "/controller"}],
            }),
        ),
        (
            &format!(
                "{POD}/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/0"
            ),
            json!({"weight": 100, "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {
                    "app.kubernetes.io/name": "postgresql", "database.example.com/database": "shop",
                }},
            }}),
        ),
        (
            &format!("{PG}/readinessProbe/exec/command/3"),
            json!("pgop"),
        ),
        (
            &format!("{PG}/readinessProbe/exec/command/4"),
            json!("shop_owner"),
        ),
        (
            &format!("{PG}/readinessProbe/exec/command/5"),
            json!("shop"),
        ),
        (
            &format!("{POD}/initContainers/1/name"),
            json!("set-password"),
        ),
        (
            &format!("{POD}/initContainers/1/image"),
            json!("postgres:16"),
        ),
        (&format!("{PG}/livenessProbe/tcpSocket/port"), json!(5432)),
        (&format!("{PG}/livenessProbe/failureThreshold"), json!(6)),
        (
            &format!("{PG}/volumeMounts"),
            json!([
                {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                {"name": "run", "mountPath": "/var/run/postgresql"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "controller", "mountPath": "/controller"},
                {"name": "credentials", "mountPath": "/etc/pgop/credentials", "readOnly": true},
            ]),
        ),
        (
            &format!("{POD}/volumes"),
            json!([
                {"name": "run", "emptyDir": {}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "controller", "emptyDir": {}},
                {"name": "credentials", "secret": {
                    "secretName": "shop-credentials", "defaultMode": 0o440, "optional": false,
                    "items": [{"key": "password", "path": "password"}],
                }},
            ]),
        ),
        (&format!("{POD}/enableServiceLinks"), json!(false)),
    ];
    assert_rows(&doc, &rows);
    assert!(doc.pointer(&format!("{PG}/resources")).is_none());
}

#[test]
fn security_context_is_as_tight_as_the_image_allows() {
    let doc = json_of(&statefulset(&database("shop"), vec![], &settings(), None));
    assert_rows(
        &doc,
        &[
            (
                &format!("{POD}/securityContext"),
                json!({
                    "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999,
                    "fsGroupChangePolicy": "OnRootMismatch", "runAsNonRoot": true,
                    "seccompProfile": {"type": "RuntimeDefault"},
                }),
            ),
            (
                &format!("{PG}/securityContext"),
                json!({
                    "allowPrivilegeEscalation": false, "privileged": false,
                    "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                    "capabilities": {"drop": ["ALL"]},
                }),
            ),
        ],
    );
}

#[test]
fn resources_come_from_the_spec() {
    let mut db = database("shop");
    let resources: ResourceRequirements = serde_json::from_value(json!({
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }))
    .unwrap_or_default();
    db.spec.resources = Some(resources);
    let doc = json_of(&statefulset(&db, vec![], &settings(), None));
    assert_rows(
        &doc,
        &[(
            &format!("{PG}/resources"),
            json!({"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}),
        )],
    );
}

#[test]
fn existing_claim_size_and_class_are_kept_because_templates_are_immutable() {
    let db = database("shop");
    let existing = statefulset(&db, claim_templates(&db, None), &settings(), None);
    let mut grown = db.clone();
    grown.spec.storage.size = "5Gi".into();
    grown.spec.storage.storage_class_name = Some("other".into());
    let sts = statefulset(
        &grown,
        claim_templates(&grown, Some(&existing)),
        &settings(),
        None,
    );
    assert_eq!(claim_size_of(&sts).as_deref(), Some("1Gi"));
    let doc = json_of(&sts);
    assert!(
        doc.pointer("/spec/volumeClaimTemplates/0/spec/storageClassName")
            .is_none()
    );
    // The rest of the template is what a new StatefulSet would get.
    assert_eq!(
        doc.pointer("/spec/volumeClaimTemplates/0/metadata"),
        json_of(&existing).pointer("/spec/volumeClaimTemplates/0/metadata")
    );
    // Without a StatefulSet the spec decides.
    let fresh = statefulset(&grown, claim_templates(&grown, None), &settings(), None);
    assert_eq!(claim_size_of(&fresh).as_deref(), Some("5Gi"));
    let doc = json_of(&fresh);
    assert_eq!(
        doc.pointer("/spec/volumeClaimTemplates/0/spec/storageClassName"),
        Some(&json!("other"))
    );
}

#[test]
fn required_spread_across_zones_is_a_hard_anti_affinity_on_the_zone_label() {
    let mut db = database("shop");
    db.spec.spread = api::SpreadSpec {
        across: api::SpreadDomain::Zone,
        required: true,
    };
    let doc = json_of(&statefulset(
        &db,
        claim_templates(&db, None),
        &settings(),
        None,
    ));
    let anti = doc
        .pointer(&format!("{POD}/affinity/podAntiAffinity"))
        .unwrap();
    assert_eq!(
        anti.pointer("/requiredDuringSchedulingIgnoredDuringExecution/0/topologyKey"),
        Some(&json!("topology.kubernetes.io/zone"))
    );
    assert_eq!(
        anti.get("preferredDuringSchedulingIgnoredDuringExecution"),
        None
    );
}

#[test]
fn the_first_data_claim_is_the_template_named_as_the_statefulset_controller_names_it() {
    let mut db = database("shop");
    db.spec.storage.storage_class_name = Some("fast".into());
    let sts = statefulset(&db, claim_templates(&db, None), &settings(), None);
    let template = sts
        .spec
        .and_then(|s| s.volume_claim_templates)
        .and_then(|t| t.into_iter().next())
        .unwrap_or_default();
    let claim = first_data_claim(&db);
    // `<template>-<statefulset>-<ordinal>`: the name the StatefulSet looks for and adopts.
    assert_eq!(claim.metadata.name.as_deref(), Some("data-shop-0"));
    assert_eq!(claim.metadata.namespace.as_deref(), Some("prod"));
    assert_eq!(claim.spec, template.spec);
    assert_eq!(claim.metadata.labels, template.metadata.labels);
    // Like the claims the StatefulSet makes, it outlives the Database.
    assert_eq!(claim.metadata.owner_references, None);
}

#[test]
fn wal_kept_for_others_follows_the_volume_within_bounds() {
    let kept = |size: &str| {
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(DATA_VOLUME.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
                resources: Some(k8s_openapi::api::core::v1::VolumeResourceRequirements {
                    requests: Some([("storage".to_string(), Quantity(size.to_string()))].into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..PersistentVolumeClaim::default()
        };
        let wal = wal_retention(&[claim]);
        (wal.slot, wal.keep)
    };
    assert_eq!(kept("256Mi"), ("128MB".into(), "64MB".into()));
    assert_eq!(kept("64Mi"), ("64MB".into(), "16MB".into()));
    assert_eq!(kept("10Gi"), ("5120MB".into(), "1024MB".into()));
}
