//! Step 6: a Kubernetes Event when the Database's situation changes.
//!
//! Events are decided from the old and the new status ([`announcement`], pure), so a
//! reconcile that changes nothing publishes nothing. Their notes are condition messages,
//! which never contain the password.

use api::conditions::{self, READY};
use api::{Database, DatabasePhase, DatabaseStatus};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::Recorder;
use runtime::events::{self, Severity};

/// An Event to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Announcement {
    pub warning: bool,
    /// The Ready condition's reason: `Deploying`, `Ready`, `ImagePullBackOff`, ...
    pub reason: String,
    pub note: String,
    /// The object the Event is also about, besides the Database. Events with the same reason
    /// and objects are folded into one series by kube's recorder, keeping the first note, so
    /// each reverted object is named here.
    pub related: Option<ObjectReference>,
}

/// The Event for a change from `old` to `new`: when the phase or the Ready reason changed to
/// something a user must hear of. A Warning when the Database failed, waits for a Backup
/// that does not exist, or cannot apply its objects; a Normal Event when it became Ready.
/// The steps on the way (Deploying, Verifying, waiting for a Backup) are in the status and
/// its conditions; as Events they would cost a write each and, with a thousand Databases,
/// bury the ones that matter in `kubectl get events`.
pub fn announcement(old: Option<&DatabaseStatus>, new: &DatabaseStatus) -> Option<Announcement> {
    let ready = conditions::find(&new.conditions, READY)?;
    let old_reason = old
        .and_then(|o| conditions::find(&o.conditions, READY))
        .map(|c| c.reason.as_str());
    let old_phase = old.and_then(|o| o.phase);
    if old_phase == new.phase && old_reason == Some(ready.reason.as_str()) {
        return None;
    }
    let warning = new.phase == Some(DatabasePhase::Failed)
        || ready.reason == "BackupNotFound"
        || conditions::find(&new.conditions, conditions::DEGRADED)
            .is_some_and(|c| c.status == "True");
    if !warning && new.phase != Some(DatabasePhase::Ready) {
        return None;
    }
    Some(Announcement {
        warning,
        reason: ready.reason.clone(),
        note: events::note(&ready.message).to_string(),
        related: None,
    })
}

/// The Warning for a failover recorded since `old`: who took over from whom, and what may
/// have been lost.
pub fn failover(old: Option<&DatabaseStatus>, new: &DatabaseStatus) -> Option<Announcement> {
    let report = new.last_failover.as_ref()?;
    if old.and_then(|o| o.last_failover.as_ref()) == Some(report) {
        return None;
    }
    let loss = match (report.synchronous, report.lost_bytes) {
        (true, _) => "with synchronous standbys no acknowledged transaction was lost".to_string(),
        (false, Some(0)) => {
            "the promoted standby had received all the WAL the lost primary last reported"
                .to_string()
        }
        (false, Some(bytes)) => format!(
            "asynchronous replication: about {bytes} bytes of WAL written by {} may be lost              (with their transactions)",
            report.from
        ),
        (false, None) => format!(
            "asynchronous replication: {} had not reported its position, so what was lost is unknown",
            report.from
        ),
    };
    Some(Announcement {
        warning: true,
        reason: "Failover".to_string(),
        note: events::note(&format!(
            "{} took over as primary from {}, which was lost; {loss}",
            report.to, report.from
        ))
        .to_string(),
        related: None,
    })
}

/// The Normal Event for a switchover the operator asked for before scaling down.
pub fn switchover_for_scale_down(note: String) -> Announcement {
    Announcement {
        warning: false,
        reason: "SwitchoverBeforeScaleDown".to_string(),
        note: events::note(&note).to_string(),
        related: None,
    }
}

/// The Normal Event for a step of a rollout: a Pod replaced with the newest spec (`pod` is
/// named, so each replacement is its own series), or the one switchover before the primary's.
pub fn rollout_step(note: String, pod: Option<ObjectReference>) -> Announcement {
    Announcement {
        warning: false,
        reason: "RollingUpdate".to_string(),
        note: events::note(&note).to_string(),
        related: pod,
    }
}

/// The Warning for an owned object put back after someone changed `field` by hand.
pub fn drift_reverted(object: ObjectReference, field: &str) -> Announcement {
    let kind = object.kind.clone().unwrap_or_default();
    let name = object.name.clone().unwrap_or_default();
    Announcement {
        warning: true,
        reason: "DriftReverted".to_string(),
        note: events::note(&format!(
            "{kind} {name}: {field} was changed outside the operator and has been put back; \
             change the Database instead"
        ))
        .to_string(),
        related: Some(object),
    }
}

