//! The archiving part of a physical Backup's status (pure): `status.archive`,
//! `status.recoverability`, `ArchiveHealthy`, and BackupReady, which for a physical Backup
//! also needs the archiver to stream: a base backup without the WAL after it restores to
//! nothing later than its own end.

use api::BackupStatus;
use api::conditions::{self, ARCHIVE_HEALTHY, BACKUP_READY};
use chrono::{DateTime, Utc};

use super::health::{self, Seen};
use crate::controller::time::to_timestamp;

/// Reason of BackupReady=False when a base backup exists but archiving does not stream.
pub const NOT_ARCHIVING: &str = "NotArchiving";

/// Fills in what `seen` says; `status` already carries the previous archive and window.
pub fn apply(status: &mut BackupStatus, seen: &Seen, generation: Option<i64>, now: DateTime<Utc>) {
    let health = health::health(seen, status.archive.as_ref());
    status.archive = health::archive_status(seen, status.archive.as_ref(), now);
    status.recoverability = health::window(seen, status.recoverability.as_ref());
    let has_base = conditions::is_true(&status.conditions, BACKUP_READY);
    let base = status
        .history
        .first()
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    let mut set = |type_: &str, healthy: bool, reason: &str, message: String| {
        conditions::set(
            &mut status.conditions,
            conditions::new(
                type_,
                healthy,
                reason,
                message,
                generation,
                to_timestamp(now),
            ),
        );
    };
    set(
        ARCHIVE_HEALTHY,
        health.healthy,
        health.reason,
        health.message.clone(),
    );
    if has_base && !health::streaming(seen) {
        set(
            BACKUP_READY,
            false,
            NOT_ARCHIVING,
            format!(
                "base backup {base} exists, but WAL archiving does not stream, so nothing after it can be recovered to: {}",
                health.message
            ),
        );
    }
}

/// The `ArchiveHealthy` change worth an Event: (warning, reason, message), or None when
/// its status and reason stayed the same.
pub fn change(old: Option<&BackupStatus>, new: &BackupStatus) -> Option<(bool, String, String)> {
    let find = |s: &BackupStatus| conditions::find(&s.conditions, ARCHIVE_HEALTHY).cloned();
    let before = old.and_then(find);
    let after = find(new)?;
    let same = before
        .as_ref()
        .is_some_and(|b| b.status == after.status && b.reason == after.reason);
    if same {
        return None;
    }
    // A new Backup's archiver Pod that does not run yet is expected, not a warning.
    let starting = before.is_none() && after.reason == health::ARCHIVER_NOT_RUNNING;
    let warning = after.status != "True" && !starting;
    let reason = if warning {
        format!("Archiving{}", after.reason)
    } else {
        "ArchivingStreaming".to_string()
    };
    Some((warning, reason, after.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::time::parse_rfc3339;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_rfc3339("2026-12-06T07:01:00Z").unwrap()
    }

    fn ready_status() -> BackupStatus {
        serde_json::from_value(json!({
            "history": [{"runId": "20261206T070000Z", "time": "2026-12-06T07:00:05Z",
                "location": "pvc://c/x", "sizeBytes": 1, "sha256": "ab"}],
            "conditions": [{"type": "BackupReady", "status": "True", "reason": "ArtifactAvailable",
                "message": "", "lastTransitionTime": "2026-12-06T07:00:05Z"}]
        }))
        .unwrap()
    }

    fn reason(status: &BackupStatus, type_: &str) -> (String, String) {
        let c = conditions::find(&status.conditions, type_).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_physical_backup_is_ready_only_while_archiving_streams() {
        let streaming = Seen::Report(
            serde_json::from_value(json!({"streaming": true, "timeline": 1,
                "lastArchivedSegment": "000000010000000000000003",
                "lastArchivedTime": "2026-12-06T07:00:50Z"}))
            .unwrap(),
        );
        let mut status = ready_status();
        apply(&mut status, &streaming, Some(1), now());
        assert_eq!(
            reason(&status, BACKUP_READY),
            ("True".into(), "ArtifactAvailable".into())
        );
        assert_eq!(
            reason(&status, ARCHIVE_HEALTHY),
            ("True".into(), "Streaming".into())
        );
        assert_eq!(
            status
                .archive
                .as_ref()
                .unwrap()
                .last_archived_segment
                .as_deref(),
            Some("000000010000000000000003")
        );
        let old = status.clone();
        let mut down = ready_status();
        down.archive = old.archive.clone();
        apply(
            &mut down,
            &Seen::NotRunning("Pod pitr-wal-0 does not exist".into()),
            Some(1),
            now(),
        );
        assert_eq!(
            reason(&down, BACKUP_READY),
            ("False".into(), NOT_ARCHIVING.into())
        );
        assert_eq!(
            reason(&down, ARCHIVE_HEALTHY),
            ("False".into(), "ArchiverNotRunning".into())
        );
        // What was archived stays visible while the archiver is away.
        assert_eq!(down.archive, old.archive);
        let (warning, event, message) = change(Some(&old), &down).unwrap();
        assert!(warning);
        assert_eq!(event, "ArchivingArchiverNotRunning");
        assert!(message.contains("does not exist"), "{message}");
        // The first look at a new Backup, before its Pod runs: a Normal Event.
        let mut fresh = ready_status();
        apply(
            &mut fresh,
            &Seen::NotRunning("Pod pitr-wal-0 does not exist".into()),
            Some(1),
            now(),
        );
        let (warning, _, _) = change(None, &fresh).unwrap();
        assert!(!warning);
        // Nothing changed: no Event.
        let mut again = old.clone();
        apply(&mut again, &streaming, Some(1), now());
        assert_eq!(change(Some(&old), &again), None);
    }
}
