//! May this Database be provisioned? Pure: decides from what [`crate::gather`] read.
//!
//! The schema already rejects malformed specs, so the only question left is the one that
//! depends on another object: a Database with a `backupRef` is initialised from that Backup,
//! and provisioning waits until the Backup has a verified artifact.

use api::{Backup, Database, Restore, RestorePhase};
use kube::ResourceExt;

/// What `spec.backupRef` allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupGate {
    /// No `backupRef`: provision at once.
    NotRequired,
    /// The named Backup does not exist (yet): wait for it.
    BackupNotFound,
    /// The Backup exists but has no verified artifact yet: wait for `BackupReady=True`.
    BackupNotReady,
    /// The Backup backs up this very Database, which will never exist before it is
    /// provisioned: a permanent error until `backupRef` changes.
    DependencyCycle,
    /// The Backup cannot give what `backupRef` asks (a `targetTime` outside its
    /// recoverability window, or with a logical Backup): a permanent error until the spec
    /// changes; [`refusal`] says why.
    Refused,
    /// The Backup is ready, or the initial restore already completed: provision.
    Ready,
}

impl BackupGate {
    /// True when the Database's objects may be created or updated.
    pub fn allows_provisioning(self) -> bool {
        matches!(self, BackupGate::NotRequired | BackupGate::Ready)
    }

    /// The condition reason naming this state.
    pub fn reason(self) -> &'static str {
        match self {
            BackupGate::NotRequired => "NoBackupRef",
            BackupGate::BackupNotFound => "BackupNotFound",
            BackupGate::BackupNotReady => "BackupNotReady",
            BackupGate::DependencyCycle => "DependencyCycle",
            BackupGate::Refused => "RecoveryTargetRefused",
            BackupGate::Ready => "BackupReady",
        }
    }
}

/// The gate for `db`, given the Backup its `backupRef` names and its initial Restore.
///
/// A completed initial restore opens the gate for good: the Backup only seeds the Database,
/// so a Backup deleted or failing afterwards must not stop updates to a running Database.
pub fn backup_gate(
    db: &Database,
    backup: Option<&Backup>,
    restore: Option<&Restore>,
) -> BackupGate {
    if db.spec.backup_ref.is_none() {
        return BackupGate::NotRequired;
    }
    if restore.is_some_and(|r| r.phase() == RestorePhase::Completed) {
        return BackupGate::Ready;
    }
    let Some(backup) = backup else {
        return BackupGate::BackupNotFound;
    };
    if backup.spec.database_ref.name == db.name_any() {
        return BackupGate::DependencyCycle;
    }
    if api::recovery::refusal(db, backup).is_some() {
        return BackupGate::Refused;
    }
    if backup.is_ready() && !api::recovery::awaits_window(db, backup) {
        BackupGate::Ready
    } else {
        BackupGate::BackupNotReady
    }
}

