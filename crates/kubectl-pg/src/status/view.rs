//! What `status` shows, built from the objects alone (pure), and serialised as is for `-o json`.

use api::conditions::{BACKUP_READY, DEGRADED};
use api::{Backup, Database, Restore};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt as _;
use serde::Serialize;

use super::gather::{Objects, event_time};

/// How many Warning Events the screen shows, newest first.
pub const WARNINGS_SHOWN: usize = 5;

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseView {
    pub name: String,
    pub namespace: String,
    pub phase: String,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub image: String,
    pub endpoint: Option<String>,
    pub secret: Option<String>,
    /// The Backup the Database is initialised from (`spec.backupRef`).
    pub initialised_from: Option<String>,
    /// False when the operator has not yet reported on the current spec (or at all).
    pub reconciled: bool,
    pub created: Option<DateTime<Utc>>,
    pub conditions: Vec<ConditionView>,
    pub instances: Vec<Instance>,
    pub services: Vec<ServiceView>,
    pub backups: Vec<BackupView>,
    pub restores: Vec<RestoreView>,
    pub warnings: Vec<EventView>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: DateTime<Utc>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub name: String,
    /// `primary`, or `None` where no role can be stated (see [`role`]).
    pub role: Option<String>,
    pub ready: bool,
    /// The Pod's phase, or why its container waits (e.g. `ImagePullBackOff`).
    pub state: String,
    pub node: Option<String>,
    pub restarts: i32,
    /// Replication lag in bytes of a standby, as the Database reports it.
    pub lag_bytes: Option<i64>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub cluster_ip: Option<String>,
    pub ports: Vec<String>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct BackupView {
    pub name: String,
    pub schedule: Option<String>,
    pub suspended: bool,
    pub phase: String,
    /// The newest verified artifact.
    pub last_run: Option<RunView>,
    pub next_run: Option<DateTime<Utc>>,
    /// Job of the run in flight.
    pub active_job: Option<String>,
    /// `verified` (newest artifact checked against its SHA-256), `failed` or `none`.
    pub verification: String,
    /// Why the last run failed, when it did.
    pub failure: Option<String>,
    /// What a restore can reach: each verified artifact is one point.
    pub recoverable: Option<Window>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub run_id: String,
    pub time: DateTime<Utc>,
    pub size_bytes: i64,
    pub sha256: String,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub points: usize,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RestoreView {
    pub name: String,
    pub backup: String,
    pub phase: String,
    pub run_id: Option<String>,
    pub completed: Option<DateTime<Utc>>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub time: Option<DateTime<Utc>>,
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
}

pub fn to_utc(at: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

pub fn database(objects: &Objects, _now: DateTime<Utc>) -> DatabaseView {
    let db = &objects.database;
    let status = db.status.clone().unwrap_or_default();
    let conditions = status
        .conditions
        .iter()
        .map(|c| ConditionView {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            last_transition_time: to_utc(c.last_transition_time.0),
        })
        .collect();
    let mut warnings: Vec<EventView> = objects
        .events
        .iter()
        .rev()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .take(WARNINGS_SHOWN)
        .map(event)
        .collect();
    warnings.truncate(WARNINGS_SHOWN);
    DatabaseView {
        name: db.name_any(),
        namespace: db.namespace().unwrap_or_default(),
        phase: status
            .phase
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "Unknown".into()),
        replicas: db.spec.replicas,
        ready_replicas: status.ready_replicas,
        image: db.spec.image.clone(),
        endpoint: status.endpoint.clone(),
        secret: status.secret_name.clone(),
        initialised_from: db.spec.backup_ref.as_ref().map(|r| r.name.clone()),
        reconciled: status.observed_generation.is_some()
            && status.observed_generation == db.metadata.generation,
        created: db.metadata.creation_timestamp.as_ref().map(|t| to_utc(t.0)),
        conditions,
        instances: objects.pods.iter().map(|p| instance(db, p)).collect(),
        services: objects.services.iter().map(service).collect(),
        backups: objects.backups.iter().map(backup).collect(),
        restores: objects.restores.iter().map(restore).collect(),
        warnings,
    }
}

/// The role of an instance, as its instance manager labelled its Pod (`primary` or
/// `replica`); none while it starts.
fn role(_db: &Database, pod: &Pod) -> Option<String> {
    pod.labels().get(api::names::LABEL_ROLE).cloned()
}

fn instance(db: &Database, pod: &Pod) -> Instance {
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let containers = status.container_statuses.clone().unwrap_or_default();
    let waiting = containers
        .iter()
        .chain(status.init_container_statuses.iter().flatten())
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    let state = if pod.metadata.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        waiting.unwrap_or_else(|| status.phase.clone().unwrap_or_else(|| "Unknown".into()))
    };
    Instance {
        name: pod.name_any(),
        role: role(db, pod),
        ready,
        state,
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        restarts: containers.iter().map(|c| c.restart_count).sum(),
        lag_bytes: db
            .status
            .as_ref()
            .and_then(|s| s.instances.iter().find(|i| i.name == pod.name_any()))
            .and_then(|i| i.lag_bytes),
    }
}

fn service(svc: &Service) -> ServiceView {
    let spec = svc.spec.clone().unwrap_or_default();
    ServiceView {
        name: svc.name_any(),
        type_: if spec.cluster_ip.as_deref() == Some("None") {
            "Headless".into()
        } else {
            spec.type_.clone().unwrap_or_else(|| "ClusterIP".into())
        },
        cluster_ip: spec.cluster_ip.filter(|ip| ip != "None"),
        ports: spec
            .ports
            .iter()
            .flatten()
            .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
            .collect(),
    }
}

fn backup(b: &Backup) -> BackupView {
    let status = b.status.clone().unwrap_or_default();
    let degraded = api::conditions::find(&status.conditions, DEGRADED)
        .filter(|c| c.status == "True")
        .map(|c| c.message.clone());
    let newest = status.history.first();
    let verification = if degraded.is_some() {
        "failed"
    } else if newest.is_some() && api::conditions::is_true(&status.conditions, BACKUP_READY) {
        "verified"
    } else {
        "none"
    };
    let recoverable = match (status.history.last(), newest) {
        (Some(oldest), Some(newest)) => Some(Window {
            from: to_utc(oldest.time.0),
            to: to_utc(newest.time.0),
            points: status.history.len(),
        }),
        _ => None,
    };
    BackupView {
        name: b.name_any(),
        schedule: b.spec.schedule.clone(),
        suspended: b.spec.suspend,
        phase: status
            .phase
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "Unknown".into()),
        last_run: newest.map(|r| RunView {
            run_id: r.run_id.clone(),
            time: to_utc(r.time.0),
            size_bytes: r.size_bytes,
            sha256: r.sha256.clone(),
        }),
        next_run: status.next_schedule_time.as_ref().map(|t| to_utc(t.0)),
        active_job: status.active_job.clone(),
        verification: verification.into(),
        failure: degraded,
        recoverable,
    }
}

