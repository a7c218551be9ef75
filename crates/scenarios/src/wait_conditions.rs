//! What the tests wait for and assert on: conditions, phases, readiness.

use api::{Backup, Database, conditions};

/// The condition of `type_` on a Database, if any.
pub fn database_condition(db: &Database, type_: &str) -> Option<(String, String)> {
    db.status
        .as_ref()
        .and_then(|s| conditions::find(&s.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// The condition of `type_` on a Backup, if any.
pub fn backup_condition(backup: &Backup, type_: &str) -> Option<(String, String)> {
    backup
        .status
        .as_ref()
        .and_then(|s| conditions::find(&s.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// A wait condition: the condition `type_` has this status and reason.
pub fn has_condition<K>(
    read: fn(&K, &str) -> Option<(String, String)>,
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
) -> impl Fn(Option<&K>) -> bool {
    move |object: Option<&K>| {
        object.and_then(|o| read(o, type_)) == Some((status.to_string(), reason.to_string()))
    }
}

/// A wait condition: the Backup has a run in flight.
pub fn run_in_flight(backup: Option<&Backup>) -> bool {
    backup
        .and_then(|b| b.status.as_ref())
        .is_some_and(|s| s.active_job.is_some())
}

/// A wait condition: the Backup's latest run Completed and the status says where it is.
pub fn backup_completed(backup: Option<&Backup>) -> bool {
    backup.and_then(|b| b.status.as_ref()).is_some_and(|s| {
        s.phase == Some(api::BackupPhase::Completed) && s.backup_location.is_some()
    })
}

/// A wait condition: the Database reports Ready for its current generation.
pub fn database_ready(db: Option<&Database>) -> bool {
    db.is_some_and(Database::is_ready)
}

/// The Database's Ready condition reason, for failure messages and transitions.
pub fn ready_reason(db: &Database) -> String {
    db.status
        .as_ref()
        .and_then(|s| api::conditions::find(&s.conditions, api::conditions::READY))
        .map(|c| format!("{}/{}", c.status, c.reason))
        .unwrap_or_default()
}