/// Why the Backup cannot give what `backupRef` asks (with [`BackupGate::Refused`]).
pub fn refusal(db: &Database, backup: Option<&Backup>) -> Option<String> {
    api::recovery::refusal(db, backup?)
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The Backups and Restores these tests vary, from the test kit's builders.

    use api::conditions;
    use api::k8s_openapi::jiff::Timestamp;
    use api::{Backup, BackupStatus, Restore, RestorePhase, RestoreStatus};

    /// A Backup of `database` in `prod`, ready or not.
    pub fn backup(name: &str, database: &str, ready: bool) -> Backup {
        let mut backup = testkit::backup(name, database)
            .set("/metadata/namespace", serde_json::json!("prod"))
            .build();
        backup.status = Some(BackupStatus {
            conditions: vec![conditions::new(
                conditions::BACKUP_READY,
                ready,
                if ready { "Completed" } else { "Pending" },
                "",
                Some(1),
                Timestamp::UNIX_EPOCH,
            )],
            ..BackupStatus::default()
        });
        backup
    }

    /// The initial Restore of `database` in `phase`, with `message` on its Restored condition.
    pub fn restore(database: &str, phase: RestorePhase, message: &str) -> Restore {
        let name = api::names::initial_restore(database);
        let mut restore = testkit::restore(&name, "seed", database)
            .set("/metadata/namespace", serde_json::json!("prod"))
            .build();
        restore.status = Some(RestoreStatus {
            phase: Some(phase),
            conditions: vec![conditions::new(
                conditions::RESTORED,
                phase == RestorePhase::Completed,
                "Restore",
                message,
                Some(1),
                Timestamp::UNIX_EPOCH,
            )],
            ..RestoreStatus::default()
        });
        restore
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{backup, restore};
    use super::*;
    use crate::builders::fixtures::{database, database_from_backup};

    #[test]
    fn backup_gate_table() {
        let plain = database("shop");
        let seeded = database_from_backup("shop", "seed");
        let ready = backup("seed", "old-shop", true);
        let not_ready = backup("seed", "old-shop", false);
        let own = backup("seed", "shop", true);
        let done = restore("shop", RestorePhase::Completed, "");
        let running = restore("shop", RestorePhase::Running, "");
        let rows = [
            ("no backupRef", &plain, None, None, BackupGate::NotRequired),
            (
                "backup missing",
                &seeded,
                None,
                None,
                BackupGate::BackupNotFound,
            ),
            (
                "backup not ready",
                &seeded,
                Some(&not_ready),
                None,
                BackupGate::BackupNotReady,
            ),
            (
                "backup ready",
                &seeded,
                Some(&ready),
                None,
                BackupGate::Ready,
            ),
            (
                "restore running",
                &seeded,
                Some(&ready),
                Some(&running),
                BackupGate::Ready,
            ),
            (
                "backup of itself",
                &seeded,
                Some(&own),
                None,
                BackupGate::DependencyCycle,
            ),
            (
                "restored, backup gone",
                &seeded,
                None,
                Some(&done),
                BackupGate::Ready,
            ),
            (
                "restored, backup failing",
                &seeded,
                Some(&not_ready),
                Some(&done),
                BackupGate::Ready,
            ),
        ];
        for (what, db, backup, restore, want) in rows {
            assert_eq!(backup_gate(db, backup, restore), want, "{what}");
        }
    }

    #[test]
    fn a_target_outside_the_window_is_refused_until_the_spec_changes() {
        use api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let time = |t: &str| -> Time { serde_json::from_value(serde_json::json!(t)).unwrap() };
        let mut db = database_from_backup("shop", "seed");
        let mut physical = backup("seed", "old-shop", true);
        physical.spec.method = api::backup::BackupMethod::Physical;
        if let Some(s) = physical.status.as_mut() {
            s.recoverability = Some(api::backup::RecoverabilityWindow {
                first_recoverable_time: time("2026-12-06T07:00:00Z"),
                last_recoverable_time: time("2026-12-06T08:00:00Z"),
            });
        }
        let target = |db: &mut Database, t: &str| {
            if let Some(r) = db.spec.backup_ref.as_mut() {
                r.target_time = Some(time(t));
            }
        };
        target(&mut db, "2026-12-06T07:30:00Z");
        assert_eq!(backup_gate(&db, Some(&physical), None), BackupGate::Ready);
        target(&mut db, "2026-12-06T09:00:00Z");
        assert_eq!(backup_gate(&db, Some(&physical), None), BackupGate::Refused);
        let message = refusal(&db, Some(&physical)).unwrap_or_default();
        assert!(
            message.contains("from 2026-12-06T07:00:00Z to 2026-12-06T08:00:00Z"),
            "{message}"
        );
        // A logical Backup has no points in time.
        let logical = backup("seed", "old-shop", true);
        assert_eq!(backup_gate(&db, Some(&logical), None), BackupGate::Refused);
        // Once the initial restore completed, the Backup no longer matters.
        let done = restore("shop", RestorePhase::Completed, "");
        assert_eq!(
            backup_gate(&db, Some(&physical), Some(&done)),
            BackupGate::Ready
        );
    }

    #[test]
    fn only_not_required_and_ready_allow_provisioning() {
        let rows = [
            (BackupGate::NotRequired, true),
            (BackupGate::BackupNotFound, false),
            (BackupGate::BackupNotReady, false),
            (BackupGate::DependencyCycle, false),
            (BackupGate::Refused, false),
            (BackupGate::Ready, true),
        ];
        for (gate, want) in rows {
            assert_eq!(gate.allows_provisioning(), want, "{gate:?}");
        }
    }
}