fn restore(r: &Restore) -> RestoreView {
    let status = r.status.clone().unwrap_or_default();
    RestoreView {
        name: r.name_any(),
        backup: r.spec.backup_ref.name.clone(),
        phase: format!("{:?}", r.phase()),
        run_id: status.run_id.clone(),
        completed: status.completion_time.as_ref().map(|t| to_utc(t.0)),
    }
}

fn event(e: &Event) -> EventView {
    let object = &e.involved_object;
    EventView {
        time: event_time(e).map(to_utc),
        object: format!(
            "{}/{}",
            object.kind.as_deref().unwrap_or("?"),
            object.name.as_deref().unwrap_or("?")
        ),
        reason: e.reason.clone().unwrap_or_default(),
        message: e.message.clone().unwrap_or_default(),
        count: e.count.unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(replicas: i32, backups: Vec<Backup>, events: Vec<Event>) -> Objects {
        let database = testkit::database("shop").replicas(replicas).build();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "shop-0"},
            "spec": {"containers": [], "nodeName": "node-1"},
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "postgres", "image": "x", "imageID": "", "ready": false,
                    "restartCount": 2, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}
        }))
        .unwrap();
        Objects {
            database,
            pods: vec![pod],
            services: vec![],
            backups,
            restores: vec![],
            events,
        }
    }

    #[test]
    fn an_instance_has_the_role_its_manager_labelled_it_with() {
        let now = Utc::now();
        let starting = database(&objects(1, vec![], vec![]), now);
        assert_eq!(starting.instances[0].role, None, "no label yet");
        assert_eq!(starting.instances[0].state, "ImagePullBackOff");
        assert_eq!(starting.instances[0].restarts, 2);
        assert!(!starting.instances[0].ready);
        let mut labelled = objects(3, vec![], vec![]);
        labelled.pods[0]
            .labels_mut()
            .insert(api::names::LABEL_ROLE.into(), "replica".into());
        let three = database(&labelled, now);
        assert_eq!(three.instances[0].role.as_deref(), Some("replica"));
    }

    #[test]
    fn backups_show_their_window_verification_and_failure() {
        let record = |run: &str, time: &str| json!({"runId": run, "time": time, "location": "pvc://x", "sizeBytes": 2048, "sha256": "ab"});
        let ok = testkit::backup("nightly", "shop")
            .schedule("0 2 * * *")
            .status(json!({
                "phase": "Completed",
                "nextScheduleTime": "2026-01-03T02:00:00Z",
                "history": [record("r2", "2026-01-02T02:00:09Z"), record("r1", "2026-01-01T02:00:09Z")],
                "conditions": [{"type": "BackupReady", "status": "True", "reason": "ArtifactAvailable",
                    "message": "", "lastTransitionTime": "2026-01-01T02:00:09Z"}]
            }))
            .build();
        let failed = testkit::backup("once", "shop")
            .status(json!({
                "phase": "Failed",
                "conditions": [{"type": "Degraded", "status": "True", "reason": "BackupFailed",
                    "message": "run r1 failed: pg_dump failed", "lastTransitionTime": "2026-01-01T02:00:09Z"}]
            }))
            .build();
        let view = database(&objects(1, vec![ok, failed], vec![]), Utc::now());
        let ok = &view.backups[0];
        assert_eq!(ok.verification, "verified");
        assert_eq!(ok.last_run.as_ref().unwrap().run_id, "r2");
        let window = ok.recoverable.as_ref().unwrap();
        assert_eq!(
            (window.points, window.from.to_rfc3339()),
            (2, "2026-01-01T02:00:09+00:00".into())
        );
        let failed = &view.backups[1];
        assert_eq!(failed.verification, "failed");
        assert_eq!(
            failed.failure.as_deref(),
            Some("run r1 failed: pg_dump failed")
        );
        assert!(failed.recoverable.is_none());
    }

    #[test]
    fn only_the_newest_warnings_are_shown() {
        let event = |i: i64, type_: &str| -> Event {
            serde_json::from_value(json!({
                "metadata": {"name": format!("e{i}")},
                "involvedObject": {"kind": "Database", "name": "shop"},
                "type": type_, "reason": format!("R{i}"), "message": "m",
                "lastTimestamp": format!("2026-01-01T00:00:{i:02}Z")
            }))
            .unwrap()
        };
        let events = (0..8)
            .map(|i| event(i, if i == 7 { "Normal" } else { "Warning" }))
            .collect();
        let view = database(&objects(1, vec![], events), Utc::now());
        let reasons: Vec<_> = view.warnings.iter().map(|w| w.reason.as_str()).collect();
        assert_eq!(reasons, ["R6", "R5", "R4", "R3", "R2"]);
    }
}
