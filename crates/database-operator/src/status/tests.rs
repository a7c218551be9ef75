use api::conditions::{self, DEGRADED, PROGRESSING, READY, WAITING_FOR_BACKUP};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::*;
use crate::builders::fixtures::{database, database_from_backup};

fn at(minute: i64) -> Timestamp {
    Timestamp::from_second(1_767_225_600 + minute * 60).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A Database whose objects are all applied and whose one replica is ready.
fn healthy() -> Observed {
    Observed {
        gate: BackupGate::NotRequired,
        provisioning: Provisioning::Applied,
        secret_exists: true,
        services_exist: true,
        workload: Some(Workload {
            desired: 1,
            ready: 1,
            updated: 1,
            observed_current: true,
            rolling: false,
        }),
        routed: true,
        primary: Some("shop-0".to_string()),
        instances: vec![api::InstanceStatus {
            name: "shop-0".to_string(),
            role: Some("primary".to_string()),
            ready: true,
            ..api::InstanceStatus::default()
        }],
        failover: None,
        refusal: None,
        recovery: Default::default(),
        replication: (
            true,
            "SingleInstance",
            "one instance, no standbys".to_string(),
        ),
        pod_failure: None,
        pod_note: None,
        restore: InitialRestore::Missing,
        volumes: Volumes::Settled,
    }
}

fn with(change: impl FnOnce(&mut Observed)) -> Observed {
    let mut o = healthy();
    change(&mut o);
    o
}

fn workload(desired: i32, ready: i32, updated: i32, current: bool) -> Option<Workload> {
    Some(Workload {
        desired,
        ready,
        updated,
        observed_current: current,
        rolling: current && updated < desired,
    })
}

fn failed(stage: Stage, rejected: bool) -> Provisioning {
    Provisioning::Failed {
        stage,
        message: format!("applying {} failed", stage.as_str()),
        rejected,
    }
}

fn pod_failure(reason: &str) -> Option<PodFailure> {
    Some(PodFailure {
        reason: reason.into(),
        message: format!("Pod shop-0: container postgres: {reason}"),
    })
}

fn condition<'a>(status: &'a DatabaseStatus, type_: &str) -> Option<&'a Condition> {
    conditions::find(&status.conditions, type_)
}

