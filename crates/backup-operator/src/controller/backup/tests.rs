//! Backup reconciles against a scripted API server: the exact requests each situation makes.

use runtime::ReconcileError as _;
use std::sync::Arc;
use std::time::Duration;

use api::Backup;
use http::Method;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::reconcile;
use crate::controller::fixtures::{Script, scenario};
use testkit::{Expect, Reply, Request, expect, list};

const BACKUP: &str = "/apis/database.example.com/v1/namespaces/prod/backups/nightly";
const JOBS: &str = "/apis/batch/v1/namespaces/prod/jobs";
const PODS: &str = "/api/v1/namespaces/prod/pods";
const CLAIMS: &str = "/api/v1/namespaces/prod/persistentvolumeclaims";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/prod/events";
/// The run a one-shot Backup takes at the scenarios' clock.
const RUN_ID: &str = "20260102T100000Z";
const RUN_JOB: &str = "nightly-20260102t100000z";

/// The Backup `nightly` of `shop`, created an hour before the scenarios' clock, with these
/// fields of its spec set.
fn backup(spec: Value, status: Value) -> Arc<Backup> {
    let created = json!("2026-01-02T09:00:00Z");
    let mut fixture = testkit::backup("nightly", "shop")
        .served_in("prod")
        .set("/metadata/creationTimestamp", created)
        .status(status);
    for (field, value) in spec.as_object().unwrap() {
        fixture = fixture.set(&format!("/spec/{field}"), value.clone());
    }
    Arc::new(fixture.build())
}

/// A Backup as the controller's watch hands it over.
fn guarded(backup: Arc<Backup>) -> Arc<DeserializeGuard<Backup>> {
    Arc::new(DeserializeGuard(Ok(Arc::unwrap_or_clone(backup))))
}

fn run_job(run_id: &str, conditions: Value) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("nightly-{}", run_id.to_lowercase()), "namespace": "prod",
                     "labels": {"database.example.com/backup": "nightly", "database.example.com/run-id": run_id}},
        "status": {"startTime": "2026-01-02T10:00:01Z", "completionTime": "2026-01-02T10:00:41Z", "conditions": conditions}
    })
}

fn finished_pod(message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "prod", "creationTimestamp": "2026-01-02T10:00:01Z"},
        "status": {"containerStatuses": [{"name": "backup", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 0, "message": message}}}]}
    })
}

/// What the caches hold: the Database (`Reply::Status(404)`: none) and the Backup's Jobs.
fn gather(database_reply: Reply, jobs: Vec<Value>) -> Script {
    let mut script = Script::default();
    match database_reply {
        Reply::Json(database) => script = script.cached_database(database),
        Reply::Status(404) => {}
        Reply::Status(code) => panic!("a cache holds an object or none, not an error {code}"),
        Reply::Echo | Reply::Applied(_) => panic!("a cache holds an object or none"),
    }
    for job in jobs {
        script = script.cached_job(job);
    }
    script
}

/// The status patch; the reply is the Backup as the API server would return it.
fn status_patch() -> Expect {
    let patched = serde_json::to_value(backup(json!({}), json!({})).as_ref()).unwrap();
    expect(
        Method::PATCH,
        &format!("{BACKUP}/status"),
        Reply::Json(patched),
    )
    .with_query("fieldManager=backup-operator")
}

async fn run(backup: Arc<Backup>, script: impl Into<Script>) -> (Action, Vec<Request>) {
    let (ctx, server) = scenario(script);
    let action = tokio::time::timeout(Duration::from_secs(5), reconcile(guarded(backup), ctx))
        .await
        .expect("reconcile hung")
        .expect("reconcile failed");
    (action, server.finish())
}

fn condition<'a>(status: &'a Value, type_: &str) -> (&'a str, &'a str) {
    let c = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} in {status}"));
    (c["status"].as_str().unwrap(), c["reason"].as_str().unwrap())
}

fn posted<'a>(seen: &'a [Request], path: &str) -> Vec<&'a Value> {
    seen.iter()
        .filter(|s| s.method == Method::POST && s.path == path)
        .map(|s| &s.body)
        .collect()
}

