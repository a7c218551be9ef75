//! Restore reconciles against a scripted API server.

use runtime::ReconcileError as _;
use std::sync::Arc;

use api::Restore;
use http::Method;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::reconcile;
use crate::controller::fixtures::{Script, scenario};
use testkit::{Expect, Reply, Request, expect, list};

const RESTORE: &str = "/apis/database.example.com/v1/namespaces/prod/restores/refresh";
const JOBS: &str = "/apis/batch/v1/namespaces/prod/jobs";
const PODS: &str = "/api/v1/namespaces/prod/pods";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/prod/events";

fn restore(status: Value) -> Arc<Restore> {
    let fixture = testkit::restore("refresh", "nightly", "copy").served_in("prod");
    Arc::new(fixture.status(status).build())
}

fn backup(ready: bool) -> Value {
    let status = if ready {
        json!({"history": [{"runId": "20260102T020000Z", "time": "2026-01-02T02:00:05Z", "location": "pvc://c/x", "sizeBytes": 1, "sha256": "ab"}],
               "conditions": [{"type": "BackupReady", "status": "True", "reason": "ArtifactAvailable", "message": "", "lastTransitionTime": "2026-01-02T02:00:05Z"}]})
    } else {
        json!({})
    };
    let fixture = testkit::backup("nightly", "shop").set("/metadata/namespace", json!("prod"));
    fixture.status(status).json()
}

fn status_patch() -> Expect {
    let patched = serde_json::to_value(restore(json!({})).as_ref()).unwrap();
    expect(
        Method::PATCH,
        &format!("{RESTORE}/status"),
        Reply::Json(patched),
    )
}

/// The target Database `copy`, Ready, as the cache holds it.
fn ready_copy() -> Value {
    testkit::database("copy")
        .served_in("prod")
        .ready(true)
        .json()
}

async fn run(restore: Arc<Restore>, script: impl Into<Script>) -> (Action, Vec<Request>) {
    let (ctx, server) = scenario(script);
    let action = reconcile(
        Arc::new(DeserializeGuard(Ok(Arc::unwrap_or_clone(restore)))),
        ctx,
    )
    .await
    .expect("reconcile failed");
    (action, server.finish())
}

fn condition(status: &Value, type_: &str) -> String {
    let c = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap();
    format!(
        "{}/{}",
        c["status"].as_str().unwrap(),
        c["reason"].as_str().unwrap()
    )
}

#[tokio::test]
async fn a_restore_waits_for_a_ready_backup() {
    let script = Script::from(vec![status_patch()])
        .cached_backup(backup(false))
        .cached_database(ready_copy());
    let (_, seen) = run(restore(json!({})), script).await;
    let status = &seen[0].body["status"];
    assert_eq!(status["phase"], "Pending");
    assert_eq!(condition(status, "Progressing"), "False/WaitingForBackup");
    assert_eq!(condition(status, "Restored"), "False/Pending");
}

#[tokio::test]
async fn a_ready_restore_starts_one_job_for_the_newest_run() {
    let script = Script::from(vec![
        expect(Method::POST, JOBS, Reply::Echo),
        status_patch(),
        expect(Method::POST, EVENTS, Reply::Echo),
    ])
    .cached_backup(backup(true))
    .cached_database(ready_copy());
    let (_, seen) = run(restore(json!({})), script).await;
    let job = &seen[0].body;
    assert_eq!(job["metadata"]["name"], "restore-refresh");
    assert!(
        job.to_string()
            .contains(r#""name":"BACKUP_RUN_ID","value":"20260102T020000Z""#)
    );
    let status = &seen[1].body["status"];
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["runId"], "20260102T020000Z");
    assert_eq!(seen[2].body["reason"], "RestoreStarted");
}

#[tokio::test]
async fn a_finished_job_completes_the_restore() {
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "restore-refresh", "namespace": "prod",
                     "labels": {"app.kubernetes.io/component": "restore"}},
        "status": {"startTime": "2026-01-02T09:00:00Z", "completionTime": "2026-01-02T09:01:00Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}
    });
    let message = json!({"location": "/backups/x", "sizeBytes": 1, "sha256": "ab", "runId": "20260102T020000Z",
                         "time": "2026-01-02T02:00:05Z", "serverVersion": "17"});
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"},
        "status": {"containerStatuses": [{"name": "restore", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 0, "message": message.to_string()}}}]}
    });
    let script = Script::from(vec![
        expect(Method::GET, PODS, Reply::Json(list("PodList", vec![pod]))),
        status_patch(),
        expect(Method::POST, EVENTS, Reply::Echo),
    ])
    .cached_job(job);
    let running = json!({"phase": "Running", "startTime": "2026-01-02T09:00:00Z", "runId": "20260102T020000Z"});
    let (_, seen) = run(restore(running), script).await;
    let status = &seen[1].body["status"];
    assert_eq!(status["phase"], "Completed");
    assert_eq!(condition(status, "Restored"), "True/RestoreSucceeded");
    assert_eq!(status["sha256"], "ab");
    assert_eq!(status["completionTime"], "2026-01-02T09:01:00Z");
    assert_eq!(status["startTime"], "2026-01-02T09:00:00Z");
}

#[tokio::test]
async fn a_finished_restore_never_runs_again() {
    for phase in ["Completed", "Failed"] {
        let (action, seen) = run(restore(json!({"phase": phase})), vec![]).await;
        assert!(seen.is_empty(), "{phase}: {seen:?}");
        assert_eq!(action, Action::await_change());
    }
}

#[tokio::test]
async fn a_restore_that_does_not_decode_is_reported_and_never_runs() {
    let guard: DeserializeGuard<Restore> = serde_json::from_value(json!({
        "apiVersion": "database.example.com/v1", "kind": "Restore",
        "metadata": {"name": "refresh", "namespace": "prod", "uid": "uid-refresh"},
        "spec": {"backupRef": {"name": "nightly"}, "databaseRef": 5}
    }))
    .unwrap();
    let (ctx, server) = scenario(vec![expect(Method::POST, EVENTS, Reply::Echo)]);
    let error = reconcile(Arc::new(guard), ctx)
        .await
        .expect_err("a Restore that does not decode cannot be reconciled");
    let seen = server.finish();

    assert_eq!(error.category(), "invalid_object");
    assert!(!error.is_retryable());
    let event = &seen[0].body;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "InvalidObject");
    assert_eq!(event["regarding"]["kind"], "Restore");
    assert_eq!(event["regarding"]["name"], "refresh");
    let note = event["note"].as_str().unwrap();
    assert!(note.contains("Restore refresh"), "{note}");
}
