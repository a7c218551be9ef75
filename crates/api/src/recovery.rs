//! Point-in-time recovery into a new Database: the checks both operators make before one
//! starts, from the Backup's status alone (pure). The database-operator reports a refusal on
//! the Database; the backup-operator starts no recovery Job for it. Deciding from the same
//! function, they cannot disagree.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::backup::BackupMethod;
use crate::{Backup, Database};

/// True when `backup` takes base backups and archives WAL.
pub fn is_physical(backup: &Backup) -> bool {
    backup.spec.method == BackupMethod::Physical
}

/// Why `db` cannot be recovered from `backup` as its spec asks, in words a user can act on;
/// `None` when it can (or when the Backup is not ready yet, which is a wait, not a refusal).
pub fn refusal(db: &Database, backup: &Backup) -> Option<String> {
    let backup_ref = db.spec.backup_ref.as_ref()?;
    let target = backup_ref.target_time.as_ref()?;
    let name = &backup_ref.name;
    if !is_physical(backup) {
        return Some(format!(
            "spec.backupRef.targetTime {} needs a Backup of method: physical, but Backup {name} is logical (pg_dump artifacts restore only as they were taken); remove targetTime or name a physical Backup",
            show(target)
        ));
    }
    if !backup.is_ready() {
        return None;
    }
    // Not known yet (the archive's first window follows its first base backup): a wait,
    // see [`awaits_window`].
    let window = window(backup)?;
    let (first, last) = (
        &window.first_recoverable_time,
        &window.last_recoverable_time,
    );
    if target.0 < first.0 || target.0 > last.0 {
        return Some(format!(
            "spec.backupRef.targetTime {} is outside the recoverability window of Backup {name}: from {} to {}; choose a time within it",
            show(target),
            show(first),
            show(last)
        ));
    }
    None
}

/// True while `db` asks for a target that cannot be checked yet: the physical Backup is ready
/// but reports no recoverability window so far. Neither operator acts before it does.
pub fn awaits_window(db: &Database, backup: &Backup) -> bool {
    let targeted = db
        .spec
        .backup_ref
        .as_ref()
        .is_some_and(|r| r.target_time.is_some());
    targeted && is_physical(backup) && window(backup).is_none()
}

fn window(backup: &Backup) -> Option<&crate::backup::RecoverabilityWindow> {
    backup.status.as_ref()?.recoverability.as_ref()
}

fn show(time: &Time) -> String {
    time.0.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backup(method: &str, window: Option<(&str, &str)>) -> Backup {
        let mut status = json!({"conditions": [{"type": "BackupReady", "status": "True",
            "reason": "Completed", "message": "", "lastTransitionTime": "2026-12-06T07:00:00Z"}]});
        if let Some((first, last)) = window {
            status["recoverability"] =
                json!({"firstRecoverableTime": first, "lastRecoverableTime": last});
        }
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "pitr", "namespace": "prod"},
            "spec": {"databaseRef": {"name": "shop"}, "method": method},
            "status": status
        }))
        .unwrap()
    }

    fn database(target: Option<&str>) -> Database {
        let mut backup_ref = json!({"name": "pitr"});
        if let Some(target) = target {
            backup_ref["targetTime"] = json!(target);
        }
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Database",
            "metadata": {"name": "copy", "namespace": "prod"},
            "spec": {"databaseName": "shop", "username": "shop_owner", "storage": {"size": "1Gi"},
                     "backupRef": backup_ref}
        }))
        .unwrap()
    }

    #[test]
    fn a_target_is_checked_against_the_window() {
        let window = Some(("2026-12-06T07:00:00Z", "2026-12-06T08:00:00Z"));
        // (target, method, window, refusal contains)
        let rows = [
            (None, "physical", window, None),
            (Some("2026-12-06T07:30:00Z"), "physical", window, None),
            (Some("2026-12-06T07:00:00Z"), "physical", window, None),
            (Some("2026-12-06T08:00:00Z"), "physical", window, None),
            (
                Some("2026-12-06T06:59:59Z"),
                "physical",
                window,
                Some(
                    "targetTime 2026-12-06T06:59:59Z is outside the recoverability window of Backup pitr: from 2026-12-06T07:00:00Z to 2026-12-06T08:00:00Z",
                ),
            ),
            (
                Some("2026-12-06T09:00:00Z"),
                "physical",
                window,
                Some("outside the recoverability window"),
            ),
            // No window yet: a wait, not a refusal.
            (Some("2026-12-06T07:30:00Z"), "physical", None, None),
            (
                Some("2026-12-06T07:30:00Z"),
                "logical",
                window,
                Some("needs a Backup of method: physical"),
            ),
            (None, "logical", None, None),
        ];
        for (target, method, window, want) in rows {
            let got = refusal(&database(target), &backup(method, window));
            match (want, &got) {
                (None, None) => {}
                (Some(want), Some(got)) => assert!(got.contains(want), "{got} lacks {want}"),
                _ => panic!("{target:?} {method}: got {got:?}, want {want:?}"),
            }
        }
        let target = Some("2026-12-06T07:30:00Z");
        assert!(awaits_window(&database(target), &backup("physical", None)));
        assert!(!awaits_window(
            &database(target),
            &backup("physical", window)
        ));
        assert!(!awaits_window(&database(None), &backup("physical", None)));
    }
}