#[tokio::test]
async fn backup_waits_until_database_ready() {
    let mut script = gather(
        Reply::Json(
            testkit::database("shop")
                .served_in("prod")
                .ready(false)
                .json(),
        ),
        vec![],
    );
    script.push(status_patch());
    let (action, seen) = run(backup(json!({}), json!({})), script).await;

    assert!(
        posted(&seen, JOBS).is_empty(),
        "no Job while the Database is not Ready"
    );
    let status = &seen[0].body["status"];
    assert_eq!(status["phase"], "Pending");
    assert_eq!(
        condition(status, "WaitingForDatabase"),
        ("True", "DatabaseNotReady")
    );
    assert_eq!(condition(status, "BackupReady"), ("False", "NoArtifact"));
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        action,
        Action::await_change(),
        "the Database's watch wakes it"
    );
}

#[tokio::test]
async fn backup_of_a_missing_database_warns() {
    let mut script = gather(Reply::Status(404), vec![]);
    script.push(status_patch());
    script.push(expect(Method::POST, EVENTS, Reply::Echo));
    let (_, seen) = run(backup(json!({}), json!({})), script).await;

    assert_eq!(
        condition(&seen[0].body["status"], "WaitingForDatabase"),
        ("True", "DatabaseNotFound")
    );
    let event = &seen[1].body;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("DatabaseNotFound"))
    );
}

#[tokio::test]
async fn backup_of_a_database_seeded_from_it_is_a_cycle() {
    let mut script = gather(
        Reply::Json(
            testkit::database("shop")
                .served_in("prod")
                .ready(false)
                .backup_ref("nightly")
                .json(),
        ),
        vec![],
    );
    script.push(status_patch());
    script.push(expect(Method::POST, EVENTS, Reply::Echo));
    let (_, seen) = run(backup(json!({}), json!({})), script).await;

    let status = &seen[0].body["status"];
    assert_eq!(status["phase"], "Failed");
    assert_eq!(
        condition(status, "WaitingForDatabase"),
        ("True", "DependencyCycle")
    );
    assert_eq!(seen[1].body["reason"], "DependencyCycle");
    assert!(posted(&seen, JOBS).is_empty());
}

#[tokio::test]
async fn a_due_run_creates_exactly_one_job_with_a_deterministic_name() {
    let mut script = gather(
        Reply::Json(
            testkit::database("shop")
                .served_in("prod")
                .ready(true)
                .json(),
        ),
        vec![],
    );
    script.push(expect(Method::POST, CLAIMS, Reply::Echo));
    script.push(expect(Method::POST, JOBS, Reply::Echo));
    script.push(status_patch());
    script.push(expect(Method::POST, EVENTS, Reply::Echo));
    let (action, seen) = run(backup(json!({}), json!({})), script).await;

    let claims = posted(&seen, CLAIMS);
    assert_eq!(claims[0]["metadata"]["name"], "nightly-artifacts");
    let jobs = posted(&seen, JOBS);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["metadata"]["name"], RUN_JOB);
    assert_eq!(
        jobs[0]["metadata"]["labels"]["database.example.com/run-id"],
        RUN_ID
    );
    let status = &seen[2].body["status"];
    assert_eq!(status["phase"], "InProgress");
    assert_eq!(status["activeJob"], RUN_JOB);
    assert_eq!(status["lastScheduleTime"], "2026-01-02T10:00:00Z");
    assert_eq!(condition(status, "Progressing"), ("True", "RunInProgress"));
    assert_eq!(seen[3].body["reason"], "BackupStarted");
    assert_eq!(
        action,
        Action::await_change(),
        "one-shot: the Job's watch wakes it"
    );
}

#[tokio::test]
async fn a_job_left_by_a_restarted_operator_is_adopted_not_duplicated() {
    // The Job exists, but status was never written: the create answers AlreadyExists.
    let mut script = gather(
        Reply::Json(
            testkit::database("shop")
                .served_in("prod")
                .ready(true)
                .json(),
        ),
        vec![],
    );
    script.push(expect(Method::POST, CLAIMS, Reply::Status(409)));
    script.push(expect(Method::POST, JOBS, Reply::Status(409)));
    script.push(status_patch());
    script.push(expect(Method::POST, EVENTS, Reply::Echo));
    let (_, seen) = run(backup(json!({}), json!({})), script).await;
    assert_eq!(seen[2].body["status"]["activeJob"], RUN_JOB);
}

