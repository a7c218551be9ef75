//! Condition types, reasons and helpers following the Kubernetes API conventions.
//!
//! Both operators merge new conditions into the old ones with [`set`], which keeps
//! `lastTransitionTime` unless the status flips, and patch a status only when
//! [`status_changed`] says so, so a reconcile that learns nothing new writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Database: every replica serves SQL (and the initial restore, if any, is done).
pub const READY: &str = "Ready";
/// Database/Backup/Restore: work is under way towards the desired state.
pub const PROGRESSING: &str = "Progressing";
/// Database/Backup: something is wrong that needs attention; the reason says what.
pub const DEGRADED: &str = "Degraded";
/// Database: every standby streams from the primary and is not far behind; when not, the
/// reason and message say which standby and why.
pub const REPLICATION_HEALTHY: &str = "ReplicationHealthy";
/// Database: provisioning waits for the Backup named in `spec.backupRef`.
pub const WAITING_FOR_BACKUP: &str = "WaitingForBackup";
/// Backup: a verified artifact exists that a restore can use.
pub const BACKUP_READY: &str = "BackupReady";
/// Backup: runs wait because the Database is missing or not Ready.
pub const WAITING_FOR_DATABASE: &str = "WaitingForDatabase";
/// Backup with `spec.verification`: the newest restore drill passed.
pub const VERIFIED: &str = "Verified";
/// Restore: the artifact was restored into the target Database.
pub const RESTORED: &str = "Restored";
/// Backup (`method: physical`): WAL reaches the archive continuously. False says why:
/// `StoreUnreachable`, `ServerUnreachable`, `SlotLost`, `SegmentRefused` or `Gap`.
pub const ARCHIVE_HEALTHY: &str = "ArchiveHealthy";

/// The condition of this type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition of this type is present with status "True".
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// A condition describing `generation`, stamped with `now`.
pub fn new(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

/// Puts `condition` into `conditions`, keeping the old `lastTransitionTime` when the status
/// did not flip, as the API conventions require.
pub fn set(conditions: &mut Vec<Condition>, mut condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}

/// Removes the condition of this type, for conditions that only exist while they apply.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// Whether `new` says anything `old` does not: the whole statuses compared, with the
/// conditions' `lastTransitionTime` masked and their order ignored. Comparing whole statuses
/// means a field added to a status later can never be left unpatched. A status patch is only
/// worth sending when this is true.
pub fn status_changed<S: serde::Serialize>(old: Option<&S>, new: &S) -> bool {
    let Some(old) = old else { return true };
    match (serde_json::to_value(old), serde_json::to_value(new)) {
        (Ok(old), Ok(new)) => masked(old) != masked(new),
        // Unserializable: send the patch, which reports the error.
        _ => true,
    }
}

/// `status` with every `conditions` list sorted by type and without transition times.
fn masked(status: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match status {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("conditions", Value::Array(mut list)) => {
                        for condition in &mut list {
                            if let Value::Object(c) = condition {
                                c.remove("lastTransitionTime");
                            }
                        }
                        list.sort_by_key(|c| c.get("type").map(Value::to_string));
                        (key, Value::Array(list))
                    }
                    (_, value) => (key, masked(value)),
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + minute * 60).unwrap()
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let mut conditions = vec![new(READY, false, "Deploying", "a", Some(1), at(0))];
        set(
            &mut conditions,
            new(READY, false, "Verifying", "b", Some(1), at(5)),
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].reason, "Verifying");
        assert_eq!(conditions[0].last_transition_time, Time(at(0)));
    }

    #[test]
    fn transition_time_moves_when_status_flips() {
        let mut conditions = vec![new(READY, false, "Deploying", "a", Some(1), at(0))];
        set(
            &mut conditions,
            new(READY, true, "Ready", "b", Some(1), at(5)),
        );
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].last_transition_time, Time(at(5)));
    }

    #[test]
    fn new_condition_types_are_appended() {
        let mut conditions = vec![new(READY, false, "Deploying", "a", Some(1), at(0))];
        set(
            &mut conditions,
            new(DEGRADED, true, "CrashLoop", "b", Some(1), at(1)),
        );
        assert_eq!(conditions.len(), 2);
        assert!(is_true(&conditions, DEGRADED));
        assert!(!is_true(&conditions, READY));
        remove(&mut conditions, DEGRADED);
        assert!(find(&conditions, DEGRADED).is_none());
    }

    /// A status like the operators' own: a field next to its conditions.
    #[derive(Clone, serde::Serialize)]
    struct Status {
        phase: Option<String>,
        conditions: Vec<Condition>,
    }

    #[test]
    fn comparison_ignores_time_and_order_but_not_content() {
        let a = Status {
            phase: Some("Ready".into()),
            conditions: vec![
                new(READY, true, "Ready", "m", Some(2), at(0)),
                new(DEGRADED, false, "Healthy", "m", Some(2), at(0)),
            ],
        };
        let mut b = Status {
            phase: Some("Ready".into()),
            conditions: vec![
                new(DEGRADED, false, "Healthy", "m", Some(2), at(9)),
                new(READY, true, "Ready", "m", Some(2), at(9)),
            ],
        };
        assert!(!status_changed(Some(&a), &b));
        assert!(status_changed(None, &b));
        b.conditions[1].message = "other".into();
        assert!(status_changed(Some(&a), &b));
        b.conditions[1].message = "m".into();
        b.conditions[1].observed_generation = Some(3);
        assert!(status_changed(Some(&a), &b));
        b.conditions[1].observed_generation = Some(2);
        b.conditions.truncate(1);
        assert!(status_changed(Some(&a), &b));
    }

    #[test]
    fn every_other_field_counts() {
        let a = Status {
            phase: Some("Ready".into()),
            conditions: vec![new(READY, true, "Ready", "m", Some(2), at(0))],
        };
        let mut b = a.clone();
        b.phase = Some("Failed".into());
        assert!(status_changed(Some(&a), &b));
        b.phase = None;
        assert!(status_changed(Some(&a), &b));
    }
}