/// (what, from a Backup?, observed, phase, Ready reason, Progressing, Degraded reason if True,
/// WaitingForBackup (status, reason) if present)
type Row = (
    &'static str,
    bool,
    Observed,
    DatabasePhase,
    &'static str,
    bool,
    Option<&'static str>,
    Option<(bool, &'static str)>,
);

#[test]
fn status_over_every_interesting_observed_state() {
    use DatabasePhase::*;
    let backup = |gate| with(|o| o.gate = gate);
    let seeded = |restore| {
        with(|o| {
            o.gate = BackupGate::Ready;
            o.restore = restore;
        })
    };
    let waiting = Some((true, "BackupNotReady"));
    let restored = Some((false, "BackupReady"));
    let rows: Vec<Row> = vec![
        (
            "all ready, Service routes to the primary",
            false,
            healthy(),
            Ready,
            "Ready",
            false,
            None,
            None,
        ),
        (
            "replicas ready, Service not routing yet",
            false,
            with(|o| o.routed = false),
            Verifying,
            "ServiceNotRouting",
            true,
            None,
            None,
        ),
        (
            "no replica ready, Service not routing",
            false,
            with(|o| {
                o.workload = workload(1, 0, 1, true);
                o.routed = false
            }),
            Deploying,
            "Deploying",
            true,
            None,
            None,
        ),
        (
            "no replica ready",
            false,
            with(|o| o.workload = workload(1, 0, 1, true)),
            Deploying,
            "Deploying",
            true,
            None,
            None,
        ),
        (
            "StatefulSet just created",
            false,
            with(|o| o.workload = workload(1, 0, 0, false)),
            Deploying,
            "Deploying",
            true,
            None,
            None,
        ),
        (
            "rolling update",
            false,
            with(|o| o.workload = workload(3, 3, 1, true)),
            Deploying,
            "Deploying",
            true,
            None,
            None,
        ),
        (
            "spec change not seen yet",
            false,
            with(|o| o.workload = workload(1, 1, 1, false)),
            Deploying,
            "Deploying",
            true,
            None,
            None,
        ),
        (
            "scaled up",
            false,
            with(|o| o.workload = workload(3, 1, 3, true)),
            Deploying,
            "Deploying",
            true,
            None,
            None,
        ),
        (
            "image cannot be pulled",
            false,
            with(|o| {
                o.workload = workload(1, 0, 1, true);
                o.pod_failure = pod_failure("ImagePullBackOff")
            }),
            Failed,
            "ImagePullBackOff",
            false,
            Some("ImagePullBackOff"),
            None,
        ),
        (
            "image name invalid",
            false,
            with(|o| o.pod_failure = pod_failure("InvalidImageName")),
            Failed,
            "InvalidImageName",
            false,
            Some("InvalidImageName"),
            None,
        ),
        (
            "crash loop",
            false,
            with(|o| o.pod_failure = pod_failure("CrashLoopBackOff")),
            Failed,
            "CrashLoopBackOff",
            false,
            Some("CrashLoopBackOff"),
            None,
        ),
        (
            "config error",
            false,
            with(|o| o.pod_failure = pod_failure("CreateContainerConfigError")),
            Failed,
            "CreateContainerConfigError",
            false,
            Some("CreateContainerConfigError"),
            None,
        ),
        (
            "Secret apply failed",
            false,
            with(|o| {
                o.provisioning = failed(Stage::Secret, false);
                o.secret_exists = false
            }),
            Provisioning,
            "Provisioning",
            true,
            Some("SecretApplyFailed"),
            None,
        ),
        (
            "Service apply failed",
            false,
            with(|o| o.provisioning = failed(Stage::Services, false)),
            Configuring,
            "Configuring",
            true,
            Some("ServiceApplyFailed"),
            None,
        ),
        (
            "StatefulSet apply failed",
            false,
            with(|o| o.provisioning = failed(Stage::StatefulSet, false)),
            Deploying,
            "Deploying",
            true,
            Some("StatefulSetApplyFailed"),
            None,
        ),
        (
            "StatefulSet rejected",
            false,
            with(|o| o.provisioning = failed(Stage::StatefulSet, true)),
            Failed,
            "InvalidSpec",
            false,
            Some("InvalidSpec"),
            None,
        ),
        (
            "Backup missing",
            true,
            backup(BackupGate::BackupNotFound),
            Pending,
            "BackupNotFound",
            false,
            None,
            Some((true, "BackupNotFound")),
        ),
        (
            "Backup not ready",
            true,
            backup(BackupGate::BackupNotReady),
            Pending,
            "BackupNotReady",
            false,
            None,
            waiting,
        ),
        (
            "Backup of itself",
            true,
            backup(BackupGate::DependencyCycle),
            Failed,
            "DependencyCycle",
            false,
            Some("DependencyCycle"),
            Some((false, "DependencyCycle")),
        ),
        (
            "restore not created yet",
            true,
            seeded(InitialRestore::Missing),
            Verifying,
            "Verifying",
            true,
            None,
            restored,
        ),
        (
            "restore running",
            true,
            seeded(InitialRestore::InProgress(RestorePhase::Running)),
            Verifying,
            "Verifying",
            true,
            None,
            restored,
        ),
        (
            "restore completed",
            true,
            seeded(InitialRestore::Completed),
            Ready,
            "Ready",
            false,
            None,
            restored,
        ),
        (
            "restore completed, Service not routing yet",
            true,
            with(|o| {
                o.gate = BackupGate::Ready;
                o.restore = InitialRestore::Completed;
                o.routed = false
            }),
            Verifying,
            "ServiceNotRouting",
            true,
            None,
            restored,
        ),
        (
            "restore failed",
            true,
            seeded(InitialRestore::Failed("checksum mismatch".into())),
            Failed,
            "RestoreFailed",
            false,
            Some("RestoreFailed"),
            restored,
        ),
        (
            "target outside the recoverability window",
            true,
            with(|o| {
                o.gate = BackupGate::Refused;
                o.refusal = Some("outside the recoverability window: from A to B".into());
            }),
            Failed,
            "RecoveryTargetRefused",
            false,
            Some("RecoveryTargetRefused"),
            Some((false, "RecoveryTargetRefused")),
        ),
        (
            "physical: the volume is being prepared, no StatefulSet yet",
            true,
            with(|o| {
                o.gate = BackupGate::Ready;
                o.restore = InitialRestore::InProgress(api::RestorePhase::Running);
                o.recovery.pending = true;
                o.workload = None;
            }),
            Provisioning,
            "PreparingRecovery",
            true,
            None,
            restored,
        ),
        (
            "physical: the preparation failed (a corrupt segment)",
            true,
            with(|o| {
                o.gate = BackupGate::Ready;
                o.restore =
                    InitialRestore::Failed("WAL file 000000010000000000000004 is corrupt".into());
                o.recovery.pending = true;
                o.workload = None;
            }),
            Failed,
            "RestoreFailed",
            false,
            Some("RestoreFailed"),
            restored,
        ),
        (
            "physical: the server replays WAL",
            true,
            with(|o| {
                o.gate = BackupGate::Ready;
                o.restore = InitialRestore::Completed;
                o.workload = workload(1, 0, 1, true);
                o.recovery.report = Some(api::RecoveryReport {
                    state: api::RecoveryState::Recovering,
                    recovered_to: None,
                    timeline: None,
                    message: None,
                });
            }),
            Deploying,
            "Deploying",
            true,
            None,
            restored,
        ),
        (
            "physical: recovery ended before the target",
            true,
            with(|o| {
                o.gate = BackupGate::Ready;
                o.restore = InitialRestore::Completed;
                o.workload = workload(1, 0, 1, true);
                o.recovery.report = Some(api::RecoveryReport {
                    state: api::RecoveryState::Failed,
                    recovered_to: None,
                    timeline: None,
                    message: Some(
                        "recovery ended before configured recovery target was reached".into(),
                    ),
                });
            }),
            Failed,
            "RecoveryFailed",
            false,
            Some("RecoveryFailed"),
            restored,
        ),
        (
            "replicas not ready before restore",
            true,
            with(|o| {
                o.gate = BackupGate::Ready;
                o.workload = workload(1, 0, 1, true)
            }),
            Deploying,
            "Deploying",
            true,
            None,
            restored,
        ),
        (
            "volumes growing",
            false,
            with(|o| o.volumes = Volumes::Expanding(vec!["data-shop-0".into()])),
            Ready,
            "Ready",
            true,
            None,
            None,
        ),
        (
            "volume growth refused",
            false,
            with(|o| o.volumes = Volumes::Rejected("no expansion".into())),
            Ready,
            "Ready",
            false,
            Some("VolumeExpansionRejected"),
            None,
        ),
    ];
    for (what, from_backup, observed, phase, ready_reason, progressing, degraded, waiting) in rows {
        let db = if from_backup {
            database_from_backup("shop", "seed")
        } else {
            database("shop")
        };
        let status = compute_status(&db, &observed, at(0));
        assert_eq!(status.phase, Some(phase), "{what}: phase");
        assert_eq!(
            status.observed_generation,
            Some(1),
            "{what}: observedGeneration"
        );
        let ready = condition(&status, READY);
        assert_eq!(
            ready.map(|c| c.status.as_str()),
            Some(if phase == Ready { "True" } else { "False" }),
            "{what}: Ready"
        );
        assert_eq!(
            ready.map(|c| c.reason.as_str()),
            Some(ready_reason),
            "{what}: Ready reason"
        );
        assert_eq!(
            conditions::is_true(&status.conditions, PROGRESSING),
            progressing,
            "{what}: Progressing"
        );
        let got_degraded = condition(&status, DEGRADED)
            .filter(|c| c.status == "True")
            .map(|c| c.reason.as_str());
        assert_eq!(got_degraded, degraded, "{what}: Degraded");
        let got_waiting =
            condition(&status, WAITING_FOR_BACKUP).map(|c| (c.status == "True", c.reason.as_str()));
        assert_eq!(got_waiting, waiting, "{what}: WaitingForBackup");
        for c in &status.conditions {
            assert!(!c.message.is_empty(), "{what}: {} has a message", c.type_);
            assert_eq!(c.observed_generation, Some(1), "{what}: {}", c.type_);
        }
    }
}

#[test]
fn messages_say_what_to_do() {
    let seeded = database_from_backup("shop", "seed");
    let rows = [
        (
            BackupGate::DependencyCycle,
            "point spec.backupRef at a Backup of another Database",
        ),
        (
            BackupGate::BackupNotFound,
            "create it or correct spec.backupRef",
        ),
        (
            BackupGate::BackupNotReady,
            "Backup seed to report BackupReady=True",
        ),
    ];
    for (gate, hint) in rows {
        let status = compute_status(&seeded, &with(|o| o.gate = gate), at(0));
        let message = condition(&status, READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        assert!(message.contains(hint), "{gate:?}: {message}");
    }
    let deploying = with(|o| {
        o.workload = workload(2, 1, 2, true);
        o.pod_note = Some("Pod shop-1 is not scheduled (Unschedulable): no nodes".into());
    });
    let status = compute_status(&database("shop"), &deploying, at(0));
    let message = condition(&status, PROGRESSING)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert_eq!(
        message,
        "1/2 replicas ready; Pod shop-1 is not scheduled (Unschedulable): no nodes"
    );
    let status = compute_status(&database("shop"), &with(|o| o.routed = false), at(0));
    let message = condition(&status, READY)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert_eq!(
        message,
        "all 1 replicas ready; waiting for Service shop to route to Pod shop-0"
    );
}

#[test]
fn a_new_statefulset_reads_the_same_before_and_after_its_controller_counts_it() {
    let progress = |observed: Observed| {
        let status = compute_status(&database("shop"), &observed, at(0));
        condition(&status, PROGRESSING).map(|c| c.message.clone())
    };
    let new = |updated, observed_current| Workload {
        desired: 1,
        ready: 0,
        updated,
        observed_current,
        rolling: false,
    };
    let just_created = progress(with(|o| o.workload = Some(new(0, false))));
    let not_counted_yet = progress(with(|o| o.workload = Some(new(0, true))));
    let counted = progress(with(|o| o.workload = Some(new(1, true))));
    assert_eq!(just_created.as_deref(), Some("0/1 replicas ready"));
    assert_eq!(just_created, not_counted_yet, "no status patch in between");
    assert_eq!(just_created, counted, "no status patch in between");
    let rolling = progress(with(|o| o.workload = workload(2, 2, 1, true)));
    assert_eq!(
        rolling.as_deref(),
        Some("2/2 replicas ready, 1 on the newest spec")
    );
}

#[test]
fn endpoint_and_secret_name_appear_once_the_objects_exist() {
    let db = database("shop");
    let status = compute_status(&db, &healthy(), at(0));
    assert_eq!(status.secret_name.as_deref(), Some("shop-credentials"));
    assert_eq!(status.endpoint.as_deref(), Some("shop.prod.svc:5432"));
    assert_eq!(status.ready_replicas, 1);
    let pending = with(|o| {
        o.gate = BackupGate::BackupNotReady;
        o.provisioning = Provisioning::Blocked;
        o.secret_exists = false;
        o.services_exist = false;
        o.workload = None;
    });
    let status = compute_status(&database_from_backup("shop", "seed"), &pending, at(0));
    assert_eq!(status.secret_name, None);
    assert_eq!(status.endpoint, None);
    assert_eq!(status.ready_replicas, 0);
}

#[test]
fn observed_generation_is_always_the_current_generation() {
    let mut db = database_from_backup("shop", "seed");
    db.metadata.generation = Some(7);
    for gate in [
        BackupGate::BackupNotFound,
        BackupGate::DependencyCycle,
        BackupGate::Ready,
    ] {
        let status = compute_status(&db, &with(|o| o.gate = gate), at(0));
        assert_eq!(status.observed_generation, Some(7), "{gate:?}");
    }
}

#[test]
fn transition_time_moves_only_when_a_condition_flips() {
    let mut db = database("shop");
    let deploying = with(|o| o.workload = workload(1, 0, 1, true));
    let first = compute_status(&db, &deploying, at(0));
    db.status = Some(first.clone());

    // Same state later: nothing to patch, times kept.
    let again = compute_status(&db, &deploying, at(5));
    assert!(!api::conditions::status_changed(Some(&first), &again));
    assert_eq!(again, first);

    // A failure: Ready stays False (time kept), Degraded flips (time moves).
    let failing = with(|o| o.pod_failure = pod_failure("CrashLoopBackOff"));
    let failed = compute_status(&db, &failing, at(10));
    assert!(api::conditions::status_changed(Some(&first), &failed));
    let time =
        |s: &DatabaseStatus, t: &str| condition(s, t).map(|c| c.last_transition_time.clone());
    assert_eq!(time(&failed, READY), Some(Time(at(0))));
    assert_eq!(time(&failed, DEGRADED), Some(Time(at(10))));
    db.status = Some(failed);

    // Fixed: Ready flips to True, Degraded flips back.
    let ready = compute_status(&db, &healthy(), at(20));
    assert_eq!(time(&ready, READY), Some(Time(at(20))));
    assert_eq!(time(&ready, DEGRADED), Some(Time(at(20))));
    // Progressing was already False while failed: its time stays.
    assert_eq!(time(&ready, PROGRESSING), Some(Time(at(10))));
}

#[test]
fn waiting_for_backup_goes_away_with_the_backup_ref() {
    let mut db = database_from_backup("shop", "seed");
    let status = compute_status(&db, &with(|o| o.gate = BackupGate::BackupNotReady), at(0));
    assert!(condition(&status, WAITING_FOR_BACKUP).is_some());
    db.status = Some(status);
    db.spec.backup_ref = None;
    let status = compute_status(&db, &healthy(), at(1));
    assert!(condition(&status, WAITING_FOR_BACKUP).is_none());
    // Ready, Progressing, Degraded and ReplicationHealthy.
    assert_eq!(status.conditions.len(), 4);
}

#[test]
fn a_new_generation_needs_a_status_patch() {
    let mut db = database("shop");
    let first = compute_status(&db, &healthy(), at(0));
    db.status = Some(first.clone());
    db.metadata.generation = Some(2);
    let second = compute_status(&db, &healthy(), at(1));
    assert!(api::conditions::status_changed(Some(&first), &second));
}

#[test]
fn restore_states_from_the_restore_object() {
    use crate::validate::fixtures::restore;
    let rows = [
        (None, InitialRestore::Missing),
        (
            Some(restore("shop", RestorePhase::Pending, "")),
            InitialRestore::InProgress(RestorePhase::Pending),
        ),
        (
            Some(restore("shop", RestorePhase::Running, "")),
            InitialRestore::InProgress(RestorePhase::Running),
        ),
        (
            Some(restore("shop", RestorePhase::Completed, "")),
            InitialRestore::Completed,
        ),
        (
            Some(restore("shop", RestorePhase::Failed, "sha256 mismatch")),
            InitialRestore::Failed("sha256 mismatch".into()),
        ),
        (
            Some(restore("shop", RestorePhase::Failed, "")),
            InitialRestore::Failed("no reason given".into()),
        ),
    ];
    for (restore, want) in rows {
        assert_eq!(InitialRestore::of(restore.as_ref()), want);
    }
}

#[test]
fn a_rollout_is_when_the_statefulset_has_two_revisions() {
    use k8s_openapi::api::apps::v1::StatefulSetStatus;
    let with_revisions = |current: &str, update: &str| {
        let mut sts = StatefulSet::default();
        sts.metadata.generation = Some(2);
        sts.status = Some(StatefulSetStatus {
            observed_generation: Some(2),
            current_revision: Some(current.into()),
            update_revision: Some(update.into()),
            ..Default::default()
        });
        Workload::of(&sts)
    };
    assert!(with_revisions("shop-5d8f", "shop-7c41").rolling);
    assert!(!with_revisions("shop-7c41", "shop-7c41").rolling);
    assert!(!Workload::of(&StatefulSet::default()).rolling);
}