#[tokio::test]
async fn a_job_in_flight_starts_no_second_job() {
    // The next scheduled time (10:00) is due, but the 02:00 run still runs.
    let in_flight = run_job("20260102T020000Z", json!([]));
    let mut script = gather(
        Reply::Json(
            testkit::database("shop")
                .served_in("prod")
                .ready(true)
                .json(),
        ),
        vec![in_flight],
    );
    script.push(status_patch());
    let spec = json!({"schedule": "0 */8 * * *"});
    let old = json!({"lastScheduleTime": "2026-01-02T02:00:00Z"});
    let (action, seen) = run(backup(spec, old), script).await;

    assert!(posted(&seen, JOBS).is_empty());
    let status = &seen[0].body["status"];
    assert_eq!(status["phase"], "InProgress");
    assert_eq!(status["activeJob"], "nightly-20260102t020000z");
    assert_eq!(status["nextScheduleTime"], "2026-01-02T16:00:00Z");
    assert_eq!(action, Action::requeue(Duration::from_secs(6 * 3600 + 1)));
}

#[tokio::test]
async fn a_succeeded_job_turns_into_completed_status_with_backup_ready() {
    let done = run_job(RUN_ID, json!([{"type": "Complete", "status": "True"}]));
    let result = json!({
        "location": format!("/backups/shop/nightly/{RUN_ID}/dump.pgdump"), "sizeBytes": 2048,
        "sha256": "ab".repeat(32), "runId": RUN_ID, "time": "2026-01-02T10:00:05Z",
        "serverVersion": "17.2", "pruned": []
    });
    let mut script = gather(
        Reply::Json(
            testkit::database("shop")
                .served_in("prod")
                .ready(true)
                .json(),
        ),
        vec![done],
    );
    script.push(
        expect(
            Method::GET,
            PODS,
            Reply::Json(list("PodList", vec![finished_pod(&result.to_string())])),
        )
        .with_query("labelSelector=batch.kubernetes.io/job-name=nightly-20260102t100000z"),
    );
    script.push(status_patch());
    script.push(expect(Method::POST, EVENTS, Reply::Echo));
    let old = json!({"lastScheduleTime": "2026-01-02T10:00:00Z", "phase": "InProgress", "activeJob": RUN_JOB});
    let (ctx, server) = scenario(script);
    let action = reconcile(guarded(backup(json!({}), old)), ctx.clone())
        .await
        .unwrap();
    let seen = server.finish();

    let status = &seen[1].body["status"];
    assert_eq!(status["phase"], "Completed");
    assert_eq!(
        condition(status, "BackupReady"),
        ("True", "ArtifactAvailable")
    );
    assert_eq!(condition(status, "Degraded"), ("False", "AsExpected"));
    let location = format!("pvc://nightly-artifacts/shop/nightly/{RUN_ID}/dump.pgdump");
    assert_eq!(status["backupLocation"], location.as_str());
    assert_eq!(status["sizeBytes"], 2048);
    assert_eq!(status["sha256"], "ab".repeat(32));
    assert_eq!(status["lastBackupTime"], "2026-01-02T10:00:05Z");
    assert_eq!(status["history"][0]["runId"], RUN_ID);
    assert!(status.get("activeJob").is_none());
    assert_eq!(seen[2].body["reason"], "BackupSucceeded");
    assert_eq!(ctx.metrics.runs.with_label_values(&["succeeded"]).get(), 1);
    assert_eq!(ctx.metrics.bytes_written.get(), 2048);
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_failed_job_degrades_the_backup_and_warns_once() {
    let failed = run_job(
        RUN_ID,
        json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]),
    );
    let pod = finished_pod(r#"{"error":"pg_dump failed: connection refused"}"#);
    let mut script = gather(
        Reply::Json(
            testkit::database("shop")
                .served_in("prod")
                .ready(true)
                .json(),
        ),
        vec![failed.clone()],
    );
    script.push(expect(
        Method::GET,
        PODS,
        Reply::Json(list("PodList", vec![pod.clone()])),
    ));
    script.push(status_patch());
    script.push(expect(Method::POST, EVENTS, Reply::Echo));
    let (ctx, server) = scenario(script);
    let old = json!({"lastScheduleTime": "2026-01-02T10:00:00Z"});
    reconcile(guarded(backup(json!({}), old)), ctx.clone())
        .await
        .unwrap();
    let seen = server.finish();

    let status = seen[1].body["status"].clone();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(condition(&status, "Degraded"), ("True", "BackupFailed"));
    assert!(
        status
            .to_string()
            .contains("pg_dump failed: connection refused")
    );
    assert_eq!(seen[2].body["type"], "Warning");
    assert_eq!(ctx.metrics.runs.with_label_values(&["failed"]).get(), 1);

    // The next reconcile reads the same failure: no status write, no Event, no count.
    let mut script = gather(
        Reply::Json(
            testkit::database("shop")
                .served_in("prod")
                .ready(true)
                .json(),
        ),
        vec![failed],
    );
    script.push(expect(
        Method::GET,
        PODS,
        Reply::Json(list("PodList", vec![pod])),
    ));
    let (ctx, server) = scenario(script);
    reconcile(guarded(backup(json!({}), status)), ctx.clone())
        .await
        .unwrap();
    assert_eq!(server.finish().len(), 1);
    assert_eq!(ctx.metrics.runs.with_label_values(&["failed"]).get(), 0);
}

