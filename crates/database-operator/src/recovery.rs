//! A Database created from a `method: physical` Backup (pure): its data volume is prepared by
//! the backup-operator's initial Restore before the StatefulSet exists, and its first server
//! replays the archived WAL and promotes before it serves. What the instance's manager
//! reports on its Pod ([`api::names::ANNOTATION_RECOVERY`]) and what the Restore recorded
//! become `status.recovery`.

use api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use api::names::ANNOTATION_RECOVERY;
use api::{Database, RecoveryReport, RecoveryStatus, Restore, RestorePhase};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::gather::Gathered;

/// What the status needs to know about a recovery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovery {
    /// The StatefulSet waits: the initial Restore has not prepared the data volume yet.
    pub pending: bool,
    /// What the recovering instance reports, if any does.
    pub report: Option<RecoveryReport>,
    /// `status.recovery` as it should read now.
    pub status: Option<RecoveryStatus>,
}

impl Recovery {
    pub fn of(db: &Database, g: &Gathered) -> Recovery {
        let report = report(&g.pods);
        Recovery {
            pending: pending(db, g),
            status: status(db, g.restore.as_ref(), report.as_ref()),
            report,
        }
    }
}

/// True while the StatefulSet must not be created: the Database starts from a physical
/// Backup and its initial Restore has not completed. Its first server must start on the
/// prepared data, never on an empty volume (initdb would make a new cluster, and the
/// recovery Job would then refuse the volume as not empty).
pub fn pending(db: &Database, g: &Gathered) -> bool {
    let physical = g.backup.as_ref().is_some_and(api::recovery::is_physical);
    db.spec.backup_ref.is_some()
        && g.statefulset.is_none()
        && physical
        && g.restore.as_ref().map(Restore::phase) != Some(RestorePhase::Completed)
}

/// The newest report an instance's manager left on its Pod.
pub fn report(pods: &[Pod]) -> Option<RecoveryReport> {
    let mut pods: Vec<_> = pods.iter().collect();
    pods.sort_by_key(|p| p.name_any());
    pods.iter()
        .filter_map(|p| p.annotations().get(ANNOTATION_RECOVERY))
        .find_map(|text| serde_json::from_str(text).ok())
}

/// `status.recovery`: the Backup, base backup and target the Restore recorded, and the
/// point and timeline the server reported after it promoted. What was known before is kept:
/// the report goes with the Pod that made it, and the Restore may be deleted.
pub fn status(
    db: &Database,
    restore: Option<&Restore>,
    report: Option<&RecoveryReport>,
) -> Option<RecoveryStatus> {
    let old = db.status.as_ref().and_then(|s| s.recovery.clone());
    let restored = restore
        .and_then(|r| r.status.as_ref())
        .filter(|s| s.base_backup.is_some());
    let (Some(backup_ref), true) = (&db.spec.backup_ref, restored.is_some() || old.is_some())
    else {
        return old;
    };
    let mut status = old.unwrap_or_default();
    status.backup = backup_ref.name.clone();
    if let Some(restored) = restored {
        status.base_backup = restored.base_backup.clone();
        status.target_time = restored
            .target_time
            .clone()
            .or_else(|| backup_ref.target_time.clone());
    }
    if let Some(report) = report.filter(|r| r.state == api::RecoveryState::Promoted) {
        if let Some(to) = report.recovered_to.as_deref().and_then(parse_time) {
            status.recovered_to = Some(to);
        }
        status.timeline = report.timeline.or(status.timeline);
    }
    Some(status)
}

fn parse_time(text: &str) -> Option<Time> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database_from_backup;
    use crate::validate::fixtures::restore;
    use serde_json::json;

    fn pod(name: &str, report: Option<serde_json::Value>) -> Pod {
        let annotations = match report {
            Some(r) => json!({ANNOTATION_RECOVERY: r.to_string()}),
            None => json!({}),
        };
        serde_json::from_value(json!({"metadata": {"name": name, "annotations": annotations}}))
            .unwrap()
    }

    fn physical(ready: bool) -> api::Backup {
        let mut backup = crate::validate::fixtures::backup("seed", "old-shop", ready);
        backup.spec.method = api::backup::BackupMethod::Physical;
        backup
    }

    #[test]
    fn the_statefulset_waits_for_the_prepared_volume_only_with_a_physical_backup() {
        let db = database_from_backup("shop", "seed");
        let running = restore("shop", RestorePhase::Running, "");
        let done = restore("shop", RestorePhase::Completed, "");
        let logical = crate::validate::fixtures::backup("seed", "old-shop", true);
        let sts = k8s_openapi::api::apps::v1::StatefulSet::default();
        // (backup, restore, statefulset exists, pending)
        let rows = [
            (Some(physical(true)), None, false, true),
            (Some(physical(true)), Some(running.clone()), false, true),
            (Some(physical(true)), Some(done.clone()), false, false),
            (Some(physical(true)), Some(running), true, false),
            (Some(logical), None, false, false),
            (None, Some(done), false, false),
        ];
        for (i, (backup, restore, exists, want)) in rows.into_iter().enumerate() {
            let g = Gathered {
                backup,
                restore,
                statefulset: exists.then(|| sts.clone()),
                ..Gathered::default()
            };
            assert_eq!(pending(&db, &g), want, "row {i}");
        }
    }

    #[test]
    fn status_joins_the_restore_and_the_instance_report_and_keeps_what_it_knew() {
        let mut db = database_from_backup("shop", "seed");
        let mut done = restore("shop", RestorePhase::Completed, "");
        if let Some(s) = done.status.as_mut() {
            s.base_backup = Some("20261206T070000Z".into());
            s.target_time = parse_time("2026-12-06T07:30:00Z");
        }
        let recovering = json!({"state": "Recovering"});
        let promoted =
            json!({"state": "Promoted", "recoveredTo": "2026-12-06T07:29:58.5Z", "timeline": 3});
        assert_eq!(status(&db, None, None), None, "nothing known yet");

        let reports = [pod("shop-1", None), pod("shop-0", Some(recovering))];
        let during = status(&db, Some(&done), report(&reports).as_ref()).unwrap();
        assert_eq!(during.backup, "seed");
        assert_eq!(during.base_backup.as_deref(), Some("20261206T070000Z"));
        assert_eq!(during.recovered_to, None);

        let reports = [pod("shop-0", Some(promoted))];
        let after = status(&db, Some(&done), report(&reports).as_ref()).unwrap();
        assert_eq!(
            after
                .recovered_to
                .as_ref()
                .map(|t| t.0.to_string())
                .as_deref(),
            Some("2026-12-06T07:29:58.5Z")
        );
        assert_eq!(after.timeline, Some(3));
        assert_eq!(
            after
                .target_time
                .as_ref()
                .map(|t| t.0.to_string())
                .as_deref(),
            Some("2026-12-06T07:30:00Z")
        );

        // The Pod was replaced and the Restore deleted: what was recorded stays.
        db.status = Some(api::DatabaseStatus {
            recovery: Some(after.clone()),
            ..api::DatabaseStatus::default()
        });
        assert_eq!(status(&db, None, None), Some(after));
    }
}