/// Publishes `announcement` for `db`. A failure is logged, not returned: an Event is worth
/// less than finishing the reconcile.
pub async fn publish(recorder: &Recorder, db: &Database, announcement: Announcement) {
    let severity = if announcement.warning {
        Severity::Warning
    } else {
        Severity::Normal
    };
    let object = db.object_ref(&());
    let (reason, note) = (&announcement.reason, &announcement.note);
    events::publish(
        recorder,
        &object,
        severity,
        reason,
        note,
        announcement.related,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::k8s_openapi::jiff::Timestamp;

    fn status(phase: DatabasePhase, reason: &str, degraded: bool) -> DatabaseStatus {
        let now = Timestamp::UNIX_EPOCH;
        DatabaseStatus {
            phase: Some(phase),
            conditions: vec![
                conditions::new(
                    READY,
                    phase == DatabasePhase::Ready,
                    reason,
                    "msg",
                    Some(1),
                    now,
                ),
                conditions::new(conditions::DEGRADED, degraded, reason, "msg", Some(1), now),
            ],
            ..DatabaseStatus::default()
        }
    }

    #[test]
    fn events_only_on_change() {
        use DatabasePhase::*;
        let deploying = status(Deploying, "Deploying", false);
        let ready = status(Ready, "Ready", false);
        let pulling = status(Failed, "ImagePullBackOff", true);
        let crashing = status(Failed, "CrashLoopBackOff", true);
        let missing = status(Pending, "BackupNotFound", false);
        let not_ready = status(Pending, "BackupNotReady", false);
        let stuck = status(Provisioning, "Provisioning", true);
        // (what, old, new, Some(warning) when an Event is expected)
        let rows = [
            ("first status", None, &deploying, None),
            ("steady", Some(&ready), &ready, None),
            ("became ready", Some(&deploying), &ready, Some(false)),
            ("failed", Some(&deploying), &pulling, Some(true)),
            ("other failure", Some(&pulling), &crashing, Some(true)),
            ("still failing", Some(&crashing), &crashing, None),
            ("recovering", Some(&crashing), &deploying, None),
            ("recovered", Some(&crashing), &ready, Some(false)),
            ("backup missing", None, &missing, Some(true)),
            ("backup not ready", None, &not_ready, None),
            ("backup appeared", Some(&missing), &not_ready, None),
            ("apply failing", Some(&deploying), &stuck, Some(true)),
        ];
        for (what, old, new, want) in rows {
            let got = announcement(old, new);
            assert_eq!(got.as_ref().map(|a| a.warning), want, "{what}");
            if let Some(a) = got {
                assert_eq!(
                    Some(a.reason.as_str()),
                    new.conditions.first().map(|c| c.reason.as_str())
                );
            }
        }
    }

    #[test]
    fn long_notes_are_cut_to_what_the_api_accepts() {
        let mut new = status(DatabasePhase::Failed, "ImagePullBackOff", true);
        new.conditions[0].message = "é".repeat(2000);
        let note = announcement(None, &new).map(|a| a.note).unwrap_or_default();
        assert!(!note.is_empty() && note.len() <= events::NOTE_MAX_BYTES);
    }

    #[test]
    fn a_failover_is_announced_once_with_what_it_lost() {
        let before = DatabaseStatus::default();
        let mut after = before.clone();
        after.last_failover = Some(api::FailoverReport {
            time: "2026-12-06T03:00:00Z".into(),
            from: "shop-0".into(),
            to: "shop-1".into(),
            lost_bytes: Some(8192),
            synchronous: false,
        });
        let event = failover(Some(&before), &after).expect("an Event");
        assert!(event.warning);
        assert_eq!(event.reason, "Failover");
        assert!(
            event
                .note
                .contains("shop-1 took over as primary from shop-0")
        );
        assert!(event.note.contains("about 8192 bytes"), "{}", event.note);
        assert_eq!(failover(Some(&after), &after), None);

        let mut synchronous = after.clone();
        if let Some(report) = synchronous.last_failover.as_mut() {
            report.synchronous = true;
        }
        let note = failover(Some(&before), &synchronous).unwrap().note;
        assert!(
            note.contains("no acknowledged transaction was lost"),
            "{note}"
        );
    }
}