#[tokio::test]
async fn a_second_reconcile_before_the_watches_deliver_writes_nothing() {
    let ready = testkit::database("shop")
        .served_in("prod")
        .ready(true)
        .json();
    let mut script = gather(Reply::Json(ready), vec![]);
    script.push(expect(Method::POST, CLAIMS, Reply::Echo));
    script.push(expect(Method::POST, JOBS, Reply::Echo));
    // The API server answers the status patch with the Backup in a new version.
    let mut cached = Arc::unwrap_or_clone(backup(json!({}), json!({})));
    cached.metadata.resource_version = Some("1".into());
    let mut patched = serde_json::to_value(&cached).unwrap();
    patched["metadata"]["resourceVersion"] = json!("2");
    script.push(
        expect(
            Method::PATCH,
            &format!("{BACKUP}/status"),
            Reply::Applied(patched),
        )
        .with_query("fieldManager=backup-operator"),
    );
    script.push(expect(Method::POST, EVENTS, Reply::Echo));
    let (ctx, server) = scenario(script);
    let cached = Arc::new(cached);
    reconcile(guarded(cached.clone()), ctx.clone())
        .await
        .unwrap();
    assert_eq!(server.finish().len(), 4);

    // Woken again at once by its own status event, before any watch delivered the Job or
    // the status: neither a second Job nor a second status patch or Event.
    reconcile(guarded(cached), ctx).await.unwrap();
    assert_eq!(server.finish().len(), 4, "the second reconcile wrote");
}

#[tokio::test]
async fn deletion_policy_delete_adds_the_finalizer_first() {
    let patched = serde_json::to_value(backup(json!({}), json!({})).as_ref()).unwrap();
    let script = vec![expect(Method::PATCH, BACKUP, Reply::Json(patched))];
    let (action, seen) = run(
        backup(json!({"deletionPolicy": "Delete"}), json!({})),
        script,
    )
    .await;
    assert!(seen[0].body.to_string().contains(super::FINALIZER));
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_backup_that_does_not_decode_is_reported_and_left_alone() {
    let guard: DeserializeGuard<Backup> = serde_json::from_value(json!({
        "apiVersion": "database.example.com/v1", "kind": "Backup",
        "metadata": {"name": "nightly", "namespace": "prod", "uid": "uid-nightly"},
        "spec": {"databaseRef": {"name": "shop"}, "retention": "seven"}
    }))
    .unwrap();
    // Only the Event: no finalizer, no Job, no status.
    let (ctx, server) = scenario(vec![expect(Method::POST, EVENTS, Reply::Echo)]);
    let error = reconcile(Arc::new(guard), ctx)
        .await
        .expect_err("a Backup that does not decode cannot be reconciled");
    let seen = server.finish();

    assert_eq!(error.category(), "invalid_object");
    assert!(!error.is_retryable(), "retrying cannot fix it");
    let event = &seen[0].body;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "InvalidObject");
    assert_eq!(event["regarding"]["kind"], "Backup");
    assert_eq!(event["regarding"]["name"], "nightly");
    let note = event["note"].as_str().unwrap();
    assert!(note.contains("Backup nightly"), "{note}");
    assert!(note.contains(r#"string "seven""#), "{note}");
}
